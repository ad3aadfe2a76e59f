"""Time explorer.analyze() against torchinfo.summary on the same networks, in one run.

    python benchmarks/analysis.py [--repeat N]

Two measurements:
1. in-process, per variant: analyze() (uncached: a fresh walk of the variant's NetSpec) vs
   torchinfo.summary() of the same network built on the CPU (its usual use: a real forward);
2. whole processes for Inception-ResNet-v2: `python -m explorer summary inception_resnet_v2`
   vs a `python -c` that builds the model and prints torchinfo.summary -- the goal is a ratio
   of at most 0.1. The command line is timed cold (empty cache: it walks the NetSpec, no torch
   imported) and warm (the answer is in its on-disk cache, as for any repeated question). The
   three commands take turns, run after run, so that a machine whose load changes slows them
   alike.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path

import torch
import torchinfo

import explorer
from explorer.analysis.probe import _probe
from explorer.analysis.rows import _analyze_variant, analyze
from explorer.variants import _describe

TORCHINFO_PROCESS = (
    "import torch, torchinfo, explorer; "
    "m = explorer.build('inception_resnet_v2'); "
    "print(torchinfo.summary(m, input_size=(1, 3, 299, 299), device='cpu', depth=2, verbose=0))"
)


def best_of(fn, repeat: int) -> float:
    """The fastest of ``repeat`` calls, in seconds."""
    return min(timeit.repeat(fn, number=1, repeat=repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    print(f"{'variant':<21} {'analyze s':>10} {'torchinfo s':>12} {'ratio':>7}")
    for name in explorer.list_variants():
        size = explorer.VARIANTS[name].native_input_size

        def ours():
            _analyze_variant.cache_clear()
            _probe.cache_clear()
            _describe.cache_clear()
            analyze(name, depth="layer")

        def theirs():
            model = explorer.build(name)
            torchinfo.summary(model, input_size=(1, 3, size, size), device="cpu", verbose=0)

        ours()  # warm up both (first meta and CPU kernels)
        a, b = best_of(ours, args.repeat), best_of(theirs, args.repeat)
        print(f"{name:<21} {a:>10.3f} {b:>12.3f} {a / b:>7.2f}")

    print("\nwhole process, inception_resnet_v2 (median of", args.repeat, "runs, taking turns)")
    summary = [sys.executable, "-m", "explorer", "summary", "inception_resnet_v2"]
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "INCEPTION_EXPLORER_CACHE": cache, "XDG_CACHE_HOME": cache}
        commands = {"explorer, cold cache": (summary, Path(cache)),
                    "explorer, warm cache": (summary, None),
                    "torchinfo.summary": ([sys.executable, "-c", TORCHINFO_PROCESS], None)}
        runs = {label: [] for label in commands}
        for _ in range(args.repeat):
            for label, (cmd, clear) in commands.items():
                runs[label].append(timed_run(cmd, env, clear))
    medians = {label: statistics.median(times) for label, times in runs.items()}
    for label, seconds in medians.items():
        print(f"  {label:<22} {seconds:.2f} s  (runs: {', '.join(f'{t:.2f}' for t in runs[label])})")
    for label in ("explorer, cold cache", "explorer, warm cache"):
        ratio = medians[label] / medians["torchinfo.summary"]
        print(f"  {label}: ratio {ratio:.2f} (goal <= 0.10: {'met' if ratio <= 0.1 else 'not met'})")


def timed_run(cmd, env, clear: Path | None = None) -> float:
    """Seconds one process takes; ``clear`` is emptied first (a cold cache)."""
    if clear is not None:
        shutil.rmtree(clear, ignore_errors=True)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
