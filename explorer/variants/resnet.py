"""ResNet, the baseline the Inception papers measure against: He et al. 2015, "Deep Residual
Learning for Image Recognition" (arXiv 1512.03385), Table 1 and Figure 5, and the pre-activation
ResNet of He et al. 2016, "Identity Mappings in Deep Residual Networks" (arXiv 1603.05027).

Every block is a bottleneck: 1x1 conv (reduce) -> 3x3 conv -> 1x1 conv (expand x4), added onto
a shortcut -- the input itself, or a projection (1x1 conv + BN) where the block changes the grid
or the width. In the NetSpec it is a ``residual`` block with one branch, scale 1.0, no implied
1x1 expansion (its last conv gives the channels) and that shortcut.

- ``resnet50`` / ``resnet101`` / ``resnet152``: torchvision's layout ("ResNet v1.5": the stride
  of a stage's first block sits on its 3x3 conv; the paper put it on the first 1x1 conv, which
  the ``paper`` layout keeps); key-compatible with torchvision's checkpoints.
- ``resnetv2_50`` / ``resnetv2_101``: full pre-activation (BN -> ReLU before each conv, nothing
  after the add), in timm's ``resnetv2`` layout, key-compatible with its checkpoints.
"""

from __future__ import annotations

from functools import partial

from explorer.core.i18n import N_
from explorer.core.preprocess import Preprocess
from explorer.spec.compose import (
    Widths,
    conv,
    head,
    layer,
    maxpool,
    network,
    norm,
    residual,
    stage,
)
from explorer.spec.netspec import NetSpec
from explorer.variants.config import Config, Layout
from explorer.variants.facts import (
    HALF,
    IMAGENET_MEAN,
    IMAGENET_STD,
    Result,
    VariantInfo,
    WeightsSpec,
)

RESNET_PAPER = "ResNet paper"            # figures are cited as "ResNet paper, Figure 5"
PREACT_PAPER = "Identity Mappings paper"
RESNET_PUBLICATION = ("Deep Residual Learning for Image Recognition", "1512.03385", 2015)
PREACT_PUBLICATION = ("Identity Mappings in Deep Residual Networks", "1603.05027", 2016)

STAGES = ("conv2_x", "conv3_x", "conv4_x", "conv5_x")  # Table 1's names
MID = (64, 128, 256, 512)                               # each stage's bottleneck width
EXPANSION = 4                                           # a block's output = 4 x its bottleneck
DEPTHS = {"resnet50": (3, 4, 6, 3), "resnet101": (3, 4, 23, 3), "resnet152": (3, 8, 36, 3),
          "resnetv2_50": (3, 4, 6, 3), "resnetv2_101": (3, 4, 23, 3)}

BOTTLENECK_IDEA = N_("a 1x1 conv reduces the channels 4x, a 3x3 conv works on the narrow tensor "
                     "and a 1x1 conv restores them; the block learns a residual added onto its "
                     "input")
PREACT_IDEA = N_("full pre-activation: BN and ReLU come before each conv and nothing follows the "
                 "add, so the identity path runs clean from the first block to the last")
# each stage at the reference width and a 224 px input (He et al. 2015, Table 1)
STAGE_IDEAS = {
    "conv2_x": N_("bottleneck blocks on the 56x56 grid, 256 channels out"),
    "conv3_x": N_("its first block halves the grid to 28x28 and doubles the channels to 512"),
    "conv4_x": N_("its first block halves the grid to 14x14 and doubles the channels to 1024"),
    "conv5_x": N_("its first block halves the grid to 7x7 and doubles the channels to 2048"),
}


def _plain(out: int, kernel, stride=None, padding=None) -> object:
    """A conv alone (no BN, no bias, no ReLU): the pre-activation network's convs."""
    return conv(out, kernel, stride, padding, bn=False, bias=False, act=False)


def bottleneck(cin: int, mid: int, stride: int, *, stride_on_3x3: bool = True):
    """He et al. 2015, Figure 5 (right), with torchvision's stride placement by default."""
    out = mid * EXPANSION
    s1, s3 = (1, stride) if stride_on_3x3 else (stride, 1)
    shortcut = [conv(out, 1, stride, act=False)] if stride != 1 or cin != out else ()
    return residual({"bottleneck": [conv(mid, 1, s1), conv(mid, 3, s3, padding=1),
                                    conv(out, 1, act=False)]},
                    1.0, "bottleneck", f"{RESNET_PAPER}, Figure 5 (right)", BOTTLENECK_IDEA,
                    shortcut=shortcut, expand=False)


def preact_bottleneck(cin: int, mid: int, stride: int):
    """He et al. 2016, Figure 4(e), as timm's ``PreActBottleneck`` (stride on the 3x3)."""
    out = mid * EXPANSION
    shortcut = [_plain(out, 1, stride)] if stride != 1 or cin != out else ()
    return residual({"bottleneck": [_plain(mid, 1), norm(), _plain(mid, 3, stride, padding=1),
                                    norm(), _plain(out, 1)]},
                    1.0, "bottleneck", f"{PREACT_PAPER}, Figure 4(e)", PREACT_IDEA,
                    shortcut=shortcut, pre=[norm()], expand=False, act=False)


def _stages(cfg: Config, depths: tuple, block) -> tuple[dict, int]:
    w = Widths(cfg.width)
    reps = tuple(cfg.repeats or depths)
    cin = w(64)
    stages = {}
    for i, (name, mid, n) in enumerate(zip(STAGES, MID, reps)):
        blocks = []
        for j in range(n):
            blocks.append(block(cin, w(mid), 2 if i > 0 and j == 0 else 1))
            cin = w(mid) * EXPANSION
        stages[name] = stage(name, blocks, "stage", f"{RESNET_PAPER}, Table 1", STAGE_IDEAS[name])
    return stages, cin


def _head(cfg: Config, pre: dict | None = None):
    layers = dict(pre or {})
    layers["pool"] = layer("adaptive_avgpool", size=1)
    layers["flatten"] = layer("flatten")
    layers["dropout"] = layer("dropout", p=cfg.dropout or 0.0)  # none in the references
    layers["fc"] = layer("linear", out=cfg.num_classes)
    return head(layers, "head", idea=N_("global average pooling, then one fully connected layer"))


def build_resnet(depths: tuple, cfg: Config, *, stride_on_3x3: bool = True) -> NetSpec:
    w = Widths(cfg.width)
    stem = stage("stem", {"conv1": conv(w(64), 7, 2, 3), "pool": maxpool(3, 2, 1)}, "stem",
                 f"{RESNET_PAPER}, Table 1", N_("7x7/2 conv and 3x3/2 max pool: 224 -> 56"))
    stages, _ = _stages(cfg, depths, partial(bottleneck, stride_on_3x3=stride_on_3x3))
    return network({"stem": stem, **stages}, _head(cfg), eps=1e-5)


def build_resnetv2(depths: tuple, cfg: Config) -> NetSpec:
    w = Widths(cfg.width)
    stem = stage("stem", {"conv": _plain(w(64), 7, 2, 3), "pool": maxpool(3, 2, 1)}, "stem",
                 f"{PREACT_PAPER}, Section 4", N_("7x7/2 conv (its BN and ReLU open the first "
                                                  "block) and 3x3/2 max pool"))
    stages, _ = _stages(cfg, depths, preact_bottleneck)
    # the last block ends on its add: one BN -> ReLU before the pool
    return network({"stem": stem, **stages}, _head(cfg, {"norm": norm()}), eps=1e-5)


# -- checkpoints -------------------------------------------------------------------------------

def _reps(cfg: Config, variant: str) -> tuple:
    return tuple(cfg.repeats or DEPTHS[variant])


def torchvision_key_map(variant: str, cfg: Config) -> list:
    """torchvision ``ResNet`` (``conv1``, ``bn1``, ``layerN.i.conv1`` ..., ``downsample.0/1``,
    ``fc``) -> ours."""
    inner = {"conv1": "branches.bottleneck.0.conv", "bn1": "branches.bottleneck.0.bn",
             "conv2": "branches.bottleneck.1.conv", "bn2": "branches.bottleneck.1.bn",
             "conv3": "branches.bottleneck.2.conv", "bn3": "branches.bottleneck.2.bn",
             "downsample.0": "shortcut.0.conv", "downsample.1": "shortcut.0.bn"}
    rules = [("conv1", "stem.conv1.conv", None), ("bn1", "stem.conv1.bn", None),
             ("fc", "head.fc", None)]
    for i, n in enumerate(_reps(cfg, variant)):
        rules += [(f"layer{i + 1}.{j}", f"{STAGES[i]}.{j}", inner) for j in range(n)]
    return rules


def timm_key_map(variant: str, cfg: Config) -> list:
    """timm ``ResNetV2`` (``stem.conv``, ``stages.N.blocks.i.norm1`` ..., ``downsample.conv``,
    ``norm``, ``head.fc`` as a 1x1 conv) -> ours (its fc's 1x1 kernel is read as a matrix)."""
    inner = {"norm1": "pre.0", "conv1": "branches.bottleneck.0.conv",
             "norm2": "branches.bottleneck.1", "conv2": "branches.bottleneck.2.conv",
             "norm3": "branches.bottleneck.3", "conv3": "branches.bottleneck.4.conv",
             "downsample.conv": "shortcut.0.conv"}
    rules = [("stem.conv", "stem.conv.conv", None), ("norm", "head.norm", None),
             ("head.fc", "head.fc", None)]
    for i, n in enumerate(_reps(cfg, variant)):
        rules += [(f"stages.{i}.blocks.{j}", f"{STAGES[i]}.{j}", inner) for j in range(n)]
    return rules


TORCHVISION = "https://download.pytorch.org/models/"


def torchvision_weights(variant: str, tag: str, file: str, resize: int, top1: float, top5: float):
    """A torchvision checkpoint: resize the shorter side, centre crop 224, bilinear, ImageNet
    mean / std (its ``ImageClassification`` transform)."""
    enum = f"ResNet{variant[6:]}_Weights.{tag}"
    return WeightsSpec(variant, tag, "torchvision",
                       Preprocess(224, resize, "bilinear", IMAGENET_MEAN, IMAGENET_STD),
                       Result(top1, top5, f"torchvision {enum}", "weights"),
                       url=TORCHVISION + file, sha256_prefix=file.rpartition("-")[2][:-4])


def timm_resnetv2_weights(variant: str, tag: str, top1: float, top5: float):
    """A timm hub checkpoint at 224 px: crop_pct 0.95, bicubic, mean = std = 0.5."""
    return WeightsSpec(variant, tag, "timm",
                       Preprocess.from_crop_pct(224, 0.95, interpolation="bicubic", mean=HALF,
                                                std=HALF),
                       Result(top1, top5, f"{TIMM_A1H_CSV} ({variant}.{tag}, 224 px)", "weights"),
                       hub_id=f"timm/{variant}.{tag}")


def _layouts(variant: str) -> dict:
    depths = DEPTHS[variant]
    # no pool or concat to line up, and an adaptive pool: any size flows through
    common = dict(min_input_size=1, repeats=depths, repeat_stages=STAGES)
    if variant.startswith("resnetv2"):
        return {"released": Layout(
            False, partial(build_resnetv2, depths), **common,
            checkpoint_formats={"timm": partial(timm_key_map, variant)},
            notes=(N_("timm's resnetv2 layout: full pre-activation (BN -> ReLU before each conv), "
                      "the stride of a stage's first block on its 3x3 conv, a projection shortcut "
                      "reading the pre-activated input, and one BN -> ReLU after the last block."),))}
    return {
        "released": Layout(
            False, partial(build_resnet, depths), **common,
            checkpoint_formats={"torchvision": partial(torchvision_key_map, variant)},
            notes=(N_("torchvision's layout (\"ResNet v1.5\"): the stride of a stage's first block "
                      "sits on its 3x3 conv, not on the first 1x1 conv as in the paper."),)),
        "paper": Layout(
            True, partial(build_resnet, depths, stride_on_3x3=False), **common,
            checkpoint_formats={"torchvision": partial(torchvision_key_map, variant)},
            notes=(N_("The paper's layout: a stage's first block strides with its first 1x1 conv "
                      "(option B shortcuts: projections only where the shape changes). "
                      "torchvision's checkpoints load by key, but were trained with the stride on "
                      "the 3x3."),)),
    }


RESNET_IDEA = N_("identity shortcuts let a very deep network learn residuals; 1x1 bottlenecks "
                 "keep its 3x3 convs cheap")
RESNET_DIFFERENCES = (N_("torchvision puts the stride of a stage's first block on its 3x3 conv "
                         "(\"v1.5\"), the paper on its first 1x1 conv: layout='paper'"),)
# ResNet paper, Table 3 (10-crop testing, ImageNet validation), as top-1 / top-5 error
RESNET_T3 = "ResNet paper (arXiv 1512.03385), Table 3, 10-crop testing"
V4_T4 = "Inception-v4 paper (arXiv 1602.07261), Table 4, dense evaluation (from He et al.)"
# the a1h rows of timm's results table (at 224 px, crop_pct 0.95)
TIMM_A1H_CSV = "timm results/results-imagenet.csv @aa4b585"


def _resnet(name: str, title: str, t3: tuple, weights: tuple, extra=()) -> VariantInfo:
    return VariantInfo(
        name, title, *RESNET_PUBLICATION, 224, RESNET_IDEA, _layouts(name),
        differences=RESNET_DIFFERENCES,
        baseline=True,
        paper_results=(Result(round(100 - t3[0], 2), round(100 - t3[1], 2),
                              f"{RESNET_T3} ({title}: {t3[0]} / {t3[1]} % error)", "paper"),
                       *extra),
        weights=weights)


RESNET50 = _resnet("resnet50", "ResNet-50", (22.85, 6.71), (  # V2 first: torchvision's DEFAULT
    torchvision_weights("resnet50", "IMAGENET1K_V2", "resnet50-11ad3fa6.pth", 232, 80.858, 95.434),
    torchvision_weights("resnet50", "IMAGENET1K_V1", "resnet50-0676ba61.pth", 256, 76.13, 92.862)))
RESNET101 = _resnet("resnet101", "ResNet-101", (21.75, 6.05), (
    torchvision_weights("resnet101", "IMAGENET1K_V2", "resnet101-cd907fc2.pth", 232, 81.886, 95.78),
    torchvision_weights("resnet101", "IMAGENET1K_V1", "resnet101-63fe2227.pth", 256, 77.374, 93.546)))
RESNET152 = _resnet("resnet152", "ResNet-152", (21.43, 5.71), (
    torchvision_weights("resnet152", "IMAGENET1K_V2", "resnet152-f82ba261.pth", 232, 82.284, 96.002),
    torchvision_weights("resnet152", "IMAGENET1K_V1", "resnet152-394f9c45.pth", 256, 78.312, 94.046)),
    extra=(Result(80.6, 95.5, f"{V4_T4} (ResNet-151: 19.4 / 4.5 % error)", "paper"),))

PREACT_IDEA_VARIANT = N_("pre-activation: BN and ReLU before each conv keep the shortcut an "
                         "exact identity, which eases the training of very deep networks")


def _resnetv2(name: str, title: str, weights: tuple) -> VariantInfo:
    return VariantInfo(
        name, title, *PREACT_PUBLICATION, 224, PREACT_IDEA_VARIANT, _layouts(name),
        aliases={"paper": "released"}, baseline=True,
        differences=(N_("timm puts the stride on the 3x3 conv; the paper's network is otherwise "
                        "the same (layout='paper' is another name for it)"),),
        weights=weights)


RESNETV2_50 = _resnetv2("resnetv2_50", "ResNet-v2-50", (
    timm_resnetv2_weights("resnetv2_50", "a1h_in1k", 80.410, 95.082),))
RESNETV2_101 = _resnetv2("resnetv2_101", "ResNet-v2-101", (
    timm_resnetv2_weights("resnetv2_101", "a1h_in1k", 82.042, 95.866),))

VARIANTS = (RESNET50, RESNET101, RESNET152, RESNETV2_50, RESNETV2_101)
