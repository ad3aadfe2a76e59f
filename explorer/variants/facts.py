"""What travels with a variant, declared next to its model code (as timm's ``default_cfgs`` and
torchvision's weights enums do): its paper and idea, its layouts, its papers' results and its
public weights (file, hash, checkpoint format, preprocessing, accuracy).

A weights entry's accuracy *is* the published "weights" result of its variant: there is one
copy of each number, and ``explorer.analysis.published`` / ``explorer.weights.pretrained`` only look them up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

from explorer.core.preprocess import Preprocess
from explorer.core.resources import resource
from explorer.variants.config import Layout

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HALF = (0.5, 0.5, 0.5)

TIMM_CSV = "timm results/results-imagenet.csv @0173a13"
V4_TABLE = "Inception-v4 paper (arXiv 1602.07261), single crop"
RETHINKING_T3 = "Rethinking paper (arXiv 1512.00567), Table 3"


@dataclass(frozen=True)
class Result:
    """A published ImageNet accuracy (%) and where it comes from.

    kind "weights": a public checkpoint's validation accuracy (single 224/299 crop) as its
    publisher lists it; "paper": a single-model result from a paper, given there as an error rate
    (accuracy = 100 - error), single crop unless its source names the crops (the ResNet paper
    gives 10-crop and dense results only).
    """

    top1: float | None
    top5: float | None
    source: str
    kind: str  # "weights" or "paper"


@cache
def imagenet_labels(filename: str = "imagenet_classes.txt") -> list[str]:
    """The 1000 ImageNet-1k class names in the order every checkpoint here uses (torchvision's
    ``IMAGENET1K_V1.meta["categories"]``, copied into assets/)."""
    return (resource("assets") / filename).read_text().splitlines()


@dataclass(frozen=True)
class WeightsSpec:
    """One public checkpoint: where it lives, how its keys are named, how its images were
    prepared and how accurate it is."""

    variant: str
    tag: str                  # unique within the variant; "variant.tag" names it globally
    checkpoint_format: str    # how its keys are named: "torchvision" | "timm" | "cadene"
    preprocess: Preprocess
    accuracy: Result          # kind "weights": the variant's published result for these weights
    url: str | None = None        # a plain download (torch.hub cache) ...
    sha256_prefix: str | None = None
    hub_id: str | None = None     # ... or a Hugging Face hub repo (huggingface_hub cache)
    filename: str = "model.safetensors"
    categories: str = "imagenet_classes.txt"

    @property
    def name(self) -> str:
        return f"{self.variant}.{self.tag}"

    @property
    def top1(self) -> float | None:
        return self.accuracy.top1

    @property
    def top5(self) -> float | None:
        return self.accuracy.top5

    @property
    def accuracy_source(self) -> str:
        return self.accuracy.source

    @property
    def location(self) -> str:
        """Where a person fetches the file by hand."""
        if self.url:
            return self.url
        return f"https://huggingface.co/{self.hub_id}/resolve/main/{self.filename}"

    def labels(self) -> list[str]:
        return imagenet_labels(self.categories)


def timm_weights(variant: str, tag: str, crop_pct: float, top1: float, top5: float,
                 mean=HALF, interpolation: str = "bicubic") -> WeightsSpec:
    """A timm hub checkpoint at 299 px, with timm's ``pretrained_cfg`` preprocessing and the
    accuracy of timm's results table."""
    preprocess = Preprocess.from_crop_pct(299, crop_pct, interpolation=interpolation, mean=mean,
                                          std=HALF if mean == HALF else IMAGENET_STD)
    accuracy = Result(top1, top5, f"{TIMM_CSV} ({variant}.{tag})", "weights")
    return WeightsSpec(variant, tag, "timm", preprocess, accuracy, hub_id=f"timm/{variant}.{tag}")


@dataclass(frozen=True)
class VariantInfo:
    """A variant's facts: its paper, its layouts, its papers' results and its public weights."""

    name: str
    title: str
    paper: str
    arxiv: str
    year: int
    native_input_size: int
    idea: str
    layouts: dict[str, Layout]
    default_layout: str = "released"
    differences: tuple[str, ...] = ()  # paper vs released, worth showing
    aliases: dict[str, str] = field(default_factory=dict)  # another name -> a layout's name
    paper_results: tuple[Result, ...] = ()
    weights: tuple[WeightsSpec, ...] = ()  # the first is the default
    baseline: bool = False  # not an Inception network: one the papers measure against (ResNet)

    @property
    def published(self) -> tuple[Result, ...]:
        """The default weights' accuracy (where there are weights), then the papers'."""
        return tuple(w.accuracy for w in self.weights[:1]) + self.paper_results
