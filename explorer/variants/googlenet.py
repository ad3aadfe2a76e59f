"""GoogLeNet / Inception-v1: Szegedy et al., "Going Deeper with Convolutions" (arXiv 1409.4842).

Two layouts:
- ``released``: torchvision's GoogLeNet, whose IMAGENET1K_V1 weights were trained with BN
  after every conv, and whose "5x5" branch is a 3x3 conv (pytorch/vision issue 906).
- ``paper``: Table 1 and Figure 3 as printed: conv + bias + ReLU without BN, local response
  normalisation in the stem, a real 5x5 branch, 3x3/2 max pool before 5a, dropout 40 %, and the
  aux heads of Section 5 (5x5/3 average pool, 1x1 conv 128, fc 1024, dropout 70 %).
"""

from __future__ import annotations

from functools import partial

from explorer.core.i18n import N_
from explorer.core.preprocess import Preprocess
from explorer.spec.compose import (
    Widths,
    avgpool,
    classifier_head,
    concat,
    conv,
    head,
    layer,
    maxpool,
    network,
    stage,
)
from explorer.spec.netspec import NetSpec
from explorer.variants.config import Config, Layout
from explorer.variants.facts import HALF, RETHINKING_T3, Result, VariantInfo, WeightsSpec

FIGURE_2B = "Going Deeper, Figure 2(b)"
IDEA = N_("1x1 convs reduce the channels before the expensive 3x3 and 5x5 convs, so four "
          "parallel filter sizes fit in the budget")

# Table 1: (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj)
TABLE_1 = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}


def inception_module(widths, w: Widths, five_kernel: int):
    c1, c3r, c3, c5r, c5, pp = (w(c) for c in widths)
    return concat({
        "1x1": conv(c1, 1),
        "3x3": [conv(c3r, 1), conv(c3, 3, padding=1)],
        "5x5": [conv(c5r, 1), conv(c5, five_kernel, padding=five_kernel // 2)],
        "pool": [maxpool(3, 1, 1, ceil_mode=True), conv(pp, 1)],
    }, "inception", FIGURE_2B, IDEA)


def _build(cfg: Config, paper: bool) -> NetSpec:
    """The paper's convs have a bias and no BN (``bn=False`` for the whole network)."""
    w = Widths(cfg.width)
    five = 5 if paper else 3
    lrn = layer("lrn", size=5, alpha=1e-4, beta=0.75)
    stem = {"conv1": conv(w(64), 7, stride=2, padding=3), "pool1": maxpool(3, 2, ceil_mode=True)}
    if paper:
        stem["norm1"] = lrn
    stem["conv2"] = conv(w(64), 1)
    stem["conv3"] = conv(w(192), 3, padding=1)
    if paper:
        stem["norm2"] = lrn
    stem["pool2"] = maxpool(3, 2, ceil_mode=True)

    stages = {"stem": stage("stem", stem, "stem", "Going Deeper, Table 1 / Figure 3",
                            N_("plain convolutions shrink 224x224 to 28x28 before any Inception module"))}
    for level, names in (("3", "ab"), ("4", "abcde"), ("5", "ab")):
        blocks = {f"inception_{level}{n}": inception_module(TABLE_1[level + n], w, five) for n in names}
        stages[f"inception_{level}"] = stage(f"inception_{level}", blocks, "stage", FIGURE_2B, IDEA)
        if level != "5":
            # torchvision pools 2x2/2 before 5a; Table 1 says 3x3/2. Both give 7x7.
            k = 3 if (paper or level == "3") else 2
            stages[f"pool_{level}"] = stage(f"pool_{level}", {"pool": maxpool(k, 2, ceil_mode=True)},
                                            "reduction", "Going Deeper, Table 1",
                                            N_("max pooling halves the grid between stages"))
    aux = []
    if cfg.aux_logits:
        aux = [_aux_head(tap, name, cfg.num_classes, w, paper)
               for tap, name in (("inception_4.inception_4a", "aux1"), ("inception_4.inception_4d", "aux2"))]
    dropout = cfg.dropout if cfg.dropout is not None else (0.4 if paper else 0.2)
    return network(stages, classifier_head(cfg.num_classes, dropout), aux, bn=not paper)


def _aux_head(tap, name, num_classes, w, paper):
    # Section 5: 5x5/3 average pool gives 4x4 from 14x14; torchvision pools adaptively to 4x4.
    layers = {"pool": avgpool(5, 3) if paper else layer("adaptive_avgpool", size=4),
              "conv": conv(w(128), 1), "flatten": layer("flatten"), "fc1": layer("linear", out=1024),
              "relu": layer("relu"), "dropout": layer("dropout", p=0.7),
              "fc2": layer("linear", out=num_classes)}
    return head(layers, "aux", "Going Deeper, Section 5",
                N_("a side classifier on an intermediate stage adds gradient signal and regularises"),
                name=name, tap=tap)


def torchvision_key_map(cfg: Config) -> list:
    """torchvision GoogLeNet state-dict names -> ours."""
    branch = {"branch1": "branches.1x1.0", "branch2": "branches.3x3", "branch3": "branches.5x5",
              "branch4": "branches.pool"}
    rules = [("conv1", "stem.conv1", None), ("conv2", "stem.conv2", None),
             ("conv3", "stem.conv3", None), ("fc", "head.fc", None),
             ("aux1", "aux1", None), ("aux2", "aux2", None)]
    for block in TABLE_1:
        rules.append((f"inception{block}", f"inception_{block[0]}.inception_{block}", branch))
    return rules


LAYOUTS = {
    "released": Layout(
        False, partial(_build, paper=False), min_input_size=15, has_aux=True, dropout=0.2,
        checkpoint_formats={"torchvision": torchvision_key_map},
        notes=(
            N_("torchvision's layout, which its IMAGENET1K_V1 weights need: BN after every conv "
               "(the paper had none) and LRN removed."),
            N_("The branch named 5x5 is a 3x3 conv: a port bug kept for weight compatibility "
               "(pytorch/vision issue 906)."),
            N_("Max pool before 5a is 2x2/2 (the paper's is 3x3/2); both give 7x7."),
            N_("Aux heads pool adaptively to 4x4; dropout before the classifier is 0.2 (paper: 0.4)."),
        )),
    "paper": Layout(
        True, partial(_build, paper=True), min_input_size=31, min_input_size_aux=223, has_aux=True,
        dropout=0.4,
        notes=(
            N_("Table 1 and Figure 3 as printed: conv + bias + ReLU, no batch norm."),
            N_("Local response normalisation after pool1 and after conv3 (size 5, alpha 1e-4, "
               "beta 0.75, as in the released Caffe model)."),
            N_("The 5x5 branch is a real 5x5 conv."),
            N_("Aux heads: 5x5/3 average pool, 1x1 conv 128, fc 1024, dropout 70 %."),
            N_("Table 1 lists conv1 at 2.7K params; 7x7x3x64 is 9.4K: a misprint in the paper."),
        )),
}

VARIANT = VariantInfo(
    "googlenet", "GoogLeNet (Inception-v1)", "Going Deeper with Convolutions", "1409.4842", 2014,
    224, N_("parallel 1x1 / 3x3 / 5x5 / pool branches with 1x1 bottlenecks"), LAYOUTS,
    differences=(N_("BN after every conv in the released weights; none in the paper"),
                 N_("the released '5x5' branch is a 3x3 conv (torchvision issue 906)"),
                 N_("LRN in the paper's stem, none in the release")),
    paper_results=(Result(71.0, 90.8, RETHINKING_T3 + " (GoogLeNet: 29 / 9.2 % error)", "paper"),),
    weights=(
        # ported from the original paper's Caffe model; its 5x5 branch is a 3x3 (49.7 MB)
        WeightsSpec(
            "googlenet", "IMAGENET1K_V1", "torchvision",
            # torchvision's transforms (ImageNet mean/std) with the model's transform_input
            # folded in: the two together normalise with mean = std = 0.5.
            Preprocess(224, 256, "bilinear", HALF, HALF),
            Result(69.778, 89.530, "torchvision GoogLeNet_Weights.IMAGENET1K_V1", "weights"),
            url="https://download.pytorch.org/models/googlenet-1378be20.pth",
            sha256_prefix="1378be20"),
    ))
