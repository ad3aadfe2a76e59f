"""Compare: several variants side by side, built with the same options (where they apply)."""

import json

import streamlit as st
import torch

from explorer.analysis import charts
from explorer.analysis.compare import SKIPPED, compare_csv, compare_table
from explorer.core.i18n import _, again
from explorer.core.text import md_escape
from explorer.runtime import latency, workers
from explorer.ui import data, graph_panel, heavy
from explorer.ui.controls import LAYOUT_NAMES, compare_controls
from explorer.ui.words import MACS_NOTE
from explorer.variants import VARIANTS, ConfigError

st.title(_("Compare"))
choice = compare_controls()
chosen, size = choice.variants, choice.input_size
if not chosen:
    st.info(_("Pick at least one variant."))
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
rows = data.compare_rows_with_memory(rows)
skipped = [why for r in rows for why in r["skipped"]]
if skipped:
    st.caption(_("Not applied: {what}.").format(  # kept in English by the cache: said again
        what="; ".join(again(s, *SKIPPED, *LAYOUT_NAMES) for s in skipped)))

st.dataframe(
    [{"variant": r["variant"], "layout": _(LAYOUT_NAMES.get(r["layout"], r["layout"])),
      "input": r["input_size"],
      "params (M)": r["total_params"] / 1e6, "BN params (K)": r["total_bn_params"] / 1e3,
      "GMACs": r["total_macs"] / 1e9,
      "blocks": r["blocks"], "activations (MiB)": r["activation_bytes"] / 2**20,
      "peak memory (MiB)": r["peak_memory_bytes"] / 2**20,
      "top-1 %": r["top1"], "top-5 %": r["top5"]}
     for r in rows],
    hide_index=True,
    column_config={"variant": st.column_config.TextColumn(_("variant")),
                   "layout": st.column_config.TextColumn(_("layout")),
                   "input": st.column_config.NumberColumn(_("input")),
                   "params (M)": st.column_config.NumberColumn(_("params (M)"), format="%.2f"),
                   "BN params (K)": st.column_config.NumberColumn(
                       _("BN params (K)"), format="%.1f",
                       help=_("BatchNorm scale and shift: already inside params")),
                   "GMACs": st.column_config.NumberColumn(format="%.3f"),
                   "blocks": st.column_config.NumberColumn(_("blocks")),
                   "activations (MiB)": st.column_config.NumberColumn(_("activations (MiB)"),
                                                                      format="%.1f"),
                   "peak memory (MiB)": st.column_config.NumberColumn(
                       _("peak memory (MiB)"), format="%.0f",
                       help=_("estimated by the memory guard: building the network and one "
                              "forward pass of one float32 image")),
                   "top-1 %": st.column_config.NumberColumn(format="%.1f"),
                   "top-5 %": st.column_config.NumberColumn(format="%.1f")})
st.caption(_("Measured here: params (BatchNorm's scale and shift included), MACs, blocks "
             "(rows at block depth, heads included) and "
             "activations (every layer's float32 output once, one image). Peak memory: the "
             "memory guard's estimate for each network alone (weights, the largest set of "
             "tensors a forward pass of one float32 image holds at once, runtime). {macs_note}. "
             "Accuracy: published ImageNet validation numbers at the native size (public weights "
             "where they exist, else the paper), for the reference build: not for the input size "
             "or options chosen above.").format(macs_note=_(MACS_NOTE)))
st.caption(_("Accuracy sources: {sources}.").format(
    sources="; ".join(f"{r['variant']}: {r['accuracy_source']}" for r in rows)))
stem = "compare_" + "_".join(r["variant"] for r in rows)
d1, d2, _rest = st.columns([1, 1, 4])
# made when clicked (outside this run): the rows are captured now
d1.download_button("CSV", lambda table=rows: compare_csv(table), f"{stem}.csv", "text/csv",
                   icon=":material/download:", key="compare_csv",
                   help=_("one line per network; raw numbers (bytes, MACs, parameters)"))
d2.download_button("JSON", lambda table=rows: json.dumps(compare_table(table), indent=1),
                   f"{stem}.json", "application/json", icon=":material/download:",
                   key="compare_json", help=_("the same records as the CSV"))

a, b = st.columns(2)
a.plotly_chart(charts.params_macs_bars(rows))
b.plotly_chart(charts.accuracy_vs_macs(rows))
st.plotly_chart(charts.stage_macs(stages))

st.subheader(_("Two graphs, one above the other"))
graph_panel.compare_pair(list(VARIANTS))

st.subheader(_("Measured latency: do MACs predict time?"))
st.caption(_("Each network built with random weights (they do not change the time) and run on "
             "the batch sizes chosen below, no autograd, the networks in turns (so that a change "
             "in the machine's load hits all alike): one warm-up, then {runs} runs at batch 1 "
             "and {other_runs} at larger batches; the table gives the fastest, the median and "
             "the slowest. GMAC/s = MACs x batch / median time; the limit is this machine's own "
             "peak, a {size}x{size} matmul in the same precision on the same threads (timed with "
             "the BLAS and as a 1x1 convolution, the library the networks' convolutions run on: "
             "the faster counts). Kept for everyone on this server, per network, options, batch, "
             "precision, device and threads.").format(
                 runs=latency.RUNS[1], other_runs=latency.OTHER_RUNS, size=latency.PEAK_SIZE))
device = "cpu"
c_dev, c_batch, c_dtype = st.columns([1, 2, 2])
if torch.cuda.is_available():  # a choice only where there is one
    device = c_dev.segmented_control(_("Device"), ["cpu", "cuda"], default="cpu",
                                     key="latency_device",
                                     format_func=lambda d: {"cpu": "CPU", "cuda": "GPU"}[d]) or "cpu"
batches = tuple(sorted(c_batch.pills(_("Batch sizes"), latency.BATCH_CHOICES,
                                     selection_mode="multi", default=list(latency.BATCHES),
                                     key="latency_batches")
                       or latency.BATCHES))
dtype = c_dtype.segmented_control(_("Precision"), latency.DTYPES, default="float32",
                                  key="latency_dtype",
                                  help=_("weights and inputs in this precision; bfloat16 is fast "
                                         "on CPUs with native bf16 (AVX-512 BF16, AMX) and on "
                                         "GPUs; bfloat16 is timed with eager PyTorch only")
                                  ) or "float32"
# eager, for_inference, ONNX Runtime (CPU, extra); in float32
runtimes = latency.available_runtimes(device) if dtype == "float32" else ("eager",)
biggest = latency.estimate(rows, device, runtimes, batches, dtype)  # together, or the probe
heavy.cancelled("measure")
left, right = st.columns([1, 3])
clicked = left.button(_("Measure on {device}").format(device="GPU" if device == "cuda" else "CPU"),
                      icon=":material/timer:")
refresh = right.checkbox(_("Measure again (replace the kept results)"), key="latency_refresh")
heavy.needs(biggest, biggest.what[:1].upper() + biggest.what[1:] + ":")


if clicked:
    bar = st.progress(0.0, text=_("waiting for a worker..."))
    measured = heavy.run(_("measuring {n} variant(s)").format(n=len(rows)), biggest,
                         "explorer.runtime.tasks:measure_latency",
                         {"rows": rows, "device": device, "refresh": refresh,
                          "runtimes": runtimes, "batches": list(batches), "dtype": dtype},
                         key="measure",
                         advice=_("choose fewer networks, a smaller width, input size or fewer "
                                  "blocks"),
                         on_progress=lambda p: bar.progress(p[0], text=p[1]))
    bar.empty()
    for entry_key, value in measured or []:  # measured in a worker: kept here for everyone
        latency.remember(entry_key, value)
# measured in worker processes (or Ray tasks) with their own thread count
found = latency.report(rows, device=device, threads=workers.job_cpus(), batches=batches,
                       dtype=dtype)
if found is None:
    st.info(_("Not measured yet with these options on this device: press the button."),
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
        line |= {f"min ms @{n}": t["min_ms"], f"ms @{n}": t["median_ms"],
                 f"max ms @{n}": t["max_ms"], f"GMAC/s @{n}": t["gmacs_per_s"],
                 f"% of peak @{n}": 100 * t["peak_fraction"]}
    for rt, timed in r.get("runtimes", {}).items():  # what a deployer would run, same turns
        line |= {f"{latency.RUNTIMES[rt].split(' (')[0]} ms @{t['batch']}": t["median_ms"]
                 for t in timed}
    table.append(line)
st.dataframe(table, hide_index=True,
             column_config={"variant": st.column_config.TextColumn(_("variant")),
                            "input": st.column_config.NumberColumn(_("input")),
                            **{c: st.column_config.NumberColumn(
                                c.replace("% of peak", _("{percent} of peak").format(percent="%")),
                                format="%.3f" if c == "GMACs" else "%.1f")
                               for c in table[0] if c not in ("variant", "input")}})
beside = latency.runtime_lessons(found["rows"])
if beside:
    st.caption(" ".join(md_escape(s) for s in beside) + " " + _(
        "for_inference: our optimised copy (BatchNorm folded into the convs, channels-last); "
        "ONNX Runtime: the network's checked ONNX export (explorer.runtime.onnx), CPU execution "
        "provider, same thread count."))
if device == "cpu" and dtype == "float32" and "onnxruntime" not in runtimes:
    from explorer.runtime.onnx import missing, missing_message
    st.caption(md_escape(missing_message(missing()) + " " + _("(for the ONNX Runtime column)")))
first = found["rows"][0]["latency"][0]
st.caption(" ".join(md_escape(s) for s in said["rate"] + said["peak"])
           + " " + md_escape(_("Peak: the fastest of {runs} runs of a {size}x{size} {math} matmul "
                               "({gmacs} GMACs in {ms} ms, as {kernel}). Timed on {device}, "
                               "{threads} threads, {dtype}; ms: the median, with the min and max, "
                               "of {net_runs} runs at batch {batch} after a warm-up; GMAC/s and the "
                               "share of the peak from the median.").format(
                                   runs=top["runs"], size=top["size"], math=top["math"],
                                   gmacs=f"{top['macs'] / 1e9:.2f}", ms=f"{top['best_ms']:.1f}",
                                   kernel=top["kernel"], device=first["device_name"],
                                   threads=first["threads"], dtype=dtype, net_runs=first["runs"],
                                   batch=first["batch"])))
