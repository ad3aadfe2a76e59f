"""Measured forward latency: no autograd, a warm-up, then the median of a few runs."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
from torch import nn


def forward_latency(model: nn.Module, input_size: int, *, repeats: int = 5, warmup: int = 1,
                    on_step: Callable[[int, int], None] | None = None, batch: int = 1) -> dict:
    """Time ``model`` (already in eval mode, left unchanged) on ``batch`` random images.

    ``on_step(done, total)`` is called after every run, warm-up included. Returns the median,
    min and max in milliseconds, with the device and the number of CPU threads used.
    """
    param = next(model.parameters())
    device = param.device
    x = torch.randn(batch, 3, input_size, input_size, device=device, dtype=param.dtype)
    total = warmup + repeats
    times = []
    with torch.no_grad():
        for i in range(total):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            model(x)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if i >= warmup:
                times.append((time.perf_counter() - start) * 1000)
            if on_step:
                on_step(i + 1, total)
    return {"median_ms": statistics.median(times), "min_ms": min(times), "max_ms": max(times),
            "repeats": repeats, "batch": batch, "device": str(device),
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU",
            "threads": torch.get_num_threads()}


def time_variant(variant: str, *, device: str = "cpu", input_size: int | None = None,
                 repeats: int = 5, on_step: Callable[[int, int], None] | None = None,
                 **config) -> dict:
    """Build ``variant`` with random weights, time it (``forward_latency``), and let it go: the
    memory is held only while the job runs (``explorer.runtime.memory.estimate_inference`` says how
    much), never cached between requests."""
    from explorer.runtime.build import build_at, native_size

    model = build_at(variant, device=device, input_size=input_size, **config)
    size = native_size(variant, input_size)
    try:
        return {**forward_latency(model, size, repeats=repeats, on_step=on_step),
                "input_size": size}
    finally:
        del model


def module_latency(model: nn.Module, input_size: int, *, repeats: int = 3) -> dict[str, float]:
    """Milliseconds each named module takes in a forward pass (forward hooks around every
    module; a stage's time includes its blocks'), median over ``repeats`` passes after a
    warm-up, batch 1, no autograd. Hooks are removed afterwards; pass a model of your own,
    never one shared with other sessions while it runs."""
    param = next(model.parameters())
    x = torch.randn(1, 3, input_size, input_size, device=param.device, dtype=param.dtype)
    starts: dict[str, float] = {}
    runs: dict[str, list[float]] = {}
    sync = torch.cuda.synchronize if param.device.type == "cuda" else (lambda: None)

    def before(name):
        def hook(module, args):
            sync()
            starts[name] = time.perf_counter()
        return hook

    def after(name):
        def hook(module, args, output):
            sync()
            runs.setdefault(name, []).append((time.perf_counter() - starts[name]) * 1000)
        return hook

    with torch.no_grad():
        model(x)  # warm-up, unhooked
        handles = []
        for name, module in model.named_modules():
            if name:
                handles += [module.register_forward_pre_hook(before(name)),
                            module.register_forward_hook(after(name))]
        try:
            for _ in range(repeats):
                model(x)
        finally:
            for h in handles:
                h.remove()
    # a module called twice in one pass (none in our networks) would count both calls
    return {name: statistics.median(times) for name, times in runs.items()}
