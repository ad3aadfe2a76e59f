"""One shape probe: a validated config, built on the "meta" device, every module's shapes.

``probe(variant, layout, **config)`` checks the config (``variants.resolve``), builds the network
on the meta device (no memory, no initialisation) and records, by qualified module name, every
module's input and output shape (without the batch dimension), the order in which the modules'
forward calls finish and the MACs of its convs and linear layers. The shapes come from the
modules' arguments (``variants.shapes``), not from a forward pass. Analysis and the graph read
it; the config checks use the same ``variants.shapes`` on the variants' own cached skeleton
(``variants.config``, below this layer), and weight loading checks a checkpoint against the
state dict of the model it loads into (``weights.state_shapes``).

Probes are cached (a bounded LRU) by variant, layout and config, with the config's value types
in the key: ``width=1`` and ``width=1.0`` are two entries, so a probe's ``config`` is always the
one asked for. The cached model is shared: read it, never hook, move or train it.

``record_forward`` does the same recording with hooks and a meta-device forward pass: for
models not built from our blocks, and as the test that the propagated shapes are exact.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import lru_cache

import torch
from torch import nn

from explorer.core.keys import freeze
from explorer.variants import VARIANTS, resolve
from explorer.variants.config import Config, Layout
from explorer.variants.shapes import Shape, macs, propagate

CACHE_SIZE = 32


@dataclass(frozen=True, eq=False)
class Probe:
    variant: str
    layout: str
    config: Config
    input_size: int
    model: nn.Module                       # the meta-device build: shared, read only
    shapes: dict[str, tuple[Shape, Shape]]  # qualified name -> (input shape, output shape)
    order: tuple[str, ...]                 # names in the order their forward finishes
    macs: dict[str, int]                   # conv / linear name -> multiply-accumulates


def probe(variant: str, layout: str | None = None, **config) -> Probe:
    """The probe of ``variant`` with ``config`` (build's options, ``input_size`` included) in
    ``layout`` (None: the variant's default); invalid options raise ConfigError."""
    info, lay, cfg = resolve(variant, layout, **config)
    return _probe(info.name, lay, typed_key(cfg), cfg)


def probe_layout(layout: Layout, cfg: Config) -> Probe:
    """The probe of a layout and config already validated (``resolve``'s answer)."""
    variant = next(info.name for info in VARIANTS.values() if layout in info.layouts.values())
    return _probe(variant, layout, typed_key(cfg), cfg)


def typed_key(cfg: Config) -> tuple:
    """The config's values with their types (1, 1.0 and True compare equal)."""
    return freeze({f.name: getattr(cfg, f.name) for f in fields(cfg)})


@lru_cache(maxsize=CACHE_SIZE)
def _probe(variant: str, layout: Layout, key: tuple, cfg: Config) -> Probe:
    # the key holds every value of cfg with its type: cfg itself only rides along
    with torch.device("meta"):
        model = layout.build(cfg)
    model.variant, model.layout, model.config = variant, layout.name, cfg  # as build() does
    model.eval()
    size = cfg.input_size or VARIANTS[variant].native_input_size
    shapes, order = propagate(model, (3, size, size))
    return Probe(variant, layout.name, cfg, size, model, shapes, tuple(order),
                 macs(model, shapes))


def record_forward(model: nn.Module, size: int) -> tuple[dict[str, tuple[Shape, Shape]], list[str]]:
    """What ``propagate`` computes, recorded from a forward pass with hooks: ``model`` must be a
    throwaway copy on the meta device. Aux heads (``aux_taps``) run after the forward, on the
    outputs of the blocks they tap, as ``propagate`` orders them."""
    shapes: dict[str, tuple[Shape, Shape]] = {}
    order: list[str] = []
    taps = getattr(model, "aux_taps", {})
    outputs = {}

    def hook(name):
        def record(mod, args, out):
            if isinstance(out, torch.Tensor):
                shapes[name] = (tuple(args[0].shape[1:]), tuple(out.shape[1:]))
                order.append(name)
            if name in taps:
                outputs[name] = out
        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules()]
    try:
        with torch.no_grad():
            model.eval()(torch.empty(1, 3, size, size, device="meta"))
            for tap, aux_name in taps.items():  # aux heads run in training only: run them here
                getattr(model, aux_name)(outputs[tap])
    finally:
        for h in handles:
            h.remove()
    return shapes, order
