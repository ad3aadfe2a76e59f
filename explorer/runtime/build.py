"""``build``: a variant (or a NetSpec) made into an ``nn.Module``, with or without weights."""

from __future__ import annotations

import torch
from torch import nn

from explorer.runtime.modules import materialize
from explorer.spec.netspec import NetSpec
from explorer.spec.replace import replaced
from explorer.spec.walk import walk
from explorer.variants import VARIANTS, ConfigError, describe_layout, resolve
from explorer.variants.config import Config, layout_state
from explorer.weights.formats import identify, load_into

DEVICES = ("cpu", "cuda", "meta")


def build(variant: str | NetSpec, *, layout: str | None = None, num_classes: int = 1000,
          aux_logits: bool = False, device: str | torch.device = "cpu", weights=None,
          replace=None, **config) -> nn.Module:
    """Build an Inception variant (or a NetSpec) as an ``nn.Module`` in eval mode.

    ``build(variant, ...)`` is ``build(describe(variant, ...))``. ``layout`` is "released"
    (checkpoint-compatible) or "paper"; ``None`` is the variant's own default (released where
    there is a public checkpoint, else paper). ``device="meta"`` builds without memory or
    initialisation. ``weights`` is a checkpoint path (torchvision, timm, Cadene, facenet or
    explorer format). ``replace`` ({name: block}, a block or its plain-JSON dict, named
    ``inception_a.0`` or a whole stage ``inception_a``) builds the network with those blocks
    designed anew (``explorer.spec.replace``); an impossible design raises ShapeError naming
    its branch and layer. Config options: ``dropout``, ``width``, ``scale``, ``repeats``,
    ``input_size`` (validated, not stored). The module keeps its spec (``model.spec``).
    """
    if isinstance(variant, NetSpec):
        if layout is not None or config or num_classes != 1000 or aux_logits:
            raise ConfigError("a NetSpec states its own configuration: build(spec) takes only "
                              "device and weights")
        spec = variant
        info = VARIANTS.get(spec.variant)
        if info is not None and spec.layout in info.layouts:
            lay = info.layouts[spec.layout]
            cfg = Config(**{**dict(spec.config), "input_size": None})
        elif weights is not None:
            raise ConfigError("weights load onto a variant's own spec (describe(variant, ...)); "
                              f"this spec names {spec.variant!r} layout {spec.layout!r}")
    else:
        info, lay, cfg = resolve(variant, layout, num_classes=num_classes, aux_logits=aux_logits,
                                 **config)
        spec = describe_layout(info, lay, cfg)
    if replace:
        if weights is not None:
            raise ConfigError("weights load onto the network as published; a designed network "
                              "(replace=...) starts from random weights: leave out weights")
        spec = replaced(spec, replace)
    dev = _device(device)
    if weights is not None and dev.type != "meta":
        # Build without initialising (meta), then take the checkpoint's tensors.
        with torch.device("meta"):
            model = materialize(spec)
        load_into(model, weights, info, lay, cfg, device=dev, looks_like=_looks_like)
    else:
        with dev:
            model = materialize(spec)
    model.variant = spec.variant
    model.layout = spec.layout
    model.config = cfg if spec.variant in VARIANTS else None
    return model.eval()


def native_size(variant: str | NetSpec, input_size: int | None = None) -> int:
    """The input size a build of ``variant`` (a name or a NetSpec) runs at: ``input_size`` or
    its own native size."""
    if input_size:
        return input_size
    if isinstance(variant, NetSpec):
        return variant.input_size
    from explorer.variants import get_variant
    return get_variant(variant).native_input_size


def build_at(variant: str | NetSpec, *, device="cpu", input_size: int | None = None, **config):
    """``build`` for a name with its options (``input_size`` checked), or a NetSpec as it is
    (then no options: a spec states its own; ``input_size`` is checked by walking it)."""
    if isinstance(variant, NetSpec):
        if config:
            raise ConfigError("a NetSpec states its own configuration; give no build options")
        if input_size:
            walk(variant, input_size, fields=False)  # refuses a size the spec cannot take
        return build(variant, device=device)
    return build(variant, device=device, input_size=input_size, **config)


def _looks_like(state: dict) -> str | None:
    """The variant and checkpoint format a refused checkpoint fits (for its message)."""
    native = {lay: info.native_input_size for info in VARIANTS.values() for lay in info.layouts.values()}
    return identify(state, VARIANTS.values(), Config,
                    lambda lay, cfg: layout_state(lay, cfg, native[lay]))


def _device(device) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"unknown device {device!r}; choose one of: {', '.join(DEVICES)}") from None
    if dev.type not in DEVICES:
        raise ConfigError(f"unknown device {device!r}; choose one of: {', '.join(DEVICES)}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was asked for but no CUDA GPU is available here; "
                          "use device='cpu'")
    return dev


