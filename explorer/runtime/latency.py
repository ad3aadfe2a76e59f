"""Latency that teaches: measured time beside MACs, the GMAC/s achieved, and the machine's limit.

MACs count work, not time. How fast a network runs also depends on how well its convolutions
keep the cores busy (wide layers on small grids do; thin branches, concatenations and
element-wise ops do not). To show that with numbers, each network is timed at a few batch sizes
(``forward_latency``), its achieved throughput is MACs x batch / latency, and the limit is the
machine's own measured peak: a large float32 matmul (``matmul_peak``, timed with the BLAS and
as a 1x1 convolution, the faster counts), the best case for the same kernels on the same
threads. ``lessons`` turns the measurements into sentences, so the page says "MACs do not
predict latency" only when the numbers say so.

Beside eager PyTorch, ``measure(..., runtimes=...)`` times what a deployer would run: the
optimised copy ``for_inference`` (BN folded, channels-last) and ONNX Runtime on the network's
checked ONNX export (``explorer.runtime.onnx``; CPU, when the ``onnx`` extra is installed), in
the same turns on the same threads; ``runtime_lessons`` says how they compare.

Results are cached in this process, shared by every session of a server, per (variant, build
config, input size, batch, device, threads, runtime): a second student pressing the button gets
the first one's numbers at once.
"""

from __future__ import annotations

import json
import math
import statistics
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

import torch

from explorer.core.i18n import N_, _

BATCHES = (1, 16)
BATCH_CHOICES = (1, 8, 16, 32)  # what the Compare page offers
OTHER_RUNS = 3           # timed runs at a batch RUNS does not name
DTYPES = ("float32", "bfloat16")  # the precisions a comparison is timed in (weights and input)
RUNS = {1: 5, 16: 3}     # timed runs after one warm-up: batch 16 of Inception-ResNet-v2 is seconds
PEAK_SIZE = 2048         # 2048^3 = 8.6 GMACs: a few tenths of a second on two cores
PEAK_RUNS = 5
MAX_ENTRIES = 512
PROPORTIONAL = 0.1       # time ratios within 10 % of the MAC ratio count as "in proportion"
SHOW_PAIRS = 3           # sentences per batch about networks that beat their MACs
# what each runtime is, in words (said with _(); a column is named by the part before " (")
RUNTIMES = {"eager": "eager PyTorch",
            "for_inference": N_("for_inference (BN folded, channels-last)"),
            "onnxruntime": "ONNX Runtime"}

_lock = threading.Lock()
_cache: OrderedDict[tuple, dict] = OrderedDict()


def gmacs_per_s(macs: float, batch: int, ms: float) -> float:
    """Achieved throughput: ``macs`` per image x ``batch`` images in ``ms`` milliseconds."""
    if ms <= 0:
        raise ValueError(f"a latency must be positive, got {ms} ms")
    return macs * batch / (ms * 1e6)   # MACs per ms / 1e6 = GMACs per s


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"


def matmul_peak(size: int = PEAK_SIZE, *, device: str = "cpu", runs: int = PEAK_RUNS,
                dtype: torch.dtype = torch.float32) -> dict:
    """The machine's measured limit: one ``size`` x ``size`` by ``size`` x ``size`` matmul
    (size^3 MACs) on the threads torch uses, after a warm-up; GMAC/s of the fastest of ``runs``
    (a limit is the best the machine did, not its average).

    The same matmul is timed twice: with ``torch.mm`` (the BLAS) and as a 1x1 convolution on a
    channels-last input (oneDNN / cuDNN, the libraries the networks' convolutions run on). On
    this project's CPU the BLAS reached less than half of what oneDNN did, and the networks beat
    a BLAS-only "peak": the faster of the two is the limit (``kernel`` says which)."""
    if size < 1 or runs < 1:
        raise ValueError(f"size and runs must be at least 1, got {size} and {runs}")
    dev = torch.device(device)
    a = torch.randn(size, size, device=dev, dtype=dtype)
    b = torch.randn(size, size, device=dev, dtype=dtype)
    out = torch.empty(size, size, device=dev, dtype=dtype)
    kernels = {"torch.mm": lambda: torch.mm(a, b, out=out), "1x1 conv": matmul_as_conv(a, b)}
    # a GPU does this product in well under a millisecond: time several back to back, so that
    # the launch and the synchronisation are not most of what is timed
    calls = 10 if dev.type == "cuda" else 1
    times: dict[str, list[float]] = {}
    for name, run in kernels.items():
        run()   # warm-up: kernel choice, page faults
        times[name] = []
        for _run in range(runs):
            _sync(dev)
            start = time.perf_counter()
            for _call in range(calls):
                run()
            _sync(dev)
            times[name].append((time.perf_counter() - start) * 1000 / calls)
    kernel = min(times, key=lambda k: min(times[k]))
    macs = size ** 3
    best = min(times[kernel])
    return {"gmacs_per_s": gmacs_per_s(macs, 1, best), "size": size, "macs": macs,
            "best_ms": best, "median_ms": statistics.median(times[kernel]), "runs": runs,
            "kernel": kernel, "kernels_best_ms": {k: min(v) for k, v in times.items()},
            "dtype": str(dtype).removeprefix("torch."), "math": _math(dev, dtype, kernel),
            "device": str(dev), "device_name": _device_name(dev),
            "threads": torch.get_num_threads()}


def _math(device: torch.device, dtype: torch.dtype, kernel: str) -> str:
    """The arithmetic the winning kernel did: on a GPU, float32 convolutions (and matmuls where
    allowed) run on TF32 tensor cores by PyTorch's default, 10 mantissa bits; the networks'
    convolutions too, so the peak and the networks are measured alike."""
    tf32 = (torch.backends.cudnn.allow_tf32 if kernel == "1x1 conv"
            else torch.backends.cuda.matmul.allow_tf32)
    if device.type == "cuda" and dtype == torch.float32 and tf32:
        return "float32 on TF32 tensor cores"
    return str(dtype).removeprefix("torch.")


def matmul_as_conv(a: torch.Tensor, b: torch.Tensor) -> Callable[[], torch.Tensor]:
    """``a @ b`` as a 1x1 convolution: a's rows are pixels (channels-last, as oneDNN likes them),
    its columns the input channels; b's columns the output channels. The call returns the
    product laid out as (1, columns of b, rows of a, 1)."""
    rows, inner = a.shape
    pixels = a.reshape(1, rows, 1, inner).permute(0, 3, 1, 2)  # NCHW view of NHWC memory
    weight = b.t().contiguous().reshape(b.shape[1], inner, 1, 1)
    return lambda: torch.nn.functional.conv2d(pixels, weight)


def cache_key(kind: str, *parts, device: str = "cpu", threads: int | None = None) -> tuple:
    """What a measurement depends on: the request, the device and torch's thread count (this
    process's, unless ``threads`` names the measuring worker's: explorer.runtime.workers)."""
    return (kind, json.dumps(parts, sort_keys=True, default=str), str(torch.device(device)),
            threads or torch.get_num_threads())


def cached(key: tuple) -> dict | None:
    with _lock:
        return _cache.get(key)


def remember(key: tuple, value: dict) -> dict:
    with _lock:
        _cache[key] = value
        _cache.move_to_end(key)
        while len(_cache) > MAX_ENTRIES:
            _cache.popitem(last=False)
    return value


def forget() -> None:
    """Drop every cached measurement (tests; or a machine whose load changed)."""
    with _lock:
        _cache.clear()


def _extra(dtype: str) -> tuple:
    """float32 keys stay as they were before precisions were offered."""
    if dtype not in DTYPES:
        raise ValueError(f"precision must be one of {', '.join(DTYPES)}, got {dtype!r}")
    return () if dtype == "float32" else (dtype,)


def latency_key(row: dict, batch: int, device: str = "cpu", runtime: str = "eager",
                threads: int | None = None, dtype: str = "float32") -> tuple:
    """The cache key of one compare row (``explorer.analysis.compare.compare_rows``) timed at
    ``batch`` with ``runtime`` (one of ``RUNTIMES``) in ``dtype``; ``threads``: the measuring
    worker's."""
    kind = "latency" if runtime == "eager" else f"latency {runtime}"
    return cache_key(kind, row["variant"], row["build"], row["input_size"], batch,
                     *_extra(dtype), device=device, threads=threads)


def available_runtimes(device: str = "cpu") -> tuple[str, ...]:
    """The runtimes ``measure`` can time here: ONNX Runtime on the CPU, with the onnx extra."""
    from explorer.runtime import onnx
    cpu = torch.device(device).type == "cpu"
    return tuple(r for r in RUNTIMES if r != "onnxruntime" or (cpu and not onnx.missing()))


def _time_once(run: Callable[[], object], device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    run()
    _sync(device)
    return (time.perf_counter() - start) * 1000


def peak_key(device: str = "cpu", size: int = PEAK_SIZE, threads: int | None = None,
             dtype: str = "float32") -> tuple:
    return cache_key("peak", size, *_extra(dtype), device=device, threads=threads)


def peak(device: str = "cpu", *, size: int = PEAK_SIZE, refresh: bool = False,
         dtype: str = "float32") -> dict:
    key = peak_key(device, size, dtype=dtype)
    other = {} if dtype == "float32" else {"dtype": getattr(torch, dtype)}
    return (not refresh and cached(key)) or remember(key, matmul_peak(size, device=device, **other))


def estimate(rows: list[dict], device: str = "cpu", runtimes=("eager",), batches=BATCHES,
             dtype: str = "float32"):
    """What ``measure`` holds at most at once (``explorer.runtime.memory.Estimate``): every network's
    weights together (they are timed in turns, so that a change in the machine's load hits all
    alike) plus the largest forward pass at the largest batch; or the matmul probe (three
    float32 matrices), whichever is larger."""
    from explorer.runtime.memory import RUNTIME_BYTES, RUNTIME_SHARE, Estimate, estimate_inference

    probe = Estimate(_("the matmul peak probe ({size}x{size} float32)").format(size=PEAK_SIZE),
                     str(device), 0, 3 * PEAK_SIZE ** 2 * 4, RUNTIME_BYTES)
    if not rows:
        return probe
    each = [estimate_inference(r["variant"], batch=max(batches), input_size=r["input_size"],
                               device=device, dtype=getattr(torch, dtype), **r["build"])
            for r in rows]
    weights, activations = sum(e.weights for e in each), max(e.activations for e in each)
    # each other runtime holds its own copy of every network's weights; an ONNX export holds a
    # few more of one network's while it runs (explorer.runtime.onnx.WEIGHT_COPIES)
    if "for_inference" in runtimes:
        weights *= 2
    if "onnxruntime" in runtimes:
        from explorer.runtime.onnx import WEIGHT_COPIES
        weights += sum(e.weights for e in each) + WEIGHT_COPIES * max(e.weights for e in each)
    names = ", ".join(r["variant"] for r in rows)
    # the runtime term as estimate_inference calibrates it, over everything held at once
    together = Estimate(_("timing {names} in turns, up to batch {batch}").format(
                            names=names, batch=max(batches)), str(device), weights, activations,
                        RUNTIME_BYTES + int(RUNTIME_SHARE * (weights + activations)))
    return max(together, probe, key=lambda e: e.total)


Progress = Callable[[float, str], None]


def measure(rows: list[dict], *, device: str = "cpu", batches=BATCHES, runs: dict | None = None,
            refresh: bool = False, progress: Progress | None = None,
            runtimes=("eager",), dtype: str = "float32") -> dict:
    """Time every compare row (``explorer.analysis.compare.compare_rows``) at each batch on
    ``device`` with each of ``runtimes`` (``RUNTIMES``; ``available_runtimes`` says which work
    here), what is not cached yet (everything with ``refresh``); then the matmul peak. The
    networks are built together and run in turns (one warm-up each, then run k of every network
    and runtime before run k+1), so that a change in the machine's load meanwhile hits them all
    alike. Weights and inputs in ``dtype`` (the peak too; bfloat16: eager only). Returns
    ``report``."""
    from explorer.runtime.build import build
    from explorer.runtime.timing import forward_latency

    unknown = set(runtimes) - set(RUNTIMES)
    if unknown or "eager" not in runtimes:
        raise ValueError(f"runtimes must include 'eager' and come from {', '.join(RUNTIMES)}, "
                         f"got {', '.join(runtimes)}")
    _extra(dtype)  # a precision we offer, or a clear error before anything is built
    if dtype != "float32" and tuple(runtimes) != ("eager",):
        raise ValueError(f"{dtype} is timed with eager PyTorch only, not with "
                         f"{', '.join(r for r in runtimes if r != 'eager')}")
    runs = {**RUNS, **(runs or {})}
    dev = torch.device(device)
    todo = {(b, rt): [r for r in rows
                      if refresh or cached(latency_key(r, b, device, rt, dtype=dtype)) is None]
            for b in batches for rt in runtimes}
    needed = [r for r in rows if any(r in t for t in todo.values())]
    extra = sum(1 for r in needed for rt in runtimes if rt != "eager"
                and any(r in todo[b, rt] for b in batches))
    steps = (len(needed) + extra + 1
             + sum(len(t) * (1 + runs.get(b, OTHER_RUNS)) for (b, _), t in todo.items()))
    done = 0

    def say(text: str) -> None:
        if progress:
            progress(min(1.0, done / steps), text)

    models, runners = {}, {}
    try:
        for r in needed:
            v = r["variant"]
            say(_("building {variant}...").format(variant=v))
            models[v] = build(v, device=device, input_size=r["input_size"],
                              **r["build"]).to(getattr(torch, dtype))
            done += 1
            if any(r in todo[b, "for_inference"] for b in batches if (b, "for_inference") in todo):
                from explorer.runtime.fast import for_inference
                say(_("{variant}: an optimised copy (BN folded, channels-last)...").format(variant=v))
                # PyTorch's copy: ONNX Runtime has its own column (an "auto" engine would switch
                # to it in the middle of the timings)
                fast = for_inference(models[v], engine="torch")
                runners[v, "for_inference"] = lambda x, fast=fast: fast(x)
                done += 1
            if any(r in todo[b, "onnxruntime"] for b in batches if (b, "onnxruntime") in todo):
                from explorer.runtime import onnx
                say(_("{variant}: exporting to ONNX and checking it (tens of seconds)...").format(
                    variant=v))
                session = onnx.session(onnx.export_model(models[v], r["input_size"]).data)
                runners[v, "onnxruntime"] = lambda x, s=session: s.run(
                    None, {onnx.INPUT_NAME: x.numpy()})
                done += 1
        for batch in batches:
            n = runs.get(batch, OTHER_RUNS)
            times: dict[tuple, list] = {(r["variant"], rt): [] for rt in runtimes
                                        for r in todo[batch, rt]}
            for k in range(n + 1):          # k == 0: the warm-up
                for r in rows:
                    v = r["variant"]
                    for rt in runtimes:
                        if r not in todo[batch, rt]:
                            continue
                        what = v if rt == "eager" else f"{v} ({_(RUNTIMES[rt])})"
                        say(_("batch {batch}: {what}, {step}").format(
                            batch=batch, what=what, step=_("run {k} of {n}").format(k=k, n=n)
                            if k else _("warm-up")))
                        if rt == "eager":
                            t = forward_latency(models[v], r["input_size"], batch=batch,
                                                repeats=1, warmup=0)
                        else:
                            x = torch.randn(batch, 3, r["input_size"], r["input_size"], device=dev)
                            ms = _time_once(lambda: runners[v, rt](x), dev)
                            t = {"median_ms": ms, "device_name": _device_name(dev),
                                 "threads": torch.get_num_threads()}
                        if k:
                            times[v, rt].append(t)
                        done += 1
            for (v, rt), measured in times.items():
                ms = [t["median_ms"] for t in measured]
                row = next(r for r in rows if r["variant"] == v)
                remember(latency_key(row, batch, device, rt, dtype=dtype), {
                    "median_ms": statistics.median(ms), "min_ms": min(ms), "max_ms": max(ms),
                    "repeats": n, "device_name": measured[0]["device_name"],
                    "threads": measured[0]["threads"]})
    finally:
        models.clear()
        runners.clear()
    say(_("matmul peak..."))
    top = peak(device, refresh=refresh, dtype=dtype)
    if progress:
        progress(1.0, _("done"))
    return report(rows, top, device=device, batches=batches, dtype=dtype)


def entries(rows: list[dict], *, device: str = "cpu", batches=BATCHES,
            dtype: str = "float32") -> list[tuple]:
    """The cached (key, value) pairs ``report`` reads for ``rows``: what a worker that measured
    them sends back to the web process (which ``remember``s them)."""
    keys = [latency_key(r, b, device, rt, dtype=dtype) for r in rows for b in batches
            for rt in RUNTIMES]
    keys.append(peak_key(device, dtype=dtype))
    return [(k, v) for k in keys if (v := cached(k)) is not None]


def report(rows: list[dict], top: dict | None = None, *, device: str = "cpu",
           batches=BATCHES, threads: int | None = None, dtype: str = "float32") -> dict | None:
    """What the cache holds for ``rows``: ``{"rows": [...], "peak": {...}, "lessons": [...]}``,
    or None while any of it is missing (nothing measured yet)."""
    top = top or cached(peak_key(device, threads=threads, dtype=dtype))
    if top is None:
        return None
    out = []
    for row in rows:
        times = []
        for batch in batches:
            t = cached(latency_key(row, batch, device, threads=threads, dtype=dtype))
            if t is None:
                return None
            rate = gmacs_per_s(row["total_macs"], batch, t["median_ms"])
            times.append({"batch": batch, "median_ms": t["median_ms"], "min_ms": t["min_ms"],
                          "max_ms": t["max_ms"], "runs": t["repeats"], "gmacs_per_s": rate,
                          "peak_fraction": rate / top["gmacs_per_s"],
                          "device_name": t["device_name"], "threads": t["threads"]})
        others = {}
        for rt in RUNTIMES:
            found = [cached(latency_key(row, b, device, rt, threads, dtype)) for b in batches]
            if rt != "eager" and all(found):
                others[rt] = [{"batch": b, "median_ms": t["median_ms"], "min_ms": t["min_ms"],
                               "max_ms": t["max_ms"], "runs": t["repeats"],
                               "of_eager": t["median_ms"] / e["median_ms"]}
                              for b, t, e in zip(batches, found, times)]
        out.append({"variant": row["variant"], "input_size": row["input_size"],
                    "macs": row["total_macs"], "latency": times,
                    **({"runtimes": others} if others else {})})
    return {"rows": out, "peak": top, "lessons": lessons(out, top)}


# -- what the numbers say -------------------------------------------------------------------------

def _name(variant: str) -> str:
    from explorer.variants import VARIANTS
    info = VARIANTS.get(variant)
    return info.title.split(" (")[0] if info else variant


def _at(row: dict, batch: int) -> dict:
    return next(t for t in row["latency"] if t["batch"] == batch)


def _percent(x: float) -> str:
    return f"{100 * x:.0f} %"


def lessons(measured: list[dict], top: dict | None = None) -> list[str]:
    """Plain sentences computed from ``measured`` (``report``'s rows): ``lessons_by_kind``'s,
    in order (MACs against time, GMAC/s achieved, the peak)."""
    return [s for kind in lessons_by_kind(measured, top).values() for s in kind]


def lessons_by_kind(measured: list[dict], top: dict | None = None) -> dict[str, list[str]]:
    """Sentences computed from ``measured`` (``report``'s rows: variant, macs, latency per
    batch), by kind, in the run's language (English outside a page):

    - ``order``: where a network with more MACs ran faster than one with fewer ("faster" only
      when every timed run of it beat every run of the other; overlapping runs are "no
      slower"), first; then, for a batch without any, that MACs ordered the times, in
      proportion or not (the pair furthest from proportion is named);
    - ``rate``: the spread of the GMAC/s achieved at each batch;
    - ``peak``: the best against the matmul peak ``top``.
    """
    out = {"order": [], "rate": [], "peak": []}
    if not measured:
        return out
    batches = [t["batch"] for t in measured[0]["latency"]]
    in_order = []  # said after every surprise, whatever its batch
    for batch in batches:
        inverted = []
        for a in measured:          # a: more MACs; b: fewer
            for b in measured:
                ta, tb = _at(a, batch), _at(b, batch)
                if a["macs"] > b["macs"] and ta["median_ms"] < tb["median_ms"]:
                    inverted.append((a, b, ta, tb))
        # the clearest first: the largest lead in time
        inverted.sort(key=lambda p: p[2]["median_ms"] / p[3]["median_ms"])
        for a, b, ta, tb in inverted[:SHOW_PAIRS]:
            more = a["macs"] / b["macs"] - 1
            if ta["max_ms"] < tb["min_ms"]:
                verb = _("ran {percent} faster").format(
                    percent=_percent(1 - ta["median_ms"] / tb["median_ms"]))
            else:
                verb = _("ran no slower (the runs overlap)")
            out["order"].append(_(
                "{more} has {percent} more MACs than {fewer} ({more_gmacs} vs {fewer_gmacs} GMACs) "
                "but {verb} at batch {batch} (median {more_ms} vs {fewer_ms} ms): MACs do not "
                "predict latency.").format(
                    more=_name(a["variant"]), percent=_percent(more), fewer=_name(b["variant"]),
                    more_gmacs=f"{a['macs'] / 1e9:.3g}", fewer_gmacs=f"{b['macs'] / 1e9:.3g}",
                    verb=verb, batch=batch, more_ms=f"{ta['median_ms']:.1f}",
                    fewer_ms=f"{tb['median_ms']:.1f}"))
        if len(inverted) > SHOW_PAIRS:
            out["order"].append(_("At batch {batch}, {n} more pair(s) ran in the opposite order of "
                                  "their MACs.").format(batch=batch, n=len(inverted) - SHOW_PAIRS))
        pairs = [(a["macs"] / b["macs"], _at(a, batch)["median_ms"] / _at(b, batch)["median_ms"],
                  a, b) for a in measured for b in measured if a["macs"] > b["macs"]]
        if not inverted and pairs:
            # the pair whose time is furthest from its MACs' ratio says the most
            mac_ratio, time_ratio, a, b = max(pairs, key=lambda p: abs(math.log(p[1] / p[0])))
            close = abs(math.log(time_ratio / mac_ratio)) < math.log(1 + PROPORTIONAL)
            text = (_("At batch {batch} more MACs meant more time here, roughly in proportion: "
                      "{more} has {mac_ratio}x the MACs of {fewer} and took {time_ratio}x as long.")
                    if close else
                    _("At batch {batch} more MACs meant more time here, but not in proportion: "
                      "{more} has {mac_ratio}x the MACs of {fewer} and took {time_ratio}x as long."))
            in_order.append(text.format(batch=batch, more=_name(a["variant"]),
                                        mac_ratio=f"{mac_ratio:.2f}", fewer=_name(b["variant"]),
                                        time_ratio=f"{time_ratio:.2f}"))
        if len(measured) > 1:
            rates = sorted(measured, key=lambda r: _at(r, batch)["gmacs_per_s"])
            lo, hi = _at(rates[0], batch)["gmacs_per_s"], _at(rates[-1], batch)["gmacs_per_s"]
            same = hi / lo < 1 + PROPORTIONAL
            out["rate"].append(
                (_("At batch {batch} the networks did {lo} ({slowest}) to {hi} GMAC/s ({fastest}): "
                   "about the same rate in every network.") if same else
                 _("At batch {batch} the networks did {lo} ({slowest}) to {hi} GMAC/s ({fastest}): "
                   "a MAC does not cost the same time in every network.")).format(
                    batch=batch, lo=f"{lo:.1f}", slowest=_name(rates[0]["variant"]),
                    hi=f"{hi:.1f}", fastest=_name(rates[-1]["variant"])))
    out["order"] += in_order
    if top:
        best, batch = max(((r, t["batch"]) for r in measured for t in r["latency"]),
                          key=lambda p: _at(*p)["gmacs_per_s"])
        out["peak"].append(_(
            "The best, {network} at batch {batch}, reached {percent} of this machine's matmul "
            "peak ({gmacs} GMAC/s, {size}x{size} {math} on {threads} threads{on}).").format(
                network=_name(best["variant"]), batch=batch,
                percent=_percent(_at(best, batch)["peak_fraction"]),
                gmacs=f"{top['gmacs_per_s']:.1f}", size=top["size"], math=top["math"],
                threads=top["threads"], on=_on(top)))
    return out


def _on(top: dict) -> str:
    return f", {top['device_name']}" if top.get("device_name", "CPU") != "CPU" else ""


def runtime_lessons(measured: list[dict]) -> list[str]:
    """What the other runtimes did against eager PyTorch, per runtime and batch (``report``'s
    rows with ``runtimes``): the range of their time as a share of eager's, and which was
    fastest for each network."""
    out = []
    timed = [r for r in measured if r.get("runtimes")]
    if not timed:
        return out
    for rt in [rt for rt in RUNTIMES if any(rt in r["runtimes"] for r in timed)]:
        for i, batch in enumerate(t["batch"] for t in timed[0]["latency"]):
            shares = [r["runtimes"][rt][i]["of_eager"] for r in timed if rt in r["runtimes"]]
            lo, hi = min(shares), max(shares)
            span = f"{lo:.2g}" if f"{lo:.2g}" == f"{hi:.2g}" else _("{lo} to {hi}").format(
                lo=f"{lo:.2g}", hi=f"{hi:.2g}")
            out.append(_("At batch {batch}, {runtime} took {span} of eager PyTorch's time (median "
                         "ms, same machine and threads).").format(batch=batch,
                                                                  runtime=_(RUNTIMES[rt]),
                                                                  span=span))
    for r in timed:
        by = {"eager": [t["median_ms"] for t in r["latency"]],
              **{rt: [t["median_ms"] for t in ts] for rt, ts in r["runtimes"].items()}}
        best = {min(by, key=lambda rt: by[rt][i]) for i in range(len(r["latency"]))}
        if len(best) == 1:
            out.append(_("Fastest for {network} at every batch: {runtime}.").format(
                network=_name(r["variant"]), runtime=_(RUNTIMES[best.pop()])))
    return out
