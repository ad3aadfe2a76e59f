"""``build``: a variant (or a NetSpec) made into an ``nn.Module``, with or without weights."""

from __future__ import annotations

import torch
from torch import nn

from explorer.variants import VARIANTS, ConfigError, resolve
from explorer.variants.config import Config, layout_state
from explorer.weights.formats import identify, load_into

DEVICES = ("cpu", "cuda", "meta")


def build(variant: str, *, layout: str | None = None, num_classes: int = 1000,
          aux_logits: bool = False, device: str | torch.device = "cpu", weights=None,
          **config) -> nn.Module:
    """Build an Inception variant as an ``nn.Module`` in eval mode.

    ``layout`` is "released" (checkpoint-compatible) or "paper"; ``None`` is the variant's own
    default (released where there is a public checkpoint, else paper).
    ``device="meta"`` builds without memory or initialisation (for analysis). ``weights`` is a
    checkpoint path (torchvision, timm, Cadene, facenet or explorer format). Config options:
    ``dropout``, ``width``, ``scale``, ``repeats``, ``input_size`` (validated, not stored).
    """
    info, lay, cfg = resolve(variant, layout, num_classes=num_classes, aux_logits=aux_logits,
                             **config)
    dev = _device(device)
    if weights is not None and dev.type != "meta":
        # Build without initialising (meta), then take the checkpoint's tensors.
        with torch.device("meta"):
            model = lay.build(cfg)
        load_into(model, weights, info, lay, cfg, device=dev, looks_like=_looks_like)
    else:
        with dev:
            model = lay.build(cfg)
    model.variant = info.name
    model.layout = lay.name
    model.config = cfg
    return model.eval()


def _looks_like(state: dict) -> str | None:
    """The variant and checkpoint format a refused checkpoint fits (for its message)."""
    return identify(state, VARIANTS.values(), Config, layout_state)


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


