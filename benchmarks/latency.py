"""Latency beside MACs: does the work a network does predict the time it takes?

    python benchmarks/latency.py [--variants googlenet,inception_v4,...] [--device cpu|cuda]
                                 [--input-size N] [--width W]

Every variant (default: all, each at its native size) is built with random weights and timed at
batch 1 and 16 (``explorer.runtime.latency.measure``: one warm-up, then the median of 5 and 3 runs, no
autograd), then a 2048x2048 float32 matmul gives the machine's peak on the same threads. Prints,
per network: MACs, latency at each batch, achieved GMAC/s (MACs x batch / latency) and its
fraction of the peak; then the sentences the numbers support (the Compare page shows the same).
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys

import torch

from explorer.analysis.compare import compare_rows
from explorer.runtime import latency
from explorer.variants import VARIANTS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--input-size", type=int, help="one size for all (default: each native)")
    parser.add_argument("--width", type=float, help="channel multiplier for all")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA GPU here")
    options = {"width": args.width} if args.width else {}
    rows = compare_rows(args.variants.split(","), args.input_size, **options)
    load = os.getloadavg()
    print(f"{datetime.date.today()}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} CPUs, load average before {load[0]:.1f}"
          + (f", {torch.cuda.get_device_name()}" if args.device == "cuda" else ""), flush=True)

    def progress(frac, text):
        print(f"  {100 * frac:3.0f} % {text}", file=sys.stderr, flush=True)

    report = latency.measure(rows, device=args.device, progress=progress)
    top = report["peak"]
    print(f"\nmatmul peak: {top['gmacs_per_s']:.1f} GMAC/s ({top['size']}x{top['size']} "
          f"{top['math']} as {top['kernel']}, best of {top['runs']} runs: {top['best_ms']:.1f} ms; median "
          f"{top['median_ms']:.1f} ms) on {top['device_name']}, {top['threads']} threads; "
          f"load average after {os.getloadavg()[0]:.1f}\n")
    head = " | ".join(f"ms @{b} | GMAC/s @{b} | of peak @{b}" for b in latency.BATCHES)
    print(f"| variant | input | GMACs | {head} |")
    print("|---|---|---|" + "---|---|---|" * len(latency.BATCHES))
    for r in report["rows"]:
        cells = " | ".join(f"{t['median_ms']:.1f} | {t['gmacs_per_s']:.1f} | "
                           f"{100 * t['peak_fraction']:.0f} %" for t in r["latency"])
        print(f"| {r['variant']} | {r['input_size']} | {r['macs'] / 1e9:.3f} | {cells} |")
    print()
    for sentence in report["lessons"]:
        print(f"- {sentence}")


if __name__ == "__main__":
    main()
