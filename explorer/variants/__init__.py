"""The registry of variants (name -> facts, layouts, results and weights); it imports no torch."""

from __future__ import annotations

from dataclasses import fields, replace
from functools import lru_cache

from explorer.core.i18n import _
from explorer.core.keys import freeze
from explorer.spec.netspec import NetSpec
from explorer.variants import (
    bn_inception,
    googlenet,
    inception_resnet,
    inception_v3,
    inception_v4,
    resnet,
)
from explorer.variants.config import Config, ConfigError, Layout, check_config, min_input_size
from explorer.variants.facts import VariantInfo

# Each variant's facts live in its own module, next to its model code; this is only the index.
VARIANTS: dict[str, VariantInfo] = {v.name: v for v in (
    googlenet.VARIANT, bn_inception.VARIANT, inception_v3.V2_VARIANT, inception_v3.V3_VARIANT,
    inception_v4.VARIANT, inception_resnet.V1_VARIANT, inception_resnet.V2_VARIANT,
    *resnet.VARIANTS)}

def list_variants() -> list[str]:
    return list(VARIANTS)


def get_variant(name: str) -> VariantInfo:
    try:
        return VARIANTS[name]
    except (KeyError, TypeError):
        raise ConfigError(_("unknown variant {name}; choose one of: {variants}").format(
            name=repr(name), variants=", ".join(VARIANTS))) from None


def get_layout(info: VariantInfo, layout: str | None) -> Layout:
    layout = layout or info.default_layout
    layout = info.aliases.get(layout, layout) if isinstance(layout, str) else layout
    if not isinstance(layout, str) or layout not in info.layouts:
        offered = ", ".join(info.layouts)
        raise ConfigError(_("{variant} has no layout {layout}; it offers: {offered}").format(
            variant=info.name, layout=repr(layout), offered=offered))
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
        raise ConfigError(_("unknown option(s) {unknown}; the options are: {options}").format(
            unknown=", ".join(sorted(unknown)), options=", ".join(sorted(known))))
    if isinstance(config.get("repeats"), list):
        config["repeats"] = tuple(config["repeats"])
    if isinstance(config.get("scale"), list):
        config["scale"] = tuple(config["scale"])
    cfg = Config(**config)
    check_config(info, lay, cfg)
    return info, lay, cfg


def describe(variant: str, layout: str | None = None, **config) -> NetSpec:
    """The NetSpec of ``variant`` in ``layout`` (None: its default) with build's options
    (``width``, ``repeats``, ``scale``, ``num_classes``, ``aux_logits``, ``dropout``,
    ``input_size``): plain data, torch-free; invalid options raise ConfigError."""
    info, lay, cfg = resolve(variant, layout, **config)
    return describe_layout(info, lay, cfg)


def describe_layout(info: VariantInfo, layout: Layout, cfg: Config) -> NetSpec:
    """The NetSpec of a layout and config already validated (``resolve``'s answer)."""
    return _describe(info.name, layout, freeze({f.name: getattr(cfg, f.name) for f in fields(cfg)}),
                     cfg)


@lru_cache(maxsize=128)
def _describe(variant: str, layout: Layout, key: tuple, cfg: Config) -> NetSpec:
    # the key holds every value of cfg with its type (1, 1.0 and True differ): cfg rides along
    info = VARIANTS[variant]
    shown = tuple((f.name, getattr(cfg, f.name)) for f in fields(cfg) if f.name != "input_size")
    return replace(layout.describe(cfg), variant=variant, layout=layout.name, title=info.title,
                   input_size=cfg.input_size or info.native_input_size, config=shown)


__all__ = ["describe", "describe_layout", "VARIANTS", "Config", "ConfigError", "Layout", "VariantInfo",
           "get_variant",
           "get_layout", "list_variants", "min_input_size", "resolve"]
