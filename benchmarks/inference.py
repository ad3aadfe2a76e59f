"""Forward latency of our models vs the torchvision / timm models with the same weights.

    python benchmarks/inference.py [--repeat N] [--batches 1,16] [--device cpu|cuda|all]

Each reference model gets random weights, is saved, and loaded into ours (``build(weights=)``);
both run the same batch under ``torch.inference_mode`` (reference in eval mode, its aux head
off), alternately, after a warm-up; the median of ``--repeat`` runs is printed with the ratio
ours / reference (goal: <= 1.0). The outputs are checked to agree before anything is timed.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

import explorer

CASES = {  # our variant, the reference's maker, input size
    "googlenet": ("torchvision", lambda tv, timm: tv.googlenet(weights=None, aux_logits=False,
                                                               init_weights=False), 224),
    "inception_v3": ("torchvision", lambda tv, timm: tv.inception_v3(
        weights=None, aux_logits=False, init_weights=False), 299),
    "inception_v4": ("timm", lambda tv, timm: timm.create_model("inception_v4"), 299),
    "inception_resnet_v2": ("timm", lambda tv, timm: timm.create_model("inception_resnet_v2"), 299),
}


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


def run(device: str, batches: list[int], repeat: int, folder: Path) -> list[dict]:
    import timm
    import torchvision.models as tv

    rows = []
    for variant, (library, make, size) in CASES.items():
        torch.manual_seed(0)
        reference = make(tv, timm).eval()
        path = folder / f"{variant}.pth"
        torch.save(reference.state_dict(), path)
        ours = explorer.build(variant, weights=path, device=device)
        reference = reference.to(device)
        for batch in batches:
            x = torch.randn(batch, 3, size, size, device=device)
            with torch.inference_mode():
                diff = (ours(x) - reference(x)).abs().max().item()
            assert diff < 1e-3, f"{variant}: outputs differ by {diff}"
            median_ms(ours, x, 2, device)
            median_ms(reference, x, 2, device)  # warm-up both
            ours_ms, ref_ms = [], []
            for _ in range(repeat):  # alternate so that drift hits both alike
                ours_ms.append(median_ms(ours, x, 1, device))
                ref_ms.append(median_ms(reference, x, 1, device))
            row = {"variant": variant, "reference": library, "device": device, "batch": batch,
                   "ours_ms": statistics.median(ours_ms), "ref_ms": statistics.median(ref_ms)}
            row["ratio"] = row["ours_ms"] / row["ref_ms"]
            rows.append(row)
            print(f"{variant:20} {library:11} {device:4} batch {batch:3}: ours "
                  f"{row['ours_ms']:8.1f} ms  reference {row['ref_ms']:8.1f} ms  "
                  f"ratio {row['ratio']:.2f}", flush=True)
        del ours, reference
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--batches", default="1,16")
    parser.add_argument("--device", default="all", choices=("cpu", "cuda", "all"))
    args = parser.parse_args()
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    devices = [d for d in devices if d == "cpu" or torch.cuda.is_available()]
    batches = [int(b) for b in args.batches.split(",")]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
          + (f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""))
    with tempfile.TemporaryDirectory() as tmp:
        rows = [r for d in devices for r in run(d, batches, args.repeat, Path(tmp))]
    print("\n| variant | reference | device | batch | ours (ms) | reference (ms) | ours / reference |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['variant']} | {r['reference']} | {r['device']} | {r['batch']} | "
              f"{r['ours_ms']:.1f} | {r['ref_ms']:.1f} | {r['ratio']:.2f} |")


if __name__ == "__main__":
    main()
