"""The heavy jobs as worker entry points (``explorer.runtime.workers``): plain arguments in, plain
results out, progress sent back through ``progress(payload)``. They run in a worker process or a
Ray task, never in the web server's threads."""

from __future__ import annotations

from collections.abc import Callable

Send = Callable[[object], None]


def time_forward(variant: str, *, device: str = "cpu", repeats: int = 5, config: dict | None = None,
                 progress: Send) -> dict:
    """Inspect's forward timing: ``explorer.runtime.timing.time_variant``; progress (done, total)."""
    from explorer.runtime.timing import time_variant
    return time_variant(variant, device=device, repeats=repeats, **(config or {}),
                        on_step=lambda i, n: progress((i, n)))


def block_latency(variant: str, *, config: dict | None = None, progress: Send) -> dict:
    """The graph's latency overlay: per-module forward time on the CPU, a model of its own."""
    from explorer.runtime.build import build
    from explorer.runtime.timing import module_latency
    from explorer.variants import VARIANTS

    config = dict(config or {})
    size = config.pop("input_size", None) or VARIANTS[variant].native_input_size
    progress((0, 1))
    return module_latency(build(variant, device="cpu", **config).eval(), size)



def export_onnx(variant: str, *, config: dict | None = None, progress: Send):
    """Inspect's ONNX download: ``explorer.runtime.onnx.export_variant`` (the checked file)."""
    from explorer.runtime.onnx import export_variant

    progress((0, 1))
    return export_variant(variant, **(config or {}))


def measure_latency(rows: list[dict], *, device: str = "cpu", refresh: bool = False,
                    runtimes=("eager",), progress: Send, batches=None,
                    dtype: str = "float32") -> list[tuple]:
    """Compare's latency table, measured in the worker; returns the measured cache entries
    (``explorer.runtime.latency.entries``), which the web process then ``remember``s."""
    from explorer.runtime import latency

    batches = tuple(batches or latency.BATCHES)
    latency.measure(rows, device=device, refresh=refresh, runtimes=tuple(runtimes),
                    batches=batches, dtype=dtype,
                    progress=lambda frac, text: progress((frac, text)))
    return latency.entries(rows, device=device, batches=batches, dtype=dtype)
