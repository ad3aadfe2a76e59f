"""Estimated vs measured peak memory of real builds (the honesty check of explorer.runtime.memory).

    python benchmarks/memory.py [--device cpu|cuda|all] [--cases inference|training|all] [--markdown]

Each case runs in a fresh Python process: torch imported, its CPU kernels warmed up on a tiny
convolution and the configuration validated (a meta-device pass, as the app does first); then
the resident set (VmRSS) is noted and the peak counter (VmHWM) reset; then the model is built
with random weights and run once (inference: batch B without autograd; training: forward,
backward and an SGD-with-momentum step). Measured = VmHWM - the RSS before the build; on a
GPU, ``torch.cuda.max_memory_allocated()`` is measured instead (the estimate has no runtime
term calibrated on a GPU yet: see the ratio). Goal: estimate within 25 %.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from explorer.runtime.memory import estimate_inference, estimate_training

ROOT = Path(__file__).resolve().parents[1]
INFERENCE = [  # variant, input size, batch, config
    ("googlenet", 224, 1, {}),
    ("googlenet", 1024, 1, {}),
    ("inception_v3", 299, 1, {}),
    ("inception_v3", 299, 16, {}),
    ("inception_v4", 299, 8, {}),
    ("inception_resnet_v2", 299, 1, {}),
    ("inception_resnet_v2", 800, 1, {}),
    ("inception_resnet_v2", 600, 1, {"width": 0.5}),
    ("bn_inception", 512, 4, {}),
    ("inception_v3", 75, 1, {"num_classes": 100_000}),
]
TRAINING = [
    ("googlenet", 224, 8, {}),
    ("inception_v4", 75, 32, {"width": 0.25}),
    ("inception_resnet_v2", 75, 32, {"width": 0.25}),
    ("inception_resnet_v2", 299, 8, {}),
]

CHILD = r"""
import json, sys, torch
from explorer.variants import resolve
from explorer.runtime.build import build
variant, size, batch, config, device, training = json.loads(sys.argv[1])

def status(field):
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith(field + ":"))

torch.nn.functional.conv2d(torch.randn(1, 3, 8, 8), torch.randn(4, 3, 3, 3))  # load the kernels
# validating the input size runs the network on the meta device, which imports torch's meta
# kernels (~170 MiB of Python, once per process; the app has paid it before any build)
resolve(variant, config.get("layout"), input_size=size,
        **{k: v for k, v in config.items() if k != "layout"})
if device == "cuda":
    torch.zeros(1, device="cuda")  # the CUDA context is not the model's
    torch.cuda.reset_peak_memory_stats()
base = status("VmRSS")
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset VmHWM to the current RSS
model = build(variant, device=device, input_size=size, **config)
x = torch.randn(batch, 3, size, size, device=device)
if training:
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    out = model(x)
    out = out[0] if isinstance(out, tuple) else out
    loss = torch.nn.functional.cross_entropy(out, torch.zeros(batch, dtype=torch.long, device=device))
    del out
    loss.backward()
    opt.step()
else:
    with torch.no_grad():
        model(x)
cuda = torch.cuda.max_memory_allocated() if device == "cuda" else None
print(json.dumps({"rss": status("VmHWM") - base, "cuda": cuda}))
"""


def measure(variant, size, batch, config, device, training) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", CHILD,
                           json.dumps([variant, size, batch, config, device, training])],
                          capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    if done.returncode:
        raise RuntimeError(f"{variant} {size}px: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(kinds, devices) -> list[dict]:
    rows = []
    for kind in kinds:
        for variant, size, batch, config in INFERENCE if kind == "inference" else TRAINING:
            for device in devices:
                if kind == "inference":
                    est = estimate_inference(variant, batch=batch, input_size=size,
                                             device=device, **config)
                else:
                    est = estimate_training(variant, batch=batch, input_size=size,
                                            device=device, **config)
                got = measure(variant, size, batch, config, device, kind == "training")
                measured = got["cuda"] if device == "cuda" else got["rss"]
                rows.append({"kind": kind, "variant": variant, "input": size, "batch": batch,
                             "config": ", ".join(f"{k}={v}" for k, v in config.items()) or "-",
                             "device": device, "estimate_mib": est.total / 2**20,
                             "measured_mib": measured / 2**20,
                             "ratio": est.total / measured})
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda", "all"))
    parser.add_argument("--cases", default="all", choices=("inference", "training", "all"))
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    if "cuda" in devices and not torch.cuda.is_available():
        print("no CUDA GPU here: cpu only", file=sys.stderr)
        devices = ["cpu"]
    kinds = ["inference", "training"] if args.cases == "all" else [args.cases]
    rows = run(kinds, devices)
    head = ["kind", "variant", "input", "batch", "config", "device", "estimate", "measured",
            "estimate / measured"]
    lines = [head] + [[r["kind"], r["variant"], str(r["input"]), str(r["batch"]), r["config"],
                       r["device"], f"{r['estimate_mib']:.0f} MiB", f"{r['measured_mib']:.0f} MiB",
                       f"{r['ratio']:.2f}"] for r in rows]
    if args.markdown:
        print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
        for line in lines[1:]:
            print("| " + " | ".join(line) + " |")
    else:
        widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
        for line in lines:
            print("  ".join(c.ljust(w) for c, w in zip(line, widths)))
    worst = max(abs(r["ratio"] - 1) for r in rows)
    print(f"\nworst deviation {100 * worst:.0f} % (goal: within 25 %)")
    return 0 if worst <= 0.25 else 1


if __name__ == "__main__":
    sys.exit(main())
