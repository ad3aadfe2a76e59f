"""Compare: several variants side by side, built with the same options (where they apply)."""

import streamlit as st

from explorer import charts, memory
from explorer.analysis import MACS_NOTE
from explorer.timing import time_variant
from explorer.ui import data, graph_panel, heavy
from explorer.ui.controls import compare_controls
from explorer.variants import VARIANTS, ConfigError

st.title("Compare")
choice = compare_controls()
chosen, size = choice.variants, choice.input_size
if not chosen:
    st.info("Pick at least one variant.")
    st.stop()

rows, stages = [], {}
for variant in chosen:
    try:
        row = data.compare_row(variant, size, **choice.options)
        rows.append(row)
        stages[variant] = data.analysis(variant, "stage", input_size=size, **row["build"])
    except ConfigError as err:
        st.error(f"{variant}: {err}")
if not rows:
    st.stop()
skipped = [why for r in rows for why in r["skipped"]]
if skipped:
    st.caption("Not applied: " + "; ".join(skipped) + ".")

st.dataframe(
    [{"variant": r["variant"], "layout": r["layout"], "input": r["input_size"],
      "params (M)": r["total_params"] / 1e6, "BN params (K)": r["total_bn_params"] / 1e3,
      "GMACs": r["total_macs"] / 1e9,
      "blocks": r["blocks"], "activations (MiB)": r["activation_bytes"] / 2**20,
      "top-1 %": r["top1"], "top-5 %": r["top5"]}
     for r in rows],
    hide_index=True,
    column_config={"params (M)": st.column_config.NumberColumn(format="%.2f"),
                   "BN params (K)": st.column_config.NumberColumn(
                       format="%.1f", help="BatchNorm scale and shift: already inside params"),
                   "GMACs": st.column_config.NumberColumn(format="%.3f"),
                   "activations (MiB)": st.column_config.NumberColumn(format="%.1f"),
                   "top-1 %": st.column_config.NumberColumn(format="%.1f"),
                   "top-5 %": st.column_config.NumberColumn(format="%.1f")})
st.caption(f"Measured here: params (BatchNorm's scale and shift included), MACs, blocks "
           f"(rows at block depth, heads included) and "
           f"activations (every layer's float32 output once, one image). {MACS_NOTE}. "
           "Accuracy: published ImageNet validation numbers at the native size (public weights "
           "where they exist, else the paper), for the reference build: not for the input size or "
           "options chosen above.")
st.caption("Accuracy sources: " + "; ".join(f"{r['variant']}: {r['accuracy_source']}" for r in rows)
           + ".")

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
needs = [memory.estimate_inference(r["variant"], input_size=r["input_size"], **r["build"])
         for r in rows]
biggest = max(needs, key=lambda e: e.total)  # one model is built at a time, then let go
heavy.cancelled("measure")
clicked = st.button("Measure on CPU", icon=":material/timer:")
heavy.needs(biggest, "One model at a time, built for real: the largest")


def measure_all():
    progress = st.progress(0.0)
    timings = []
    for i, r in enumerate(rows):
        progress.progress(i / len(rows), text=f"building {r['variant']}...")
        t = time_variant(r["variant"], input_size=r["input_size"], repeats=5, **r["build"],
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
        st.session_state["timings"] = (tuple(chosen), size, repr(choice.options), timings)
saved = st.session_state.get("timings")
if saved and saved[:3] == (tuple(chosen), size, repr(choice.options)):
    st.dataframe(saved[3], hide_index=True,
                 column_config={c: st.column_config.NumberColumn(format="%.1f")
                                for c in ("median ms", "min ms", "max ms")})
