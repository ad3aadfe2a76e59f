"""The variant picker and build-config form; every choice is bound to the URL (shareable)."""

from __future__ import annotations

from dataclasses import dataclass, field

import streamlit as st
import torch

from explorer.analysis.rows import DEPTHS
from explorer.core.i18n import N_, _
from explorer.ui.language import query_with_language
from explorer.ui.nav import page
from explorer.variants import VARIANTS
from explorer.variants.config import (  # the validator's bounds: no field offers what it refuses
    MAX_CLASSES,
    MAX_INPUT_SIZE,
    MAX_REPEATS,
    MAX_WIDTH,
)

CPU, GPU = "CPU", "GPU (cuda)"
NO_GPU = N_("unavailable: torch.cuda.is_available() is False on this machine")
# how the options read (the URL keeps the English values)
DEVICE_NAMES = {CPU: "CPU", GPU: N_("GPU (cuda)")}
DEPTH_NAMES = {"stage": N_("stage"), "block": N_("block"), "layer": N_("layer")}
LAYOUT_NAMES = {"released": N_("released"), "paper": N_("paper")}
REPEAT_KEYS = ("rep_1", "rep_2", "rep_3", "rep_4")  # a ResNet has four stages


@dataclass
class Choice:
    variant: str
    config: dict = field(default_factory=dict)  # build / analyze / to_dot options
    depth: str = "block"
    device: str = "cpu"


# Inspect's settings besides variant and layout (their defaults: what Overview's cards show).
INSPECT_REFERENCE = ("size", "width", "classes", "aux", "scale", *REPEAT_KEYS, "depth", "device")
URL_NOTES = "_url_notes"
URL_LAST = "_url_last"


def _variant_changed() -> None:
    """A new variant starts from its own reference options, not the previous one's."""
    st.session_state.pop(URL_NOTES, None)  # the link's problems no longer describe the page
    info = VARIANTS[st.session_state["variant"]]
    defaults = {"layout": info.default_layout, "aux": False, "scale": None,
                **dict.fromkeys(REPEAT_KEYS)}
    for key, value in defaults.items():
        if key in st.session_state:
            st.session_state[key] = value


def open_in_inspect(variant: str, depth: str | None = None, block: str | None = None,
                    layout: str | None = None) -> None:
    """Show ``variant`` on the Inspect page in its reference configuration (the one Overview's
    card describes), whatever Inspect showed before; optionally at a depth, with a block
    selected. URL-bound widgets keep their state across pages and that state wins over a
    link's query parameters: set both, then switch."""
    st.session_state["variant"] = variant
    st.session_state["layout"] = layout or VARIANTS[variant].default_layout
    for key in (*INSPECT_REFERENCE, "overlay"):  # forgotten: the widgets start at their defaults
        st.session_state.pop(key, None)
    st.session_state.pop(URL_NOTES, None)
    # The graph's view of this variant (selection, open blocks: ui.graph_view.GraphState) starts
    # afresh too, reading the link's block= as a link opened in a new session would.
    for key in [k for k in st.session_state if str(k).startswith(f"inspect:{variant}:")]:
        del st.session_state[key]
    st.session_state.pop("inspect:link_read", None)
    query = {"variant": variant}
    if depth is not None:
        query["depth"] = depth
    if block is not None:
        query["block"] = block
    if layout is not None:
        query["layout"] = layout
    st.switch_page(page("inspect"), query_params=query_with_language(query))


def inspect_link(label: str, variant: str, depth: str | None = None, block: str | None = None,
                 key: str | None = None, container=st, layout: str | None = None) -> None:
    """A link-like button that opens an Inspect view (``open_in_inspect``)."""
    if container.button(label, key=key or f"open_{variant}_{depth}_{block}", type="tertiary",
                        icon=":material/account_tree:", help=_("open this view on the Inspect page")):
        open_in_inspect(variant, depth, block, layout)


# -- links with values the page cannot take ----------------------------------------------------

def url_snapshot() -> dict[str, list[str]]:
    """The URL's query parameters as the page was opened: call before any widget is made (a
    URL-bound widget drops a value it cannot take, silently)."""
    return {key: st.query_params.get_all(key) for key in st.query_params}


def _plain(text: str, limit: int = 60) -> str:
    """A value from the URL, shown as text: shortened, markdown and HTML characters escaped."""
    text = text if len(text) <= limit else text[:limit] + "..."
    return "".join("\\" + c if c in "\\`*_{}[]()#+-.!<>|~$&:" else c for c in text)


def _same(a: list[str] | None, b: list[str]) -> bool:
    """Query values equal as text, or as numbers ("0.50" is "0.5")."""
    if a is None or len(a) != len(b):
        return False
    for x, y in zip(a, b):
        try:
            if x != y and float(x) != float(y):
                return False
        except ValueError:
            return False
    return True


def _as_query(value) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [str(value).lower() if isinstance(value, bool) else str(value)]


# Query parameters that the graph panels read and check themselves (ui.graph_panel).
GRAPH_KEYS = ("block", "open", "overlay", "graph_left", "graph_right", "compare_overlay",
              "lang")  # the language: read and checked by ui.language


def url_problems(snapshot: dict[str, list[str]], now: dict[str, list[str]],
                 shown: dict[str, object], elsewhere: dict[str, str] | None = None) -> list[str]:
    """What the page did not take from a link: parameters it does not know, or whose value
    was dropped or corrected by their widget. ``now``: the query after the widgets ran;
    ``shown``: the page's URL-bound settings in use (key -> value); ``elsewhere``: settings of
    this page that do not apply now (key -> why). The graph's own keys are left to it."""
    notes = []
    for key, values in snapshot.items():
        value = ", ".join(values)
        if key in GRAPH_KEYS:
            continue
        if key in (elsewhere or {}):
            notes.append(_("{key} \"{value}\" is ignored: {why}").format(
                key=_plain(key), value=_plain(value), why=elsewhere[key]))
        elif key not in shown:
            notes.append(_("\"{key}\" is not a setting of this page (ignored)").format(key=_plain(key)))
        elif not (_same(now.get(key), values) or _same(_as_query(shown[key]), values)):
            current = shown[key]
            if isinstance(current, (list, tuple)):  # a multiselect keeps the values it knows
                value = ", ".join(v for v in values if v not in map(str, current))
                current = ", ".join(map(str, current)) or _("none")
            current = _("empty (the reference)") if current is None else _plain(str(current))
            notes.append(_("{key} \"{value}\" is not one it offers, so it shows {current}").format(
                key=key, value=_plain(value), current=current))
    return notes


def show_url_notes(page_name: str, snapshot: dict[str, list[str]], shown: dict[str, object],
                   elsewhere: dict[str, str] | None = None) -> None:
    """Warn about what the link asked for and did not get. Kept for this page across the
    reruns that follow (the URL no longer holds the bad value), until the variant changes."""
    now = {key: st.query_params.get_all(key) for key in st.query_params}
    # A URL this page wrote itself at the end of its last run is no link: a rerun after a
    # widget change starts from it (the new values reach the URL only as widgets register).
    ours = st.session_state.get(URL_LAST) == (page_name, snapshot)
    st.session_state[URL_LAST] = (page_name, now)
    notes = [] if ours else url_problems(snapshot, now, shown, elsewhere)
    saved = st.session_state.get(URL_NOTES)
    if notes:
        old = saved[1] if saved and saved[0] == page_name else []
        st.session_state[URL_NOTES] = saved = (page_name, old + [n for n in notes if n not in old])
    if saved and saved[0] == page_name:
        st.warning(_("This link asks for what this page cannot show: {notes}.").format(
                   notes="; ".join(saved[1])),
                   icon=":material/link_off:")
    elif saved:
        st.session_state.pop(URL_NOTES, None)


def variant_picker(key: str = "variant", on_change=None) -> str:
    return st.selectbox(_("Variant"), list(VARIANTS), key=key, bind="query-params",
                        on_change=on_change,
                        help=" / ".join(f"{n}: {_(v.title)}" for n, v in VARIANTS.items()))


def inspect_controls() -> Choice:
    """The Inspect page's sidebar: variant, depth, layout and build options, and device (depth
    near the top: on a 1280x720 projector it stays above the fold). A link's values that the
    page cannot take get a note."""
    snapshot = url_snapshot()
    _alias_layout(snapshot)
    with st.sidebar:
        variant = variant_picker(on_change=_variant_changed)
        info = VARIANTS[variant]
        st.caption(f"{_(info.title)}, {info.year}")
        depth = st.radio(_("Depth"), DEPTHS, index=1, key="depth", bind="query-params",
                         horizontal=True, format_func=lambda d: _(DEPTH_NAMES.get(d, d)),
                         help=_("one row / node per stage, block or layer"))
        layout_name = st.selectbox(_("Layout"), list(info.layouts), key="layout", bind="query-params",
                                   format_func=lambda n: _(LAYOUT_NAMES.get(n, n)),
                                   help=_("released: checkpoint-compatible; paper: as printed"))
        layout = info.layouts[layout_name]
        for alias, same in info.aliases.items():
            st.caption(_("The paper's layout is the {same} one: one network, so one layout "
                         "('{alias}' is accepted as its other name).").format(same=same, alias=alias))
        config: dict = {"layout": layout_name}

        size = st.number_input(_("Input size (px)"), min_value=1, max_value=MAX_INPUT_SIZE, value=None,
                               step=1,
                               key="size", bind="query-params",
                               placeholder=_("native: {size}").format(size=info.native_input_size),
                               help=_("empty = the native {size}; the minimum is {least}").format(
                                   size=info.native_input_size, least=layout.min_input_size))
        if size is not None:
            config["input_size"] = int(size)
        width = st.number_input(_("Width multiplier"), min_value=0.05, max_value=MAX_WIDTH, value=1.0,
                                step=0.25, key="width", bind="query-params",
                                help=_("scales every conv's channels (1.0 = the reference widths)"))
        if width != 1.0:
            config["width"] = float(width)
        classes = st.number_input(_("Classes"), min_value=1, max_value=MAX_CLASSES, value=1000, step=1,
                                  key="classes", bind="query-params")
        if classes != 1000:
            config["num_classes"] = int(classes)
        aux = st.checkbox(_("Auxiliary head(s)"), key="aux", bind="query-params",
                          disabled=not layout.has_aux,
                          help=_("training-time side classifiers: their parameters count in the "
                                 "params total, their MACs not in the MACs total")
                          if layout.has_aux else _("{variant} ({layout} layout) has none").format(
                              variant=variant, layout=_(LAYOUT_NAMES.get(layout_name, layout_name))))
        if aux and layout.has_aux:
            config["aux_logits"] = True

        if layout.scale is not None:
            ref = " / ".join(f"{s:g}" for s in layout.scale)
            scale = st.number_input(_("Residual scale"), min_value=0.01, max_value=1.0, value=None,
                                    step=0.05, key="scale", bind="query-params",
                                    placeholder=_("reference: {ref}").format(ref=ref),
                                    help=_("applied to every residual branch before the add; "
                                           "empty = the reference A / B / C scales"))
            if scale is not None:
                config["scale"] = float(scale)
        if layout.repeats is not None:
            st.markdown(_("Blocks per stage"))
            cols = st.columns(len(layout.repeats))
            reps = []
            for col, key, stage, ref in zip(cols, REPEAT_KEYS, layout.repeat_stages, layout.repeats):
                # Inception's stages by their letter (A, B, C), a ResNet's by name (conv2_x)
                label = stage.rsplit("_", 1)[-1].upper() if stage.startswith("inception") else stage
                value = col.number_input(label, min_value=1,
                                         max_value=MAX_REPEATS, value=None, step=1, key=key,
                                         bind="query-params", placeholder=str(ref),
                                         help=_("{stage}: empty = the reference {ref}").format(
                                             stage=stage, ref=ref))
                reps.append(ref if value is None else int(value))
            if tuple(reps) != layout.repeats:
                config["repeats"] = tuple(reps)

        cuda = torch.cuda.is_available()
        device = st.radio(_("Device (for timing)"), (CPU, GPU), key="device", bind="query-params",
                          format_func=lambda d: _(DEVICE_NAMES[d]),
                          disabled=not cuda, captions=("", "" if cuda else _(NO_GPU)))
    shown = {"variant": variant, "depth": depth, "layout": layout_name, "size": size,
             "width": width, "classes": classes, "aux": aux, "device": device}
    if layout.scale is not None:
        shown["scale"] = scale
    if layout.repeats is not None:
        shown.update(zip(REPEAT_KEYS, reps))
    elsewhere = {}
    if layout.scale is None:
        elsewhere["scale"] = _("{variant} has no residual blocks").format(variant=variant)
    if layout.repeats is None:
        elsewhere.update(dict.fromkeys(
            REPEAT_KEYS, _("{variant}'s blocks per stage are fixed").format(variant=variant)))
    show_url_notes("inspect", snapshot, shown, elsewhere)
    return Choice(variant, config, depth, "cuda" if device == GPU and cuda else "cpu")


def _alias_layout(snapshot: dict[str, list[str]]) -> None:
    """``?layout=paper`` for a variant whose paper layout is its released one: the one offered."""
    info = VARIANTS.get((snapshot.get("variant") or [""])[-1])
    layout = (snapshot.get("layout") or [""])[-1]
    if info is not None and layout in info.aliases:
        st.query_params["layout"] = snapshot["layout"] = [info.aliases[layout]]


# -- Compare -----------------------------------------------------------------------------------

COMPARE_DEFAULT = ["inception_v3", "inception_v4", "inception_resnet_v2", "resnet50"]
COMPARE_REPEATS = ("compare_rep_1", "compare_rep_2", "compare_rep_3")


@dataclass
class CompareChoice:
    variants: list[str]
    input_size: int | None
    options: dict = field(default_factory=dict)  # layout, width, num_classes, scale, repeats


def compare_controls() -> CompareChoice:
    """Compare's controls: the variants, then the build options Inspect offers, each applied
    to the variants it fits (``explorer.analysis.compare.compare_config`` says which it skips). URL-bound."""
    snapshot = url_snapshot()
    left, right = st.columns([3, 1])
    chosen = left.multiselect(_("Variants"), list(VARIANTS), default=COMPARE_DEFAULT,
                              key="variants", bind="query-params")
    size = right.number_input(_("Input size (px)"), min_value=1, max_value=MAX_INPUT_SIZE, value=None,
                              step=1,
                              key="compare_size", bind="query-params",
                              placeholder=_("each one's native size"))
    cols = st.columns([1.2, 1, 1, 1, 0.7, 0.7, 0.7])
    layout = cols[0].selectbox(_("Layout"), ("released", "paper"), key="compare_layout",
                               format_func=lambda n: _(LAYOUT_NAMES[n]),
                               bind="query-params", help=_("paper: for the variants that have one"))
    width = cols[1].number_input(_("Width multiplier"), min_value=0.05, max_value=MAX_WIDTH, value=1.0,
                                 step=0.25, key="compare_width", bind="query-params")
    classes = cols[2].number_input(_("Classes"), min_value=1, max_value=MAX_CLASSES, value=1000, step=1,
                                   key="compare_classes", bind="query-params")
    scale = cols[3].number_input(_("Residual scale"), min_value=0.01, max_value=1.0, value=None,
                                 step=0.05, key="compare_scale", bind="query-params",
                                 placeholder=_("reference"),
                                 help=_("Inception-ResNet only; empty = the reference scales"))
    reps = [col.number_input(_("blocks {stage}").format(stage=stage), min_value=1,
                             max_value=MAX_REPEATS, value=None, step=1,
                             key=key, bind="query-params", placeholder=_("ref."),
                             help=_("Inception {stage} blocks, for v4 and the Inception-ResNets; "
                                    "empty = each one's reference").format(stage=stage))
            for col, key, stage in zip(cols[4:], COMPARE_REPEATS, "ABC")]
    options = {"layout": layout}
    if width != 1.0:
        options["width"] = float(width)
    if classes != 1000:
        options["num_classes"] = int(classes)
    if scale is not None:
        options["scale"] = float(scale)
    if any(r is not None for r in reps):
        options["repeats"] = tuple(None if r is None else int(r) for r in reps)
    shown = {"variants": chosen, "compare_size": size, "compare_layout": layout,
             "compare_width": width, "compare_classes": classes, "compare_scale": scale,
             **dict(zip(COMPARE_REPEATS, reps))}
    show_url_notes("compare", snapshot, shown)
    return CompareChoice(chosen, None if size is None else int(size), options)
