"""The registry of Inception variants: name -> facts and layouts, and ``build``."""

from __future__ import annotations

import torch
from torch import nn

from . import bn_inception, googlenet, inception_resnet, inception_v3, inception_v4
from .config import Config, ConfigError, Layout, VariantInfo, check_config, min_input_size

V4_PAPER = ("Inception-v4, Inception-ResNet and the Impact of Residual Connections on Learning",
            "1602.07261", 2016)
RETHINKING = ("Rethinking the Inception Architecture for Computer Vision", "1512.00567", 2015)

VARIANTS: dict[str, VariantInfo] = {
    "googlenet": VariantInfo(
        "googlenet", "GoogLeNet (Inception-v1)", "Going Deeper with Convolutions", "1409.4842",
        2014, 224, "parallel 1x1 / 3x3 / 5x5 / pool branches with 1x1 bottlenecks",
        googlenet.LAYOUTS,
        differences=("BN after every conv in the released weights; none in the paper",
                     "the released '5x5' branch is a 3x3 conv (torchvision issue 906)",
                     "LRN in the paper's stem, none in the release")),
    "bn_inception": VariantInfo(
        "bn_inception", "BN-Inception (the v4 paper's Inception-v2)",
        "Batch Normalization: Accelerating Deep Network Training by Reducing Internal Covariate "
        "Shift", "1502.03167", 2015, 224,
        "batch norm everywhere, and the 5x5 branch replaced by two 3x3 convs",
        bn_inception.LAYOUTS,
        differences=("none: the public Caffe weights follow Figure 5",)),
    "inception_v2": VariantInfo(
        "inception_v2", "Inception-v2 (Rethinking paper)", *RETHINKING, 299,
        "factorized convolutions and efficient grid reduction (Table 1), before the v3 refinements",
        inception_v3.V2_LAYOUTS, default_layout="paper",
        differences=("no public checkpoint: only the paper layout exists",)),
    "inception_v3": VariantInfo(
        "inception_v3", "Inception-v3", *RETHINKING, 299,
        "factorized 7x7 (1x7 + 7x1) convs, label smoothing, BN-auxiliary classifier",
        inception_v3.V3_LAYOUTS,
        differences=("released stem ends at 35x35x192 (Table 1: 35x35x288)",
                     "released 35x35 modules keep a 5x5 branch (Figure 5: 3x3)",
                     "4 modules at 17x17 in the release, 5 in Table 1")),
    "inception_v4": VariantInfo(
        "inception_v4", "Inception-v4", *V4_PAPER, 299,
        "a uniform, deeper Inception network with a new stem and explicit reduction blocks",
        inception_v4.LAYOUTS, aliases={"paper": "released"},
        differences=("none: the TF-slim release follows Figures 3-9, so one layout is offered "
                     "(layout='paper' is another name for it)",)),
    "inception_resnet_v1": VariantInfo(
        "inception_resnet_v1", "Inception-ResNet-v1", *V4_PAPER, 299,
        "residual connections around cheap Inception blocks (cost of Inception-v3)",
        inception_resnet.V1_LAYOUTS,
        differences=("released only as the facenet face-embedding trunk",
                     "an extra final C block without ReLU in the release",
                     "facenet's 512-d embedding head")),
    "inception_resnet_v2": VariantInfo(
        "inception_resnet_v2", "Inception-ResNet-v2", *V4_PAPER, 299,
        "residual connections around wide Inception blocks (cost of Inception-v4), scaled by 0.1-0.3",
        inception_resnet.V2_LAYOUTS,
        differences=("released stem: v3-style + mixed_5b (paper: the v4 stem)",
                     "10 / 20 / 9+1 blocks released vs 5 / 10 / 5 in the paper",
                     "released widths 320 / 1088 / 2080 + 1x1 conv to 1536; the paper's "
                     "384 / 1154 / 2048 are inconsistent (1152 / 2144 used)")),
}

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
        layout = None  # no public checkpoint: "released" (the default) means its only layout
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


def build(variant: str, *, layout: str | None = "released", num_classes: int = 1000,
          aux_logits: bool = False, device: str | torch.device = "cpu", weights=None,
          **config) -> nn.Module:
    """Build an Inception variant as an ``nn.Module`` in eval mode.

    ``layout`` is "released" (checkpoint-compatible) or "paper"; a variant with no public
    checkpoint (inception_v2) takes its paper layout when the layout is left at its default.
    ``device="meta"`` builds without memory or initialisation (for analysis). ``weights`` is a
    checkpoint path (torchvision, timm, Cadene, facenet or explorer layout). Config options:
    ``dropout``, ``width``, ``scale``, ``repeats``, ``input_size`` (validated, not stored).
    """
    info, lay, cfg = resolve(variant, layout, num_classes=num_classes, aux_logits=aux_logits,
                             **config)
    dev = _device(device)
    if weights is not None and dev.type != "meta":
        # Build without initialising (meta), then take the checkpoint's tensors.
        from ..weights import load_into
        with torch.device("meta"):
            model = lay.build(cfg)
        load_into(model, weights, info, lay, cfg, device=dev)
    else:
        with dev:
            model = lay.build(cfg)
    model.variant = info.name
    model.layout = lay.name
    model.config = cfg
    return model.eval()


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


__all__ = ["VARIANTS", "Config", "ConfigError", "build", "get_variant", "get_layout",
           "list_variants", "min_input_size", "resolve"]
