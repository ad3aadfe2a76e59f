"""The app's pages, for ``st.navigation`` and for links between pages."""

from __future__ import annotations

import streamlit as st

from explorer.core.resources import resource

PAGES_DIR = resource("pages")

# name -> (title, icon); the first is the default page
PAGES = {
    "overview": ("Overview", ":material/home:"),
    "inspect": ("Inspect", ":material/account_tree:"),
    "design": ("Design", ":material/architecture:"),
    "compare": ("Compare", ":material/compare_arrows:"),
    "predict": ("Predict", ":material/image_search:"),
    "learn": ("Learn", ":material/school:"),
    "lab": ("Lab", ":material/science:"),
}


def page(name: str) -> st.Page:
    title, icon = PAGES[name]
    return st.Page(PAGES_DIR / f"{name}.py", title=title, icon=icon, url_path=name,
                   default=name == "overview")


def pages() -> list[st.Page]:
    return [page(name) for name in PAGES]
