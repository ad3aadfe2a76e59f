"""Inspect: one variant, configured, drawn and measured block by block."""

import json

import streamlit as st

from explorer.analysis import charts
from explorer.analysis.rows import RF_NOTES
from explorer.core.export import analysis_csv, file_stem
from explorer.core.i18n import _, again, number
from explorer.runtime import memory
from explorer.runtime import onnx as onnx_export
from explorer.ui import data, graph_panel, heavy, language
from explorer.ui.controls import DEPTH_NAMES, LAYOUT_NAMES, inspect_controls
from explorer.ui.tables import export_rows
from explorer.ui.words import MACS_NOTE, PARAMS_NOTE
from explorer.variants import VARIANTS, ConfigError

choice = inspect_controls()
info = VARIANTS[choice.variant]
layout = info.layouts[choice.config["layout"]]
st.title(_(info.title))  # the variant's facts are English constants, said here in the page's language
st.markdown(f"{info.year} · [{info.paper}](https://arxiv.org/abs/{info.arxiv}) · *{_(info.idea)}*")

try:
    result = data.analysis(choice.variant, choice.depth, **choice.config)
    by_block = data.analysis(choice.variant, "block", **choice.config)
except ConfigError as err:
    st.error(_("This configuration cannot be built: {error}").format(error=err))
    st.stop()

name = file_stem(result)  # every setting that is not the reference one
m = st.columns(5)
m[0].metric(_("parameters"), charts.fmt_count(result["total_params"]),
            help=_("{params_note}: {count} of these").format(
                params_note=_(PARAMS_NOTE), count=number(result["total_bn_params"])))
m[1].metric("MACs", charts.fmt_count(result["total_macs"]), help=_(MACS_NOTE))
m[2].metric(_("activations / image"), charts.fmt_bytes(result["total_activation_bytes"]),
            help=_("every layer's float32 output once: what a training step keeps for backward"))
m[3].metric(_("rows"), len(result["rows"]),
            help=_("at depth {depth}").format(depth=_(DEPTH_NAMES[choice.depth])))
m[4].metric(_("input"), f"{result['input_size']} px", help=_("{layout} layout").format(
    layout=_(LAYOUT_NAMES.get(result["layout"], result["layout"]))))

graph = graph_panel.inspect(choice, info, name)

with graph.table_col:
    st.subheader(_("Per {depth}").format(depth=_(DEPTH_NAMES[choice.depth])))
    picked = graph.table_row(result["rows"])
    # Not keyed by variant: another variant updates the grid in place, where a new key would
    # build a new one (~0.2 s of the browser's time per switch). A new selection resets it.
    table_key = f"table_{choice.depth}_{graph.state.selected}"
    st.dataframe(
        graph.highlight(charts.table_records(result), picked), hide_index=True,
        height=min(560, 35 * (len(result["rows"]) + 1) + 3),
        # what a projector must show first: the name (whole), then shape, params and MACs
        column_order=("name", "output", "params", "MACs", "MACs %", "bn_params", "kind",
                      "params %", "input", "activation KiB", "figure"),
        key=table_key, on_select=graph.on_table_select(table_key, result["rows"]),
        selection_mode="single-row",
        column_config={
            "name": st.column_config.TextColumn(_("name"), width=charts.name_width(result)),
            "output": st.column_config.TextColumn(_("output")),
            "input": st.column_config.TextColumn(_("input")),
            "kind": st.column_config.TextColumn(_("kind")),
            "figure": st.column_config.TextColumn(_("figure")),
            "params": st.column_config.NumberColumn(_("params"), format="localized",
                                                    help=_(PARAMS_NOTE)),
            "bn_params": st.column_config.NumberColumn(
                "bn_params", format="localized",
                help=_("BatchNorm scale and shift: already inside params")),
            "MACs": st.column_config.NumberColumn(format="localized", help=_(MACS_NOTE)),
            "MACs %": st.column_config.ProgressColumn(format="%.1f", min_value=0, max_value=100),
            "params %": st.column_config.NumberColumn(_("params %"), format="%.1f"),
            "activation KiB": st.column_config.NumberColumn(_("activation KiB"), format="%.0f")})
    st.caption(_("{macs_note}. Params include BatchNorm's scale and shift (bn_params: that "
                 "share). {aux_note} Choose a row to select its node in the graph.").format(
                     macs_note=_(MACS_NOTE), aux_note=charts.aux_note(by_block)))
    e1, e2 = st.columns(2)
    # made when clicked, not on every rerun
    export = {**result, "rows": export_rows(result["rows"])}  # headers in the page's language
    e1.download_button("CSV", lambda: analysis_csv(export), f"{name}.csv", "text/csv",
                       icon=":material/download:", help=_("settings on its first line (# settings)"))
    e2.download_button("JSON", lambda: json.dumps(result, indent=1), f"{name}.json",
                       "application/json", icon=":material/download:",
                       help=_("settings under its \"config\" key"))
    # Made only while open: Streamlit remounts a Plotly chart whose figure changed, and the two
    # cost the browser ~65 ms of every variant switch before the graph shows. Open stays open.
    depth_charts = language.expander(_("Charts along the depth: feature maps, receptive field"),
                                     key="depth_charts", icon=":material/show_chart:")
    if depth_charts.open:
        sizes_chart, fields_chart = data.inspect_charts(choice.variant, **choice.config)
        depth_charts.plotly_chart(sizes_chart)
        depth_charts.plotly_chart(fields_chart)
    whole = by_block["rf_whole_input"]
    st.caption(_("RF: the input pixels one output unit sees (height x width); jump: input pixels "
                 "between neighbouring units.")
               + (" " + _("★ {block}: the first block whose central unit sees the whole input.")
                  .format(block=whole) if whole else ""))
    for note in by_block["rf_notes"]:  # English, as the analysis keeps them
        st.caption(_("Note: {note}.").format(note=again(note, *RF_NOTES)))

notes_col, diff_col = st.columns(2)
with notes_col:
    st.subheader(_("The {layout} layout").format(layout=_(LAYOUT_NAMES.get(layout.name, layout.name))))
    st.markdown("\n".join(f"- {_(n)}" for n in layout.notes) or _("No notes."))
with diff_col:
    st.subheader(_("Paper vs released"))
    st.markdown("\n".join(f"- {_(d)}" for d in info.differences))

st.subheader(_("Forward latency"))
device_name = _("GPU (cuda)") if choice.device == "cuda" else "CPU"
need = memory.estimate_inference(choice.variant, device=choice.device, **choice.config)
heavy.cancelled("time")
clicked = st.button(_("Time a forward pass on {device} (batch 1, random weights)").format(
    device=device_name))
heavy.needs(need, _("Builds the model for real:"))


if clicked:
    bar = st.progress(0.0, text=_("waiting for a worker..."))
    t = heavy.run(_("timing {variant}").format(variant=choice.variant), need,
                  "explorer.runtime.tasks:time_forward",
                  {"variant": choice.variant, "device": choice.device, "repeats": 5,
                   "config": dict(choice.config)}, key="time",
                  on_progress=lambda p: bar.progress(
                      p[0] / p[1], text=_("run {i} of {n}").format(i=p[0], n=p[1])))
    bar.empty()
    if t:
        st.success(_("median {median} ms (min {least}, max {most}) over {repeats} runs after a "
                     "warm-up, on {device}").format(
                         median=number(t["median_ms"], 1), least=number(t["min_ms"], 1),
                         most=number(t["max_ms"], 1), repeats=t["repeats"], device=t["device_name"])
                   + (_(" with {threads} thread(s) of a worker process").format(threads=t["threads"])
                      if t["device"] == "cpu" else ""))

st.subheader("ONNX")
onnx_missing = onnx_export.missing()
if onnx_missing:
    st.info(onnx_export.missing_message(onnx_missing), icon=":material/extension_off:")
else:
    onnx_need = onnx_export.estimate(choice.variant, **choice.config)
    heavy.cancelled("onnx")
    onnx_clicked = st.button(_("Export to ONNX"), icon=":material/deployed_code:",
                             help=_("opset {opset}, batch dimension dynamic, random weights (the "
                                    "graph and timing, not predictions); node names carry the "
                                    "block names (Netron shows them)").format(opset=onnx_export.OPSET))
    heavy.needs(onnx_need, _("Builds the model for real, exports it and checks it with ONNX "
                             "Runtime:"))
    onnx_request = json.dumps([choice.variant, choice.config], sort_keys=True, default=str)

    if onnx_clicked:
        with st.spinner(_("Exporting to ONNX and checking it against PyTorch (tens of seconds)...")):
            done = heavy.run(_("ONNX export of {variant}").format(variant=choice.variant),
                             onnx_need, "explorer.runtime.tasks:export_onnx",
                             {"variant": choice.variant, "config": dict(choice.config)},
                             key="onnx")
        if done:  # one file per session, the latest: they are up to ~220 MB
            st.session_state["onnx_export"] = (onnx_request, done)
    held = st.session_state.get("onnx_export")
    if held and held[0] == onnx_request:
        st.success(held[1].summary(), icon=":material/check:")
        st.download_button(_("ONNX file"), held[1].data,
                           onnx_export.onnx_file_name(name.removesuffix(f"_{choice.depth}")),
                           "application/octet-stream", icon=":material/download:")

# torchinfo's own table of the same model, for those who know it: computed only when asked
st.subheader("torchinfo")
if st.toggle(_("Show torchinfo's summary of this model"), key="torchinfo"):
    st.code(data.torchinfo_text(choice.variant, choice.depth, **choice.config), language=None)
    st.caption(_("torchinfo on the meta device, at this depth. Its parameter total is ours; its "
                 "mult-adds also count BatchNorm's scale and shift and the biases, which our MACs "
                 "leave out."))
