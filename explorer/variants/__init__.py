"""The registry of Inception variants (name -> facts, layouts, results and weights) and ``build``."""

from __future__ import annotations

import torch
from torch import nn

from ..weights import identify, load_into
from . import bn_inception, googlenet, inception_resnet, inception_v3, inception_v4
from .config import Config, ConfigError, Layout, check_config, layout_state, min_input_size
from .facts import VariantInfo

# Each variant's facts live in its own module, next to its model code; this is only the index.
VARIANTS: dict[str, VariantInfo] = {v.name: v for v in (
    googlenet.VARIANT, bn_inception.VARIANT, inception_v3.V2_VARIANT, inception_v3.V3_VARIANT,
    inception_v4.VARIANT, inception_resnet.V1_VARIANT, inception_resnet.V2_VARIANT)}

DEVICES = ("cpu", "cuda", "meta")


def list_variants() -> list[str]:
    return list(VARIANTS)


def get_variant(name: str) -> VariantInfo:
    try:
        return VARIANTS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown variant {name!r}; choose one of: {', '.join(VARIANTS)}") from None


def get_layout(info: VariantInfo, layout: str | None) -> Layout:
    layout = layout or info.default_layout
    layout = info.aliases.get(layout, layout) if isinstance(layout, str) else layout
    if not isinstance(layout, str) or layout not in info.layouts:
        offered = ", ".join(info.layouts)
        raise ConfigError(f"{info.name} has no layout {layout!r}; it offers: {offered}")
    return info.layouts[layout]


def resolve(variant: str, layout: str | None = None, **config) -> tuple[VariantInfo, Layout, Config]:
    """Look up and validate a variant, layout and config without building anything."""
    info = get_variant(variant)
    if layout == "released" and "released" not in info.layouts:
        layout = None  # no public checkpoint: "released" (a page's choice) means its only layout
    lay = get_layout(info, layout)
    known = set(Config.__dataclass_fields__)
    unknown = set(config) - known
    if unknown:
        raise ConfigError(f"unknown option(s) {', '.join(sorted(unknown))}; "
                          f"the options are: {', '.join(sorted(known))}")
    if isinstance(config.get("repeats"), list):
        config["repeats"] = tuple(config["repeats"])
    if isinstance(config.get("scale"), list):
        config["scale"] = tuple(config["scale"])
    cfg = Config(**config)
    check_config(info, lay, cfg)
    return info, lay, cfg


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


__all__ = ["VARIANTS", "Config", "ConfigError", "Layout", "VariantInfo", "build", "get_variant",
           "get_layout", "list_variants", "min_input_size", "resolve"]
