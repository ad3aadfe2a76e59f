"""Small pieces of layout shared by pages."""

from __future__ import annotations

import html

import streamlit as st


def key_result(value: str, label: str, container=st) -> None:
    """A section's result as its largest text (a projector shows it from the back of the room),
    its label beside it in body text. Both are shown as text, never markup."""
    container.html(
        f'<div data-explorer-result style="margin:0.25rem 0 0.75rem 0">'
        f'<div style="font-size:2.6rem;font-weight:700;line-height:1.15">{html.escape(value)}</div>'
        f'<div style="font-size:1rem">{html.escape(label)}</div></div>')
