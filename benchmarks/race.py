"""The Lab's default race, end to end, as a student's command runs it.

    python benchmarks/race.py [--repeats N] [--seeds 0,1,2] [--steps 400]
                              [--baseline CHECKOUT] [--json FILE]
    python benchmarks/race.py --floor [--seeds 0,1,2] [--steps 400]

Each repeat runs ``python -m explorer race inception_v4 inception_resnet_v2 --seeds ... --json``
as a fresh process with an empty run cache (a temporary ``$INCEPTION_EXPLORER_CACHE``), so
nothing is answered from an earlier run, and prints its wall-clock and CPU seconds (the process
and its threads), and per network the training milliseconds per step (mean over its seeds,
evaluation passes not counted) and the final validation accuracy.

``--baseline CHECKOUT`` runs the same race with another checkout of the project (e.g. a
``git worktree`` of an older commit) in turns with this one, baseline first (A B A B ...), so
that the machine's load hits both alike; then the ratio this / baseline, repeat by repeat.

``--floor`` says how fast the race could be with these kernels: per network, in this process on
one thread, a training step (median of 5 chunks of 10 steps after 10 warm-up steps), the part
of it spent inside the convolutions (forward, backward-data and backward-weights calls, their
self time in torch's profiler over 20 more steps) and one evaluation of the validation digits
(median of 3); then the race's seconds on this machine's cores if everything but the
convolutions and the evaluations cost nothing (runs spread perfectly over the cores).

The first lines state the machine: CPU model, cores, whether it has native bfloat16 (the race
then trains under bfloat16 autocast), torch's version, the race's threads per run, and the load
average before and after each run. Timings are no test's business (docs/benchmarks.md): on a
shared machine compare the ratios of runs made side by side, not seconds from another day.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NETWORKS = ("inception_v4", "inception_resnet_v2")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> str:
    sys.path.insert(0, str(ROOT))
    import torch

    from explorer.lab.training import THREADS, train_precision
    from explorer.runtime.fast import cpu_has_bf16

    return (f"{cpu_model()}, {os.cpu_count()} cores, native bfloat16: "
            f"{'yes' if cpu_has_bf16() else 'no'} (race precision {train_precision('cpu')}), "
            f"torch {torch.__version__}, {THREADS} thread per run")


def one_race(checkout: Path, seeds: str, steps: int) -> dict:
    """One race in a fresh process and a fresh cache: seconds, CPU seconds, its JSON."""
    with tempfile.TemporaryDirectory(prefix="race-bench-") as cache:
        env = {**os.environ, "INCEPTION_EXPLORER_CACHE": cache, "PYTHONPATH": str(checkout)}
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        load = os.getloadavg()[0]
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "explorer", "race", *NETWORKS, "--seeds", seeds,
                              "--steps", str(steps), "--device", "cpu", "--json"],
                             cwd=checkout, env=env, check=True, capture_output=True, text=True)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"seconds": wall, "cpu_seconds": cpu, "load": (load, os.getloadavg()[0]),
            "race": json.loads(out.stdout)}


def describe(name: str, run: dict) -> str:
    parts = []
    for s in run["race"]["summary"]:
        ms, acc = s["ms_per_step"]["mean"], s["final_val_acc"]["mean"]
        parts.append(f"{s['label']} {ms:.0f} ms/step, final val. acc. {100 * acc:.1f} %")
    low, high = sorted(run["load"])
    return (f"{name:<9} {run['seconds']:7.1f} s wall {run['cpu_seconds']:7.1f} s CPU  load "
            f"{low:.1f}-{high:.1f}  " + "; ".join(parts))


def floor(seeds: int, steps: int) -> None:
    """Print the convolutions-and-evaluations floor of the race (see the module's docstring)."""
    sys.path.insert(0, str(ROOT))
    import torch
    from torch.profiler import ProfilerActivity, profile

    from explorer.lab import training
    from explorer.lab.config import LabConfig

    points = training.DEFAULT_POINTS + 2  # step 0, the curve's points, the training accuracy
    # 90 steps are measured (warm-up, timing, profile): the request must hold that many batches
    request = training.make_request([LabConfig(n) for n in NETWORKS], seeds=(0,),
                                    steps=max(steps, 90), device="cpu")
    convs = ("aten::mkldnn_convolution", "aten::convolution_backward")
    total_floor = total_now = 0.0
    torch.set_num_threads(training.THREADS)
    for cfg in request.configs:
        trainer = training._Trainer(cfg, 0, request)
        trainer.start()  # the step-0 point (an evaluation: a warm-up for the ones timed below)
        evaluate, trainer.evaluate = trainer.evaluate, lambda split="val": 0.0  # time it apart
        trainer.train(10, lambda: False)
        per_step = []
        for _ in range(5):
            before = trainer.seconds
            trainer.train(trainer.step + 10, lambda: False)
            per_step.append((trainer.seconds - before) / 10)
        evals = []
        for _ in range(3):
            start = time.perf_counter()
            evaluate()
            evals.append(time.perf_counter() - start)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            trainer.train(trainer.step + 20, lambda: False)
        conv = sum(e.self_cpu_time_total for e in prof.key_averages() if e.key in convs) / 20e6
        step, one_eval = statistics.median(per_step), statistics.median(evals)
        total_now += seeds * (steps * step + points * one_eval)
        total_floor += seeds * (steps * conv + points * one_eval)
        print(f"{cfg.label():<42} step {1000 * step:5.0f} ms, of it convolutions "
              f"{1000 * conv:4.0f} ms ({conv / step:.0%}); one evaluation {one_eval:.2f} s "
              f"({points} a run)")
    cores = os.cpu_count() or 1
    print(f"{seeds} seed(s) x {steps} steps on {cores} core(s): steps and evaluations "
          f"{total_now:.0f} CPU s = {total_now / cores:.0f} s at best; convolutions and evaluations "
          f"alone {total_floor:.0f} CPU s = {total_floor / cores:.0f} s at best")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--baseline", type=Path, help="another checkout, timed in turns with this one")
    ap.add_argument("--json", type=Path, help="write every run (with its race) to this file")
    ap.add_argument("--floor", action="store_true",
                    help="what the convolutions and evaluations alone cost (see above)")
    args = ap.parse_args()
    print(f"machine: {machine()}")
    if args.floor:
        floor(len(args.seeds.split(",")), args.steps)
        return
    print(f"race: {' '.join(NETWORKS)} --seeds {args.seeds} --steps {args.steps} (fresh cache, "
          f"fresh process each run)")
    sides = ([("baseline", args.baseline.resolve())] if args.baseline else []) + [("this", ROOT)]
    results: dict[str, list[dict]] = {name: [] for name, _ in sides}
    for i in range(args.repeats):
        for name, checkout in sides:
            run = one_race(checkout, args.seeds, args.steps)
            results[name].append(run)
            print(f"[{i + 1}/{args.repeats}] " + describe(name, run), flush=True)
    for name, runs in results.items():
        secs = [r["seconds"] for r in runs]
        print(f"{name}: median {statistics.median(secs):.1f} s wall (runs "
              f"{', '.join(f'{s:.1f}' for s in secs)}), median "
              f"{statistics.median(r['cpu_seconds'] for r in runs):.1f} s CPU")
    if args.baseline:
        ratios = [t["seconds"] / b["seconds"] for b, t in zip(results["baseline"], results["this"])]
        print(f"this / baseline, wall, repeat by repeat: {', '.join(f'{r:.2f}' for r in ratios)} "
              f"(median {statistics.median(ratios):.2f})")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "seeds": args.seeds,
                                         "steps": args.steps, "runs": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
