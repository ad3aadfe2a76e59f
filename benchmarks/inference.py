"""Forward latency of our optimised models vs the torchvision / timm models with the same weights,
and vs ONNX Runtime running the reference model.

    python benchmarks/inference.py [--repeat N] [--batches 1,8] [--device cpu|cuda|all]
                                   [--threads N] [--calls N] [--only VARIANT,...]

On the CPU, with onnxruntime installed (the onnx extra), two more columns: ONNX Runtime on the
reference model exported with ``torch.onnx.export(..., dynamo=True)`` (a session with the same
thread count, graph optimisations on, and idle threads that sleep: ORT's default spinning slowed
whatever ran next for ~0.1 s, and alone it was no faster), and ours in float32 on PyTorch alone
(``engine="torch"``); ours in float32 is ``for_inference``'s default engine (ONNX Runtime on
our folded model, its export done before timing; the first-call times are printed: export +
session, then a session from the disk cache). Ratios in the CPU table are to ONNX Runtime's
time (goal: float32 <= 1.0, bfloat16 < 1.0). ResNet-50 is our ``resnet50`` with torchvision's
weights, like the others.

Each reference model gets random weights and batch-norm statistics measured on the sample
photos (so that activations and logits have realistic sizes), is saved, and loaded into ours
(``build(weights=)``); ours then runs as ``explorer.for_inference(model, dtype)`` makes it, in
float32 and in each lower precision this device runs natively (bfloat16 on CPUs with AVX-512
BF16 or AMX; bfloat16 and float16 on GPUs). The reference runs as its library builds it
(float32, contiguous, eval mode, aux head off, under ``torch.inference_mode``). Every model runs
the same batch in turn within each repeat, after a warm-up, so that load from other processes
hits them alike (``--calls`` calls in a row per model and turn, their median taken); the median
over ``--repeat`` turns is printed with the ratio ours / reference
(goals: float32 <= 0.9, bfloat16 <= 0.6). The float32 outputs are checked to agree before
anything is timed.

Then, for each lower precision, what it changes: top-1 agreement with our float32 model and the
largest change of any class probability, on the bundled sample photos (assets/samples, each
network's own preprocessing) and on random inputs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

import explorer
from explorer.runtime.fast import agreement, supported_precisions

CASES = {  # our variant, the reference's maker, input size
    "googlenet": ("torchvision", lambda tv, timm: tv.googlenet(weights=None, aux_logits=False,
                                                               init_weights=False), 224),
    "inception_v3": ("torchvision", lambda tv, timm: tv.inception_v3(
        weights=None, aux_logits=False, init_weights=False), 299),
    "inception_v4": ("timm", lambda tv, timm: timm.create_model("inception_v4"), 299),
    "inception_resnet_v2": ("timm", lambda tv, timm: timm.create_model("inception_resnet_v2"), 299),
    "resnet50": ("torchvision", lambda tv, timm: tv.resnet50(weights=None), 224),
}


def has_variant(name: str) -> bool:
    from explorer.variants import VARIANTS
    return name in VARIANTS


def ort_reference(model, size: int, folder: Path, threads: int):
    """ONNX Runtime on ``model`` exported with dynamo=True (dynamic batch): a callable taking a
    float32 tensor, and the export + session seconds; None where onnxruntime is missing."""
    from explorer.runtime import ort_engine

    if ort_engine.available() is not None:
        return None, None
    start = time.perf_counter()
    path = folder / f"reference_{size}_{id(model)}.onnx"
    ort_engine.export(model, size, size, path)
    session = ort_engine.OrtSession(path, threads, None)
    seconds = time.perf_counter() - start
    return (lambda x: session.session.run(None, {session.input: x.numpy()})[0]), seconds



def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def median_ms(model, x, repeat: int, device: str) -> float:
    times = []
    with torch.inference_mode():
        for _ in range(repeat):
            sync(device)
            start = time.perf_counter()
            model(x)
            sync(device)
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def calibrate(model, x: torch.Tensor):
    """Batch-norm statistics measured on ``x`` (the sample photos), as training on photos would
    leave them (the default ones, mean 0 and variance 1, let activations drift through ~100
    layers); returns the model in eval mode."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum = None  # a cumulative average: one batch sets the statistics
    with torch.no_grad():
        model.train()(x)
    return model.eval()


@contextlib.contextmanager
def strict_float32():
    """Float32 arithmetic on a GPU too: cuDNN's convolutions use TF32 (10 mantissa bits) by
    PyTorch's default, enough to move these logits by ~3e-2. The check runs without it; the
    timings run with the library defaults, for both models alike."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def lower_precisions(device: str) -> list[str]:
    return [p for p in supported_precisions(device) if p != "float32"]


def samples(variant: str):
    from explorer.core.images import load_image, sample_images, to_batch
    from explorer.weights.pretrained import default_spec

    photos = [load_image(path) for path in sample_images().values()]
    return to_batch(photos, default_spec(variant).preprocess)


def run(device: str, batches: list[int], repeat: int, folder: Path,
        only: list[str] | None = None, calls: int = 3) -> tuple[list, list]:
    import timm
    import torchvision.models as tv

    rows, agreements = [], []
    for variant, (library, make, size) in CASES.items():
        if only and variant not in only:
            continue
        torch.manual_seed(0)
        photos = samples(variant if has_variant(variant) else "googlenet")
        reference = calibrate(make(tv, timm), photos)
        path = folder / f"{variant}.pth"
        torch.save(reference.state_dict(), path)
        plain = (explorer.build(variant, weights=path, device=device) if has_variant(variant)
                 else reference)
        ours = {p: explorer.for_inference(plain, p, engine="auto") for p in
                ["float32", *lower_precisions(device)]}
        extra, first_call = {}, {}
        if device == "cpu":
            runner, seconds = ort_reference(reference, size, folder, torch.get_num_threads())
            if runner is not None:
                extra["onnxruntime"] = lambda x, run=runner: run(x)
                first_call["reference export + session"] = seconds
                start = time.perf_counter()
                engine = ours["float32"].prepare(size, size)  # ours: export (once) + session
                first_call[f"ours ({engine}) export + session"] = time.perf_counter() - start
                again = explorer.for_inference(plain, engine="auto")
                start = time.perf_counter()
                again.prepare(size, size)
                first_call["ours, session from the disk cache"] = time.perf_counter() - start
                extra["float32 (torch)"] = explorer.for_inference(plain, engine="torch")
        print(f"{variant}: first call " + ", ".join(f"{k} {v:.1f} s" for k, v in first_call.items()),
              flush=True)
        reference = reference.to(device)
        for batch in batches:
            x = torch.randn(batch, 3, size, size, device=device)
            with torch.inference_mode(), strict_float32():
                want = reference(x)
                diff = (ours["float32"](x) - want).abs().max().item()
                largest = want.abs().max().item()  # the 1e-4 contract scales with the logits' size
                for name, model in extra.items():
                    other = (torch.as_tensor(model(x)) - want).abs().max().item()
                    assert other < 1e-2, f"{variant} {name}: outputs differ by {other}"
            assert diff < 1e-2, f"{variant}: outputs differ by {diff}"
            models = {"reference": reference, **extra, **ours}
            for model in models.values():
                median_ms(model, x, 2, device)  # warm-up
            times = {name: [] for name in models}
            for _ in range(repeat):  # in turn, so that drift and load hit all alike
                for name, model in models.items():
                    times[name].append(median_ms(model, x, calls, device))
            row = {"variant": variant, "reference": library, "device": device, "batch": batch,
                   "ref_ms": statistics.median(times["reference"]), "max_abs_diff": diff,
                   "max_abs_logit": largest}
            base = "onnxruntime" if "onnxruntime" in extra else "reference"
            row["base"] = base
            for name in [*extra, *ours]:
                row[f"{name}_ms"] = statistics.median(times[name])
                row[f"{name}_ratio"] = row[f"{name}_ms"] / statistics.median(times[base])
            rows.append(row)
            print(f"{variant:20} {library:11} {device:4} batch {batch:3}: reference "
                  f"{row['ref_ms']:8.1f} ms" + "".join(
                      f"  {name} {row[f'{name}_ms']:8.1f} ms ({row[f'{name}_ratio']:.2f})"
                      for name in [*extra, *ours]) + f"  [ratios to {base}]", flush=True)
        for name in ours:
            if name == "float32":
                continue
            for inputs, x in (("samples", photos),
                              ("random", torch.randn(16, 3, size, size,
                                                     generator=torch.Generator().manual_seed(1)))):
                x = x.to(device)
                with torch.inference_mode(), strict_float32():  # against true float32
                    stats = agreement(plain(x), ours[name](x))
                agreements.append({"variant": variant, "device": device, "precision": name,
                                   "inputs": inputs, **stats})
        del plain, ours, reference
    return rows, agreements


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--only", help="comma-separated variants (default: all)")
    parser.add_argument("--device", default="all", choices=("cpu", "cuda", "all"))
    parser.add_argument("--threads", type=int, help="CPU threads (default: torch's choice)")
    parser.add_argument("--calls", type=int, default=3,
                        help="calls in a row per model and turn, their median taken (the first "
                             "one may still pay for the model before: ONNX Runtime's and "
                             "OpenMP's idle threads spin for a while after a run)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    devices = [d for d in devices if d == "cpu" or torch.cuda.is_available()]
    batches = [int(b) for b in args.batches.split(",")]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
          + (f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""))
    rows, agreements = [], []
    with tempfile.TemporaryDirectory() as tmp:
        # our ONNX exports go to a fresh cache, so that the first-call times include the export
        os.environ["INCEPTION_EXPLORER_CACHE"] = str(Path(tmp) / "cache")
        for device in devices:
            timed, agreed = run(device, batches, args.repeat, Path(tmp),
                                args.only.split(",") if args.only else None, args.calls)
            rows += timed
            agreements += agreed
    for device in devices:
        lower = lower_precisions(device)
        timed = [r for r in rows if r["device"] == device]
        ort = any("onnxruntime_ms" in r for r in timed)
        cols = (["onnxruntime", "float32 (torch)"] if ort else []) + ["float32", *lower]
        base = "ONNX Runtime" if ort else "the reference"
        print(f"\nratios: to {base}'s time; float32 = for_inference's default engine")
        print("| variant | reference | device | batch | reference eager (ms) |"
              + "".join(f" {c} (ms) | ratio |" for c in cols)
              + " max abs diff (float32) | largest abs logit |")
        print("|---" * (7 + 2 * len(cols)) + "|")
        for r in timed:
            print(f"| {r['variant']} | {r['reference']} | {r['device']} | {r['batch']} | "
                  f"{r['ref_ms']:.1f} |"
                  + "".join(f" {r[f'{c}_ms']:.1f} | {r[f'{c}_ratio']:.2f} |" for c in cols)
                  + f" {r['max_abs_diff']:.1e} | {r['max_abs_logit']:.1f} |")
    if agreements:
        print("\n| variant | device | precision | inputs | images | top-1 agreement | "
              "largest probability change | largest logit change |")
        print("|---" * 8 + "|")
        for a in agreements:
            print(f"| {a['variant']} | {a['device']} | {a['precision']} | {a['inputs']} | "
                  f"{a['images']} | {100 * a['top1_agreement']:.0f} % | "
                  f"{a['max_prob_change']:.4f} | {a['max_logit_change']:.3f} |")


if __name__ == "__main__":
    main()
