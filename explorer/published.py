"""Published ImageNet accuracy of each variant, with where each number comes from.

"weights" rows are the public checkpoints' validation accuracy (single 224/299 crop) as their
publishers list it; "paper" rows are single-model, single-crop results from the papers, given
there as error rates (accuracy = 100 - error).
"""

from __future__ import annotations

from dataclasses import dataclass

TIMM_CSV = "timm results/results-imagenet.csv @0173a13"
V4_TABLE = "Inception-v4 paper (arXiv 1602.07261), single crop"
RETHINKING_T3 = "Rethinking paper (arXiv 1512.00567), Table 3"


@dataclass(frozen=True)
class Result:
    top1: float | None
    top5: float | None
    source: str
    kind: str  # "weights" or "paper"


PUBLISHED: dict[str, tuple[Result, ...]] = {
    "googlenet": (
        Result(69.778, 89.530, "torchvision GoogLeNet_Weights.IMAGENET1K_V1", "weights"),
        Result(71.0, 90.8, RETHINKING_T3 + " (GoogLeNet: 29 / 9.2 % error)", "paper"),
    ),
    "bn_inception": (
        Result(73.524, 91.562, "Cadene pretrainedmodels README (bninception)", "weights"),
        Result(74.8, 92.2, V4_TABLE + " (BN-Inception: 25.2 / 7.8 % error)", "paper"),
    ),
    "inception_v2": (
        Result(76.6, None, RETHINKING_T3 + " (Inception-v2: 23.4 % top-1 error)", "paper"),
    ),
    "inception_v3": (
        Result(77.294, 93.450, "torchvision Inception_V3_Weights.IMAGENET1K_V1", "weights"),
        Result(78.8, 94.4, V4_TABLE + " (Inception-v3: 21.2 / 5.6 % error)", "paper"),
    ),
    "inception_v4": (
        Result(80.156, 94.968, TIMM_CSV + " (inception_v4.tf_in1k)", "weights"),
        Result(80.0, 95.0, V4_TABLE + " (Inception-v4: 20.0 / 5.0 % error)", "paper"),
    ),
    "inception_resnet_v1": (
        Result(78.7, 94.5, V4_TABLE + " (Inception-ResNet-v1: 21.3 / 5.5 % error)", "paper"),
    ),
    "inception_resnet_v2": (
        Result(80.462, 95.308, TIMM_CSV + " (inception_resnet_v2.tf_in1k)", "weights"),
        Result(80.1, 95.1, V4_TABLE + " (Inception-ResNet-v2: 19.9 / 4.9 % error)", "paper"),
    ),
}


def best_published(variant: str) -> Result | None:
    """The public weights' accuracy where there are weights, else the paper's."""
    results = PUBLISHED.get(variant, ())
    return next((r for r in results if r.kind == "weights"), results[0] if results else None)
