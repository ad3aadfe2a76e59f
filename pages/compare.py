"""Compare: several variants side by side, built with the same options (where they apply)."""

import streamlit as st
import torch

from explorer.analysis import charts
from explorer.analysis.rows import MACS_NOTE
from explorer.core.text import md_escape
from explorer.runtime import latency, workers
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

st.subheader("Measured latency: do MACs predict time?")
st.caption("Each network built with random weights (they do not change the time) and run on "
           f"{' and '.join(map(str, latency.BATCHES))} images, no autograd, the networks in turns "
           "(so that a change in the machine's load hits all alike): one warm-up, then the "
           f"median of {' and '.join(str(latency.RUNS[b]) for b in latency.BATCHES)} runs. "
           "GMAC/s = MACs x batch / time; the limit is this machine's own peak, a "
           f"{latency.PEAK_SIZE}x{latency.PEAK_SIZE} float32 matmul on the same threads (timed "
           "with the BLAS and as a 1x1 convolution, the library the networks' convolutions run "
           "on: the faster counts). Kept "
           "for everyone on this server, per network, options, batch, device and threads.")
device = "cpu"
if torch.cuda.is_available():  # a choice only where there is one
    device = st.segmented_control("Device", ["cpu", "cuda"], default="cpu", key="latency_device",
                                  format_func=lambda d: {"cpu": "CPU", "cuda": "GPU"}[d]) or "cpu"
runtimes = latency.available_runtimes(device)  # eager, for_inference, ONNX Runtime (CPU, extra)
biggest = latency.estimate(rows, device, runtimes)  # the networks together, or the matmul probe
heavy.cancelled("measure")
left, right = st.columns([1, 3])
clicked = left.button(f"Measure on {'GPU' if device == 'cuda' else 'CPU'}", icon=":material/timer:")
refresh = right.checkbox("Measure again (replace the kept results)", key="latency_refresh")
heavy.needs(biggest, biggest.what[:1].upper() + biggest.what[1:] + ":")


if clicked:
    bar = st.progress(0.0, text="waiting for a worker...")
    measured = heavy.run(f"measuring {len(rows)} variant(s)", biggest,
                         "explorer.runtime.tasks:measure_latency",
                         {"rows": rows, "device": device, "refresh": refresh,
                          "runtimes": runtimes}, key="measure",
                         advice="choose fewer networks, a smaller width, input size or fewer blocks",
                         on_progress=lambda p: bar.progress(p[0], text=p[1]))
    bar.empty()
    for entry_key, value in measured or []:  # measured in a worker: kept here for everyone
        latency.remember(entry_key, value)
# measured in worker processes (or Ray tasks) with their own thread count
found = latency.report(rows, device=device, threads=workers.job_cpus())
if found is None:
    st.info("Not measured yet with these options on this device: press the button.",
            icon=":material/timer:")
    st.stop()
top, said = found["peak"], latency.lessons_by_kind(found["rows"], found["peak"])
if said["order"]:  # MACs against time: needs two networks
    st.info("  \n".join(md_escape(s) for s in said["order"]), icon=":material/lightbulb:")
a, b = st.columns(2)
a.plotly_chart(charts.latency_vs_macs(found))
b.plotly_chart(charts.gmacs_vs_peak(found))
table = []
for r in found["rows"]:
    line = {"variant": r["variant"], "input": r["input_size"], "GMACs": r["macs"] / 1e9}
    for t in r["latency"]:
        n = t["batch"]
        line |= {f"ms @{n}": t["median_ms"], f"GMAC/s @{n}": t["gmacs_per_s"],
                 f"% of peak @{n}": 100 * t["peak_fraction"]}
    for rt, timed in r.get("runtimes", {}).items():  # what a deployer would run, same turns
        line |= {f"{latency.RUNTIMES[rt].split(' (')[0]} ms @{t['batch']}": t["median_ms"]
                 for t in timed}
    table.append(line)
st.dataframe(table, hide_index=True,
             column_config={c: st.column_config.NumberColumn(format="%.3f" if c == "GMACs" else "%.1f")
                            for c in table[0] if c not in ("variant", "input")})
beside = latency.runtime_lessons(found["rows"])
if beside:
    st.caption(" ".join(md_escape(s) for s in beside) + " for_inference: our optimised copy "
               "(BN folded into the convs, channels-last); ONNX Runtime: the network's checked "
               "ONNX export (explorer.runtime.onnx), CPU execution provider, same thread count.")
if device == "cpu" and "onnxruntime" not in runtimes:
    from explorer.runtime.onnx import missing, missing_message
    st.caption(md_escape(missing_message(missing()) + " (for the ONNX Runtime column)"))
first = found["rows"][0]["latency"][0]
st.caption(" ".join(md_escape(s) for s in said["rate"] + said["peak"])
           + md_escape(f" Peak: the fastest of {top['runs']} runs of a {top['size']}x{top['size']} "
                       f"{top['math']} matmul ({top['macs'] / 1e9:.2f} GMACs in "
                       f"{top['best_ms']:.1f} ms, as {top['kernel']}). Timed on {first['device_name']}, "
                       f"{first['threads']} threads; ms are medians."))
