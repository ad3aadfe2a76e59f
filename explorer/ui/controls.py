"""The variant picker and build-config form; every choice is bound to the URL (shareable)."""

from __future__ import annotations

from dataclasses import dataclass, field

import streamlit as st
import torch

from explorer.analysis import DEPTHS
from explorer.ui.nav import page
from explorer.variants import VARIANTS

CPU, GPU = "CPU", "GPU (cuda)"
NO_GPU = "unavailable: torch.cuda.is_available() is False on this machine"
REPEAT_KEYS = ("rep_1", "rep_2", "rep_3")


@dataclass
class Choice:
    variant: str
    config: dict = field(default_factory=dict)  # build / analyze / to_dot options
    depth: str = "block"
    device: str = "cpu"


def _variant_changed() -> None:
    """A new variant starts from its own reference options, not the previous one's."""
    info = VARIANTS[st.session_state["variant"]]
    defaults = {"layout": info.default_layout, "aux": False, "scale": None,
                **dict.fromkeys(REPEAT_KEYS)}
    for key, value in defaults.items():
        if key in st.session_state:
            st.session_state[key] = value


def open_in_inspect(variant: str) -> None:
    """Show ``variant`` on the Inspect page. URL-bound widgets keep their state across pages
    and that state wins over a link's query parameters: set both, then switch."""
    st.session_state["variant"] = variant
    _variant_changed()
    st.switch_page(page("inspect"), query_params={"variant": variant})


def variant_picker(key: str = "variant", on_change=None) -> str:
    return st.selectbox("Variant", list(VARIANTS), key=key, bind="query-params",
                        on_change=on_change,
                        help=" / ".join(f"{n}: {v.title}" for n, v in VARIANTS.items()))


def inspect_controls() -> Choice:
    """The Inspect page's sidebar: variant, layout and build options, depth and device."""
    with st.sidebar:
        variant = variant_picker(on_change=_variant_changed)
        info = VARIANTS[variant]
        st.caption(f"{info.title}, {info.year}")
        layout_name = st.selectbox("Layout", list(info.layouts), key="layout", bind="query-params",
                                   help="released: checkpoint-compatible; paper: as printed")
        layout = info.layouts[layout_name]
        config: dict = {"layout": layout_name}

        size = st.number_input("Input size (px)", min_value=1, max_value=4096, value=None, step=1,
                               key="size", bind="query-params",
                               placeholder=f"native: {info.native_input_size}",
                               help=f"empty = the native {info.native_input_size}; the minimum "
                                    f"is {layout.min_input_size}")
        if size is not None:
            config["input_size"] = int(size)
        width = st.number_input("Width multiplier", min_value=0.05, max_value=4.0, value=1.0,
                                step=0.25, key="width", bind="query-params",
                                help="scales every conv's channels (1.0 = the reference widths)")
        if width != 1.0:
            config["width"] = float(width)
        classes = st.number_input("Classes", min_value=1, max_value=100_000, value=1000, step=1,
                                  key="classes", bind="query-params")
        if classes != 1000:
            config["num_classes"] = int(classes)
        aux = st.checkbox("Auxiliary head(s)", key="aux", bind="query-params",
                          disabled=not layout.has_aux,
                          help="training-time side classifiers; their MACs are not in the totals"
                          if layout.has_aux else f"{variant} ({layout_name} layout) has none")
        if aux and layout.has_aux:
            config["aux_logits"] = True

        if layout.scale is not None:
            ref = " / ".join(f"{s:g}" for s in layout.scale)
            scale = st.number_input("Residual scale", min_value=0.01, max_value=1.0, value=None,
                                    step=0.05, key="scale", bind="query-params",
                                    placeholder=f"reference: {ref}",
                                    help="applied to every residual branch before the add; "
                                         "empty = the reference A / B / C scales")
            if scale is not None:
                config["scale"] = float(scale)
        if layout.repeats is not None:
            st.markdown("Blocks per stage")
            cols = st.columns(len(layout.repeats))
            reps = []
            for col, key, stage, ref in zip(cols, REPEAT_KEYS, layout.repeat_stages, layout.repeats):
                value = col.number_input(stage.rsplit("_", 1)[-1].upper(), min_value=1,
                                         max_value=64, value=None, step=1, key=key,
                                         bind="query-params", placeholder=str(ref),
                                         help=f"{stage}: empty = the reference {ref}")
                reps.append(ref if value is None else int(value))
            if tuple(reps) != layout.repeats:
                config["repeats"] = tuple(reps)

        depth = st.radio("Depth", DEPTHS, index=1, key="depth", bind="query-params",
                         horizontal=True, help="one row / node per stage, block or layer")
        cuda = torch.cuda.is_available()
        device = st.radio("Device (for timing)", (CPU, GPU), key="device", bind="query-params",
                          disabled=not cuda, captions=("", "" if cuda else NO_GPU))
    return Choice(variant, config, depth, "cuda" if device == GPU and cuda else "cpu")
