"""The real public ImageNet weights of each variant, with everything that travels with them.

As torchvision's weight enums do it: where the file lives (URL + SHA-256 prefix, or a Hugging
Face hub id), its checkpoint format, its preprocessing, its categories and its published
accuracy. Each entry is declared in its variant's module (``VariantInfo.weights``); this module
lists them all and finds them. No file is bundled; ``explorer.weights.download`` fetches them into the
standard caches.

Sources: torchvision ``GoogLeNet_Weights`` / ``Inception_V3_Weights`` (meta and transforms),
timm's ``pretrained_cfg`` for each hub id (timm 1.0), Cadene's ``pretrainedmodels`` settings
for BN-Inception. The tests check these numbers against torchvision and timm themselves.
"""

from __future__ import annotations

from explorer.core.i18n import _
from explorer.variants import VARIANTS
from explorer.variants.facts import WeightsSpec, imagenet_labels

# Every variant's entries, in registry order; the first of each variant is its default.
REGISTRY: tuple[WeightsSpec, ...] = tuple(spec for info in VARIANTS.values() for spec in info.weights)


def specs_for(variant: str) -> list[WeightsSpec]:
    return [s for s in REGISTRY if s.variant == variant]


def default_spec(variant: str, checkpoint_format: str | None = None) -> WeightsSpec | None:
    """The variant's default weights, or the first of a given checkpoint format."""
    specs = [s for s in specs_for(variant)
             if checkpoint_format is None or s.checkpoint_format == checkpoint_format]
    return specs[0] if specs else None


class UnknownWeights(ValueError):
    pass


def find_spec(variant: str, tag: str) -> WeightsSpec:
    """``tag`` as "tf_in1k", "inception_v4.tf_in1k" or "DEFAULT"; an error lists the tags."""
    specs = specs_for(variant)
    if not specs:
        raise UnknownWeights(_("{variant} has no public pretrained weights; load a checkpoint file "
                               "of your own with --weights FILE").format(variant=variant))
    if tag.upper() == "DEFAULT":
        return specs[0]
    short = tag.split(".", 1)[1] if tag.startswith(f"{variant}.") else tag
    for spec in specs:
        if spec.tag.lower() == short.lower():
            return spec
    raise UnknownWeights(_("unknown weights {tag} for {variant}; choose one of: {tags} (or a URL or "
                           "a checkpoint file)").format(tag=repr(tag), variant=variant,
                                                        tags=", ".join(s.tag for s in specs)))


__all__ = ["REGISTRY", "UnknownWeights", "WeightsSpec", "default_spec", "find_spec",
           "imagenet_labels", "specs_for"]
