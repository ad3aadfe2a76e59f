"""Compare: several variants side by side (released/default layouts)."""

import streamlit as st

from explorer import charts, memory
from explorer.analysis import MACS_NOTE
from explorer.timing import time_variant
from explorer.ui import data, graph_panel, heavy
from explorer.variants import VARIANTS, ConfigError

DEFAULT = ["inception_v3", "inception_v4", "inception_resnet_v2"]

st.title("Compare")
left, right = st.columns([3, 1])
chosen = left.multiselect("Variants", list(VARIANTS), default=DEFAULT, key="variants",
                          bind="query-params")
size = right.number_input("Input size (px)", min_value=1, max_value=4096, value=None, step=1,
                          key="compare_size", bind="query-params",
                          placeholder="each one's native size")
size = None if size is None else int(size)
if not chosen:
    st.info("Pick at least one variant.")
    st.stop()

rows, stages = [], {}
for variant in chosen:
    try:
        rows.append(data.compare_row(variant, size))
        stages[variant] = data.analysis(variant, "stage", input_size=size)
    except ConfigError as err:
        st.error(f"{variant}: {err}")
if not rows:
    st.stop()

st.dataframe(
    [{"variant": r["variant"], "layout": r["layout"], "input": r["input_size"],
      "params (M)": r["total_params"] / 1e6, "GMACs": r["total_macs"] / 1e9,
      "blocks": r["blocks"], "activations (MiB)": r["activation_bytes"] / 2**20,
      "top-1 %": r["top1"], "top-5 %": r["top5"], "accuracy source": r["accuracy_source"]}
     for r in rows],
    hide_index=True,
    column_config={"params (M)": st.column_config.NumberColumn(format="%.2f"),
                   "GMACs": st.column_config.NumberColumn(format="%.3f"),
                   "activations (MiB)": st.column_config.NumberColumn(format="%.1f"),
                   "top-1 %": st.column_config.NumberColumn(format="%.1f"),
                   "top-5 %": st.column_config.NumberColumn(format="%.1f")})
st.caption(f"Measured here: params, MACs, blocks (rows at block depth, heads included) and "
           f"activations (every layer's float32 output once, one image). {MACS_NOTE}. "
           "Accuracy: published ImageNet validation numbers at the native size (public weights "
           "where they exist, else the paper), whatever input size is chosen above.")

a, b = st.columns(2)
a.plotly_chart(charts.params_macs_bars(rows))
b.plotly_chart(charts.accuracy_vs_macs(rows))
st.plotly_chart(charts.stage_macs(stages))

st.subheader("Graphs side by side")
graph_panel.compare_pair(list(VARIANTS))

st.subheader("Measured latency")
st.caption("On request: each model is built with random weights and run on one random image "
           "(batch 1, no autograd): one warm-up, then the median of 5 runs. Weights do not "
           "change the time; the machine does.")
needs = [memory.estimate_inference(r["variant"], input_size=r["input_size"]) for r in rows]
biggest = max(needs, key=lambda e: e.total)  # one model is built at a time, then let go
heavy.cancelled("measure")
clicked = st.button("Measure on CPU", icon=":material/timer:")
heavy.needs(biggest, "One model at a time, built for real: the largest")


def measure_all():
    progress = st.progress(0.0)
    timings = []
    for i, r in enumerate(rows):
        progress.progress(i / len(rows), text=f"building {r['variant']}...")
        t = time_variant(r["variant"], input_size=r["input_size"], repeats=5,
                         on_step=lambda k, n, i=i, r=r: progress.progress(
                             (i + k / n) / len(rows), text=f"{r['variant']}: run {k} of {n}"))
        timings.append({"variant": r["variant"], "input": r["input_size"],
                        "median ms": t["median_ms"], "min ms": t["min_ms"], "max ms": t["max_ms"],
                        "runs": t["repeats"], "device": f"{t['device_name']}, {t['threads']} threads"})
    progress.empty()
    return timings


if clicked:
    timings = heavy.run(f"measuring {len(rows)} variant(s)", biggest, measure_all, key="measure")
    if timings:
        st.session_state["timings"] = (tuple(chosen), size, timings)
saved = st.session_state.get("timings")
if saved and saved[:2] == (tuple(chosen), size):
    st.dataframe(saved[2], hide_index=True,
                 column_config={c: st.column_config.NumberColumn(format="%.1f")
                                for c in ("median ms", "min ms", "max ms")})
