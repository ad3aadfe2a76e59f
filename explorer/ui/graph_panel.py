"""The graph panels of the pages: the explorer's graph with its overlay, export and details.

Pages call one function each (``inspect``, ``compare_pair``, ``block_picker``); the logic
(drawing, overlays, names) lives in ``explorer.analysis.graph``, the component in ``graph_view``.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import streamlit as st

from explorer.analysis import charts, receptive
from explorer.analysis.graph import (
    MISSING,
    OVERLAYS,
    GraphvizMissing,
    legend,
    matching_stage,
    overlay_values,
    to_dot,
    value_range,
)
from explorer.core.i18n import N_, _, again, language, number, percent, speaking
from explorer.core.text import md_escape, shape_text
from explorer.ui import data
from explorer.ui.graph_view import NOTES as LINK_NOTES
from explorer.ui.graph_view import GraphState
from explorer.variants import VARIANTS

OVERLAY_CHOICES = {"none": None, "params": "params", "MACs": "macs",
                   "memory": "activations", "latency": "latency",
                   "RF": "rf"}  # receptive field: short, so the choices fit in one row
# how the choices read (the URL keeps the keys above)
OVERLAY_NAMES = {"none": N_("none"), "params": N_("params"), "MACs": "MACs", "memory": N_("memory"),
                 "latency": N_("latency"), "RF": "RF"}


def show_notes(notes: list[str]) -> None:
    """Unknown names from the URL: shown as text (never as markup), then ignored."""
    for note in notes:
        st.warning(_("Unknown name in the link, {note}").format(
                   note=md_escape(again(note, *LINK_NOTES))),
                   icon=":material/link_off:")


def overlay_picker(key: str) -> str | None:
    picked = st.segmented_control(_("Colour by"), list(OVERLAY_CHOICES), default="none", key=key,
                                  bind="query-params", format_func=lambda k: _(OVERLAY_NAMES[k]),
                                  help=_("colour each node (log scale; labels show the figure) "
                                         "by parameters, MACs, activation memory (float32, one "
                                         "image), latency measured on this server's CPU, or "
                                         "receptive field"))
    return OVERLAY_CHOICES.get(picked or "none")


def overlay_data(variant: str, overlay: str | None, config: dict, *, measure_key: str):
    """(values, note) for ``overlay``: from the analysis, or timed on request (latency)."""
    if overlay is None:
        return None, ""
    if overlay != "latency":
        return overlay_values(data.all_rows(variant, **config), overlay), ""
    measured = st.session_state.setdefault("latency_values", {})
    ask = (variant, repr(sorted(config.items())))
    if ask not in measured:
        from explorer.runtime import memory
        from explorer.ui import heavy

        need = memory.estimate_inference(variant, **config)
        if not st.button(_("Time every block on the CPU (builds the model: a few seconds)"),
                         key=measure_key, icon=":material/timer:"):
            st.caption(_("Latency needs a real model: press the button to build one on the CPU "
                         "(random weights) and time one forward pass per block; {needs}.").format(
                             needs=need.needs()))
            return None, ""
        # a real build, in a worker process or a Ray task: the memory budget and the queue apply
        values = heavy.run(_("timing every block of {variant}").format(variant=variant), need,
                           "explorer.runtime.tasks:block_latency",
                           {"variant": variant, "config": dict(config)}, key=f"{measure_key}_job")
        if values is None:
            return None, ""
        measured[ask] = values
    values = measured[ask]
    return values, _("median of 3 forward passes after a warm-up, batch 1, CPU, forward hooks "
                     "around every module (random weights: weights do not change the time)")


def draw(variant: str, state: GraphState, config: dict, *, key: str, overlay=None, values=None,
         scale=None, height=620, highlight=(), label_size: bool = False, fit: str = "readable"):
    """Lay out and mount the graph; returns the DOT source (None without Graphviz's dot)."""
    try:
        source, svg = data.explorer_svg(variant, tuple(sorted(state.expanded)), overlay, values,
                                        scale, label_size, config)
    except GraphvizMissing:
        st.info(_(MISSING) + ". " + _("Showing the static drawing meanwhile."))
        st.graphviz_chart(to_dot(variant, expanded=state.expanded, **config), height="content")
        return None
    items = legend(values, scale, overlay) if values else []
    state.show(svg, key=key, highlight=highlight, legend=items, height=height, fit=fit,
               legend_title=f"{_(OVERLAYS[overlay])}:" if items else "")
    return source


def export_buttons(variant: str, state: GraphState, config: dict, *, stem: str, key: str,
                   overlay=None, values=None, scale=None, laid_out: bool = True) -> None:
    """The current view (expansion and overlay) as DOT, SVG and PNG (those two need Graphviz's
    ``dot``: ``laid_out``); "projector" enlarges the fonts for slides."""
    c0, c1, c2, c3 = st.columns([2, 1, 1, 1], vertical_alignment="center")
    projector = c0.toggle(_("projector fonts"), key=f"{key}_projector",
                          help=_("larger text for slides and a projector (1280x720)"))
    lang = language()  # the files are made on click, maybe outside this run

    # The files are made later, when a button is clicked, outside this script run: there is no
    # session state then (the view it holds is read now, while the buttons are drawn).
    expanded = tuple(sorted(state.expanded))
    config = dict(config)

    def source():
        with speaking(lang):
            return to_dot(variant, expanded=set(expanded), overlay=overlay, values=values,
                          value_scale=scale, projector=projector, **config)

    suffix = "_projector" if projector else ""
    # a download does not rerun the page: a click on the next button while the page reran lost
    # that download (Chromium waited for it in vain)
    c1.download_button("DOT", lambda: source(), f"{stem}{suffix}.dot", "text/vnd.graphviz",
                       icon=":material/download:", key=f"{key}_dot", on_click="ignore")
    if not laid_out:
        return
    c2.download_button("SVG", lambda: data.explorer_svg(
        variant, expanded, overlay, values, scale, projector, config, lang)[1],
        f"{stem}{suffix}.svg", "image/svg+xml", icon=":material/download:", key=f"{key}_svg",
        on_click="ignore")
    c3.download_button("PNG", lambda: data.png(source()), f"{stem}{suffix}.png", "image/png",
                       icon=":material/download:", key=f"{key}_png", on_click="ignore")


def _meta_for(name: str, blocks: dict) -> dict:
    """The paper's words for a stage, block or layer (a layer gets its block's)."""
    if name in blocks:
        return blocks[name]
    for meta in blocks.values():
        if meta["stage"] == name:
            return meta
    owners = [b for b in blocks if name.startswith(b + ".")]
    return blocks[max(owners, key=len)] if owners else {"kind": "", "figure": "", "idea": ""}


def details(variant: str, state: GraphState, config: dict, key: str) -> None:
    """The selected node: paper figure and idea, shapes, cost, share, its layers."""
    name = state.selected
    if not name:
        st.html('<div data-explorer-selected="">' + html.escape(_("No block selected")) + "</div>")
        st.info(_("Click a node of the graph (or a row of the table) to see it here; "
                  "double-click to open or close it."))
        return
    rows = data.all_rows(variant, **config)
    row = next((r for r in rows if r["name"] == name), None)
    meta = _meta_for(name, data.blocks(variant, **config))
    kind = row["kind"] if row else meta["kind"]
    st.html(f'<div data-explorer-selected="{html.escape(name, quote=True)}" '
            f'style="font-size:1.25rem"><b>{html.escape(name)}</b> &middot; '
            f'{html.escape(kind or _("node"))}</div>')
    figure = (row or {}).get("figure") or meta.get("figure")
    if figure:
        st.markdown(f"*{_(figure)}*")  # the papers' words: English constants, said here
    if meta.get("idea"):
        st.markdown(f"> {_(meta['idea'])}")
    opened = name in state.expanded
    if name in data.blocks(variant, **config) and "." in name:
        from explorer.ui.design_state import design_link
        design_link(_("Design from this block"), {
            "variant": variant, "layout": config.get("layout") or VARIANTS[variant].default_layout,
            "block": name})
    if name in state.expandable:
        st.button(_("Collapse") if opened else _("Expand in the graph"), key=f"{key}_toggle",
                  icon=":material/unfold_less:" if opened else ":material/unfold_more:",
                  on_click=state.toggle, args=(name,))
    if row is None:
        st.caption(_("A drawing-only node (no module of its own)."))
        return
    from explorer.analysis.lessons import v4_stem_stride_note
    stride_note = v4_stem_stride_note(variant, row, figure or "")
    if stride_note:
        st.info(stride_note, icon=":material/straighten:")
    st.markdown(
        _("- **shape**: {input} → {output}\n"
          "- **params**: {params} ({params_share} of the total; {bn_params} of them BatchNorm "
          "scale and shift)\n"
          "- **MACs**: {macs} ({macs_share} of the total)\n"
          "- **output memory**: {memory} (float32, one image)").format(
              input=shape_text(row["input_shape"]), output=shape_text(row["output_shape"]),
              params=number(row["params"]), params_share=percent(row["params_share"]),
              bn_params=number(row.get("bn_params", 0)), macs=number(row["macs"]),
              macs_share=percent(row["macs_share"]),
              memory=charts.fmt_bytes(row["activation_bytes"]))
        + _field_lines(variant, config, row))
    layers = [r for r in data.analysis(variant, "layer", **config)["rows"]
              if r["name"].startswith(name + ".")]
    if layers:
        st.dataframe([{_("layer"): r["name"][len(name) + 1:], _("kind"): r["kind"],
                       _("output"): shape_text(r["output_shape"]), _("params"): r["params"],
                       "MACs": r["macs"]} for r in layers],
                     hide_index=True, height=min(320, 35 * (len(layers) + 1) + 3),
                     column_config={_("params"): st.column_config.NumberColumn(format="localized"),
                                    "MACs": st.column_config.NumberColumn(format="localized")})


def _field_lines(variant: str, config: dict, row: dict) -> str:
    """The row's receptive field as more lines of the details list (and the published one)."""
    if not row.get("rf"):
        return ""
    text = "\n" + _("- **receptive field**: {field} px, jump {jump} px, first unit centred on "
                     "input pixel ({centre})").format(
                         field=charts.field_text(row["rf"]), jump=charts.field_text(row["jump"]),
                         centre=charts.field_text(row["rf_offset"]).replace(" x ", ", "))
    pub = receptive.published(variant, config.get("layout"), row["name"],
                              config.get("repeats"))
    if pub:
        text += "\n" + _("- **published** (TF-slim): field {field} px, stride {stride} px "
                          "({source})").format(field=pub[0], stride=pub[1],
                                               source=receptive.PUBLISHED_SOURCE)
    return text


@dataclass
class InspectGraph:
    state: GraphState
    table_col: object

    def table_row(self, rows: list[dict]) -> int | None:
        """The table row of the selection (a layer selects its block's row, and so on)."""
        sel = self.state.selected
        if not sel:
            return None
        best = None
        for i, r in enumerate(rows):
            if r["name"] == sel:
                return i
            if sel.startswith(r["name"] + ".") or r["name"].startswith(sel + "."):
                best = i if best is None else best
        return best

    @staticmethod
    def highlight(records: list[dict], row: int | None):
        import pandas as pd
        frame = pd.DataFrame(records)
        if row is None:
            return frame
        colour = "background-color: rgba(214, 39, 40, 0.18)"
        return frame.style.apply(
            lambda r: [colour if r.name == row else ""] * len(r), axis=1)

    def on_table_select(self, key: str, rows: list[dict]):
        def chosen():
            picked = st.session_state[key].selection.rows
            if picked:
                self.state.reveal(rows[picked[0]]["name"])
        return chosen


def inspect(choice, info, stem: str) -> InspectGraph:
    variant, config = choice.variant, choice.config
    names, opened = data.graph_names(variant, **config)
    state = GraphState("inspect", variant, names, opened)
    show_notes(state.notes)
    graph_col, detail_col = st.columns([3, 2], gap="large")
    with graph_col:
        st.subheader(_("Graph"))
        overlay = overlay_picker("overlay")
        values, note = overlay_data(variant, overlay, config, measure_key="time_blocks")
        if values is None:
            overlay = None
        source = draw(variant, state, config, key="graph_inspect", overlay=overlay,
                      values=values, height=640)
        if note:
            st.caption(note)
        st.caption(_("Click: select · double-click: open / close a stage or block · wheel: zoom · "
                     "drag: pan · edges carry C x H x W shapes"))
        export_buttons(variant, state, config, stem=stem, key="export_inspect", overlay=overlay,
                       values=values, laid_out=source is not None)
    with detail_col:
        st.subheader(_("Selected"))
        details(variant, state, config, key="details_inspect")
    state.sync_url()
    return InspectGraph(state, st.container())


def compare_pair(variants: list[str], default=("inception_v4", "inception_resnet_v2")) -> None:
    """Two networks, one above the other, their stages open into blocks, coloured on one scale;
    selecting in one highlights the matching stage in the other."""
    choices = list(variants)
    c0, c1, c2 = st.columns([1, 1, 2], vertical_alignment="bottom")
    left = c0.selectbox(_("Above"), choices, index=choices.index(default[0]), key="graph_left",
                        bind="query-params")
    right = c1.selectbox(_("Below"), choices, index=choices.index(default[1]), key="graph_right",
                         bind="query-params")
    with c2:
        picked = st.segmented_control(_("Colour by"), [k for k in OVERLAY_CHOICES if k != "latency"],
                                      default="MACs", key="compare_overlay", bind="query-params",
                                      format_func=lambda k: _(OVERLAY_NAMES[k]))
    overlay = OVERLAY_CHOICES.get(picked or "none")
    sides = []
    for variant in (left, right):
        names, opened = data.graph_names(variant)
        stages = [n for n, kind in opened.items() if kind == "stage"]
        # block level: stages of several blocks open (the stem's are layers: it stays closed)
        several = [s for s in stages if s != "stem"
                   and sum(n.startswith(s + ".") for n in opened) > 1]
        state = GraphState(f"compare_{'lr'[len(sides)]}", variant, names, opened, url=False,
                           default_open=tuple(several))
        values = overlay_values(data.all_rows(variant), overlay) if overlay else None
        sides.append((variant, state, stages, values))
    # one scale for both: the same colour is the same cost on either side
    scale = value_range(*(v for *_, v in sides if v)) if overlay else None
    # one above the other: side by side, each got half a projector's width and was unreadable
    columns = [st.container(), st.container()]
    for i, (col, (variant, state, _stages, values)) in enumerate(zip(columns, sides)):
        other_variant, other_state, other_stages, _values = sides[1 - i]
        match = matching_stage(other_state.selected, [n for n in state.expandable
                                                      if state.expandable[n] == "stage"])
        with col:
            st.markdown(f"**{variant}**")
            # readable at first (a projector's text size), the rest a drag or "fit" away
            draw(variant, state, {}, key=f"graph_compare_{'lr'[i]}", overlay=overlay,
                 values=values, scale=scale, height=560, highlight=[match] if match else [],
                 fit="readable")
            sel = state.selected
            if sel:
                st.html(f'<div data-explorer-selected="{html.escape(sel, quote=True)}">'
                        f'{html.escape(_("selected:"))} <b>{html.escape(sel)}</b></div>')
                row = next((r for r in data.all_rows(variant) if r["name"] == sel), None)
                if row:
                    st.caption(_("{input} → {output} · {params} params · {macs} MACs").format(
                        input=shape_text(row["input_shape"]), output=shape_text(row["output_shape"]),
                        params=charts.fmt_count(row["params"]), macs=charts.fmt_count(row["macs"])))
    st.caption(_("Both graphs share one colour scale (log), so a colour is the same cost on either "
                 "side. Click a stage or block: the matching stage of the other network is "
                 "outlined (dashed)."))


def block_picker(variant: str, names: list[str], key: str) -> None:
    """A small graph of ``variant`` (stages open into blocks) whose click sets the block
    widget ``key`` (one of ``names``) before the page draws it."""
    all_names, opened = data.graph_names(variant)
    stages = [n for n, kind in opened.items() if kind == "stage"]
    state = GraphState(f"predict_{key}", variant, all_names, opened, url=False,
                       default_open=tuple(stages))
    current = st.session_state.get(key)

    def pick(name: str) -> None:
        state.select(name)
        if name in names:
            st.session_state[key] = name

    try:
        _dot, svg = data.explorer_svg(variant, tuple(sorted(state.expanded)), None, None, None,
                                   False, {})
    except GraphvizMissing:
        st.info(_(MISSING))
        return
    from explorer.ui.graph_view import graph_view
    graph_view(svg, key=f"graph_{key}", selected=current, height=380, on_click=pick,
               on_toggle=state.toggle, on_command=state.command)
    st.caption(_("Click a block to see its feature maps."))
