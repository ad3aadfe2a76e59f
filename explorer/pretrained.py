"""The real public ImageNet weights of each variant, with everything that travels with them.

As torchvision's weight enums do it: where the file lives (URL + SHA-256 prefix, or a Hugging
Face hub id), its key layout, its preprocessing, its categories and its published accuracy.
No file is bundled; ``explorer.download`` fetches them into the standard caches.

Sources: torchvision ``GoogLeNet_Weights`` / ``Inception_V3_Weights`` (meta and transforms),
timm's ``pretrained_cfg`` for each hub id (timm 1.0), Cadene's ``pretrainedmodels`` settings
for BN-Inception. The tests check these numbers against torchvision and timm themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from .images import Preprocess
from .published import TIMM_CSV
from .resources import resource

ASSETS = resource("assets")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HALF = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class WeightsSpec:
    variant: str
    tag: str                  # unique within the variant; "variant.tag" names it globally
    source: str               # checkpoint key layout: "torchvision" | "timm" | "cadene"
    preprocess: Preprocess
    top1: float | None
    top5: float | None
    accuracy_source: str
    url: str | None = None        # a plain download (torch.hub cache) ...
    sha256_prefix: str | None = None
    hub_id: str | None = None     # ... or a Hugging Face hub repo (huggingface_hub cache)
    filename: str = "model.safetensors"
    size_mb: float | None = None
    categories: str = "imagenet_classes.txt"
    note: str = ""

    @property
    def name(self) -> str:
        return f"{self.variant}.{self.tag}"

    @property
    def location(self) -> str:
        """Where a person fetches the file by hand."""
        if self.url:
            return self.url
        return f"https://huggingface.co/{self.hub_id}/resolve/main/{self.filename}"

    def labels(self) -> list[str]:
        return imagenet_labels(self.categories)


@cache
def imagenet_labels(filename: str = "imagenet_classes.txt") -> list[str]:
    """The 1000 ImageNet-1k class names in the order every checkpoint here uses (torchvision's
    ``IMAGENET1K_V1.meta["categories"]``, copied into assets/)."""
    return (ASSETS / filename).read_text().splitlines()


def _timm(variant, tag, crop_pct, top1, top5, mean=HALF, interpolation="bicubic", note=""):
    return WeightsSpec(variant, tag, "timm",
                       Preprocess.from_crop_pct(299, crop_pct, interpolation=interpolation,
                                                mean=mean, std=HALF if mean == HALF else IMAGENET_STD),
                       top1, top5, f"{TIMM_CSV} ({variant}.{tag})",
                       hub_id=f"timm/{variant}.{tag}", note=note)


# The first spec of each variant is its default.
REGISTRY: tuple[WeightsSpec, ...] = (
    WeightsSpec(
        "googlenet", "IMAGENET1K_V1", "torchvision",
        # torchvision's transforms (ImageNet mean/std) with the model's transform_input folded
        # in: the two together normalise with mean = std = 0.5.
        Preprocess(224, 256, "bilinear", HALF, HALF),
        69.778, 89.530, "torchvision GoogLeNet_Weights.IMAGENET1K_V1",
        url="https://download.pytorch.org/models/googlenet-1378be20.pth",
        sha256_prefix="1378be20", size_mb=49.7,
        note="ported from the original paper's Caffe model; its 5x5 branch is a 3x3"),
    WeightsSpec(
        "inception_v3", "IMAGENET1K_V1", "torchvision",
        Preprocess(299, 342, "bilinear", HALF, HALF),
        77.294, 93.450, "torchvision Inception_V3_Weights.IMAGENET1K_V1",
        url="https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth",
        sha256_prefix="0cc3c7bd", size_mb=103.9,
        note="ported from TensorFlow; holds the aux head (dropped unless built with aux_logits)"),
    _timm("inception_v3", "tf_in1k", 0.875, 77.862, 93.644),
    _timm("inception_v3", "tv_in1k", 0.875, 77.434, 93.474,
          note="torchvision's weights as timm serves them"),
    _timm("inception_v3", "gluon_in1k", 0.875, 78.806, 94.374, mean=IMAGENET_MEAN),
    _timm("inception_v4", "tf_in1k", 0.875, 80.156, 94.968),
    _timm("inception_resnet_v2", "tf_in1k", 0.8975, 80.462, 95.308),
    _timm("inception_resnet_v2", "tf_ens_adv_in1k", 0.8975, 79.978, 94.946,
          note="ensemble adversarial training (Tramer et al. 2017)"),
    WeightsSpec(
        "bn_inception", "imagenet", "cadene",
        # Cadene's pretrainedmodels: Caffe convention, BGR in 0..255 minus the channel means.
        Preprocess(224, 256, "bilinear", (104.0, 117.0, 128.0), (1.0, 1.0, 1.0),
                   channel_order="BGR", value_range=255.0),
        73.524, 91.562, "Cadene pretrainedmodels README (bninception)",
        url="http://data.lip6.fr/cadene/pretrainedmodels/bn_inception-52deb4733.pth",
        sha256_prefix="52deb4733",
        note="converted from Caffe by Cadene (pretrainedmodels)"),
)


def specs_for(variant: str) -> list[WeightsSpec]:
    return [s for s in REGISTRY if s.variant == variant]


def default_spec(variant: str, source: str | None = None) -> WeightsSpec | None:
    """The variant's default weights, or the first of a given key layout."""
    specs = [s for s in specs_for(variant) if source is None or s.source == source]
    return specs[0] if specs else None


class UnknownWeights(ValueError):
    pass


def find_spec(variant: str, tag: str) -> WeightsSpec:
    """``tag`` as "tf_in1k", "inception_v4.tf_in1k" or "DEFAULT"; an error lists the tags."""
    specs = specs_for(variant)
    if not specs:
        raise UnknownWeights(f"{variant} has no public pretrained weights; load a checkpoint file "
                             "of your own with --weights FILE")
    if tag.upper() == "DEFAULT":
        return specs[0]
    short = tag.split(".", 1)[1] if tag.startswith(f"{variant}.") else tag
    for spec in specs:
        if spec.tag.lower() == short.lower():
            return spec
    raise UnknownWeights(f"unknown weights {tag!r} for {variant}; choose one of: "
                         + ", ".join(s.tag for s in specs) + " (or a URL or a checkpoint file)")
