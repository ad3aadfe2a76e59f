"""One shape probe: a validated config, its NetSpec and the spec's walk (no torch, no build).

``probe(variant, layout, **config)`` checks the config (``variants.resolve``), describes the
network as a NetSpec and walks it (``explorer.spec.walk``): every module's input and output
shape (without the batch dimension), its tensors, MACs and receptive field, by qualified module
name, and the order in which the modules' forward calls finish. Analysis and the graph read it.

Probes are cached (a bounded LRU) by variant, layout and config, with the config's value types
in the key: ``width=1`` and ``width=1.0`` are two entries, so a probe's ``config`` is always the
one asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import lru_cache

from explorer.core.keys import freeze
from explorer.spec.netspec import NetSpec
from explorer.spec.walk import Trace, walk
from explorer.variants import VARIANTS, describe_layout, resolve
from explorer.variants.config import Config, Layout

CACHE_SIZE = 32


@dataclass(frozen=True, eq=False)
class Probe:
    variant: str
    layout: str
    config: Config | None
    input_size: int
    spec: NetSpec
    trace: Trace

    @property
    def shapes(self) -> dict[str, tuple]:
        """Qualified name -> (input shape, output shape), for every module that runs."""
        return {n: (self.trace.nodes[n].in_shape, self.trace.nodes[n].out_shape)
                for n in self.trace.order}


def probe(variant: str, layout: str | None = None, **config) -> Probe:
    """The probe of ``variant`` with ``config`` (build's options, ``input_size`` included) in
    ``layout`` (None: the variant's default); invalid options raise ConfigError."""
    info, lay, cfg = resolve(variant, layout, **config)
    return _probe(info.name, lay, typed_key(cfg), cfg)


def probe_layout(layout: Layout, cfg: Config) -> Probe:
    """The probe of a layout and config already validated (``resolve``'s answer)."""
    variant = next(info.name for info in VARIANTS.values() if layout in info.layouts.values())
    return _probe(variant, layout, typed_key(cfg), cfg)


def probe_spec(spec: NetSpec, input_size: int | None = None) -> Probe:
    """The probe of a NetSpec (its own input size unless ``input_size``)."""
    return _probe_spec(spec, input_size or spec.input_size)


def typed_key(cfg: Config) -> tuple:
    """The config's values with their types (1, 1.0 and True compare equal)."""
    return freeze({f.name: getattr(cfg, f.name) for f in fields(cfg)})


@lru_cache(maxsize=CACHE_SIZE)
def _probe(variant: str, layout: Layout, key: tuple, cfg: Config) -> Probe:
    # the key holds every value of cfg with its type: cfg itself only rides along
    spec = describe_layout(VARIANTS[variant], layout, cfg)
    return Probe(variant, layout.name, cfg, spec.input_size, spec, walk(spec))


@lru_cache(maxsize=CACHE_SIZE)
def _probe_spec(spec: NetSpec, size: int) -> Probe:
    return Probe(spec.variant, spec.layout, None, size, spec, walk(spec, size))
