"""Signal through a network at initialisation: per block, how large the activations are and how
large the gradient that reaches them is, after one forward and backward pass of a small batch.

The v4 paper (Section 3.3) found that with more than about 1000 filters, unscaled residual
variants "died" early in training, and that scaling the residual branches by 0.1-0.3 before the
add fixed it. At initialisation the mechanism is visible: each unscaled add puts a new branch's
variance on top of the trunk's, so the trunk's activations grow block after block.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from explorer.core.i18n import _
from explorer.lab import data
from explorer.lab.config import LabConfig, blocks, build_lab_model
from explorer.lab.training import THREADS, _threads


def measure(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[dict]:
    """One forward + backward (training mode, cross-entropy on ``y``) of ``model``.

    Per block (in network order): ``activation_std``, the standard deviation of all the values
    of the block's output over the batch, and ``grad_norm``, the L2 norm of the gradient of the
    batch-mean loss with respect to that output. Leaves the parameters' ``.grad`` set.
    """
    outputs: dict[str, torch.Tensor] = {}
    grads: dict[str, torch.Tensor] = {}

    def keep(name):
        def hook(module, inputs, output):
            outputs[name] = output.detach().clone()  # a later in-place op must not change it
            output.register_hook(lambda g: grads.__setitem__(name, g.detach().clone()))
        return hook

    named = list(blocks(model))
    handles = [block.register_forward_hook(keep(name)) for name, block in named]
    try:
        model.train()
        F.cross_entropy(model(x), y).backward()
    finally:
        for h in handles:
            h.remove()
    return [{"name": name, "activation_std": float(outputs[name].float().std()),
             "grad_norm": float(grads[name].float().norm())} for name, _ in named]


def signal(variant: str, *, width: float = 0.25, repeats=None, scale=None, input_size=None,
           layout: str = "paper", batch: int = 16, seed: int = 0) -> dict:
    """``measure`` a freshly initialised network on the first ``batch`` training digits.

    Returns ``{"variant", "config", "rows"}``; raises ConfigError for a bad configuration.
    """
    cfg = LabConfig(variant, width, repeats, scale, input_size, layout).resolved()
    if not isinstance(batch, int) or not 2 <= batch <= 256:
        from explorer.variants import ConfigError
        raise ConfigError(_("batch must be an integer from 2 to 256, got {got}").format(
            got=repr(batch)))
    images, labels = data.split()["train"]
    with _threads(THREADS):  # one thread: as fast on 2 cores, far faster on a busy machine
        model = build_lab_model(cfg, torch.Generator().manual_seed(seed))
        rows = measure(model, data.to_input(images[:batch], cfg.input_size), labels[:batch])
    return {"variant": cfg.variant, "config": {**cfg.to_dict(), "batch": batch, "seed": seed},
            "rows": rows}


def cached_signal(variant: str, *, compute: bool = True, **options) -> dict | None:
    """``signal`` answered from the on-disk cache when the same question was asked before (with
    the same code): the Lab page's comparisons then show at once. ``compute=False``: only from
    the cache (None when it is not there), so that a web process never runs the network."""
    import hashlib
    from pathlib import Path

    from explorer.core.cache import cached_json

    here = Path(__file__).resolve().parent
    code = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(
        [here / "signal.py", here / "config.py", here / "data.py",
         *(here.parent / "variants").glob("*.py")]))).hexdigest()[:16]
    request = {"variant": variant, "options": options, "lab_code": code}
    return cached_json("lab-signal", request,
                       (lambda: signal(variant, **options)) if compute else None)


def signal_job(asked: list[dict], *, progress) -> list[dict]:
    """The worker's side of the Lab page's signal: ``cached_signal(**options)`` for each of
    ``asked``, one after the other; progress (done, total)."""
    out = []
    for done, options in enumerate(asked):
        progress((done, len(asked)))
        out.append(cached_signal(**options))
    progress((len(asked), len(asked)))
    return out


def signal_estimate(asked: list[dict], batch: int = 16):
    """The memory the largest of ``asked`` needs for its forward and backward pass (they run one
    after the other): an ``explorer.runtime.memory.Estimate``."""
    from explorer.runtime.memory import estimate_training

    def one(options):
        cfg = LabConfig(options["variant"], options.get("width", 0.25), options.get("repeats"),
                        options.get("scale"), options.get("input_size"),
                        options.get("layout", "paper")).resolved()
        extra = {k: v for k, v in (("repeats", cfg.repeats), ("scale", cfg.scale)) if v is not None}
        return estimate_training(cfg.variant, batch=batch, input_size=cfg.input_size,
                                 optimizer="sgd", layout=cfg.layout, width=cfg.width,
                                 num_classes=10, **extra)
    return max((one(o) for o in asked), key=lambda e: e.total)
