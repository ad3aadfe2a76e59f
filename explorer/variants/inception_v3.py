"""Inception-v2 and -v3: Szegedy et al., "Rethinking the Inception Architecture for Computer
Vision" (arXiv 1512.00567), Table 1 and Figures 5-8 and 10.

- ``inception_v3`` ``released``: torchvision's / timm's Inception-v3 (the TF release).
- ``inception_v3`` ``paper``: Table 1 as printed (its stem ends in a 3x3 conv to 288 channels at
  35x35; 3 / 5 / 2 modules) with the BN-auxiliary head of Table 3.
- ``inception_v2``: the paper's v2, i.e. Table 1 before the last two ablation steps of Table 3:
  the first 7x7 conv not yet factorized into 3x3 convs, and no BN in the auxiliary head.
"""

from __future__ import annotations

from collections import OrderedDict
from functools import partial

from torch import nn

from explorer.core.preprocess import Preprocess
from explorer.variants.blocks import (
    AuxHead,
    Concat,
    ConvBN,
    InceptionNet,
    Widths,
    classifier_head,
    stage,
    tag,
)
from explorer.variants.config import Config, Layout
from explorer.variants.facts import (
    HALF,
    IMAGENET_MEAN,
    RETHINKING_T3,
    V4_TABLE,
    Result,
    VariantInfo,
    WeightsSpec,
    timm_weights,
)
from explorer.variants.inception_v4 import split

RETHINKING = "Rethinking"  # figures are cited as "Rethinking, Figure 5"
V3_POOL = partial(nn.AvgPool2d, 3, 1, 1)  # counts the zero padding, unlike v4's blocks


def module_a(ch, pool_features, w: Widths, five_by_five: bool):
    """Figure 5. The released v3 keeps GoogLeNet's 5x5 branch (1x1 48 -> 5x5 64) in all three
    35x35 modules; Figure 5 draws a 3x3 there."""
    k = 5 if five_by_five else 3
    block = tag(Concat({
        "1x1": ConvBN(ch, w(64), 1),
        "5x5" if five_by_five else "3x3": nn.Sequential(ConvBN(ch, w(48), 1),
                                                        ConvBN(w(48), w(64), k, padding=k // 2)),
        "3x3dbl": nn.Sequential(ConvBN(ch, w(64), 1), ConvBN(w(64), w(96), 3, padding=1),
                                ConvBN(w(96), w(96), 3, padding=1)),
        "pool": nn.Sequential(V3_POOL(), ConvBN(ch, w(pool_features), 1)),
    }), "inception", f"{RETHINKING}, Figure 5", "a 5x5 conv factorized into two 3x3 convs: 28 % fewer MACs")
    return block, w(64) + w(64) + w(96) + w(pool_features)


def reduction_a(ch, w: Widths):
    block = tag(Concat({
        "3x3": ConvBN(ch, w(384), 3, 2),
        "3x3dbl": nn.Sequential(ConvBN(ch, w(64), 1), ConvBN(w(64), w(96), 3, padding=1),
                                ConvBN(w(96), w(96), 3, 2)),
        "pool": nn.MaxPool2d(3, 2),
    }), "reduction", f"{RETHINKING}, Figure 10", "stride-2 convs beside a pool shrink the grid while the "
        "channels grow, avoiding a representational bottleneck")
    return block, w(384) + w(96) + ch


def module_b(ch, c7, w: Widths):
    c7 = w(c7)
    return tag(Concat({
        "1x1": ConvBN(ch, w(192), 1),
        "7x7": nn.Sequential(ConvBN(ch, c7, 1), ConvBN(c7, c7, (1, 7), padding=(0, 3)),
                             ConvBN(c7, w(192), (7, 1), padding=(3, 0))),
        "7x7dbl": nn.Sequential(ConvBN(ch, c7, 1), ConvBN(c7, c7, (7, 1), padding=(3, 0)),
                                ConvBN(c7, c7, (1, 7), padding=(0, 3)),
                                ConvBN(c7, c7, (7, 1), padding=(3, 0)),
                                ConvBN(c7, w(192), (1, 7), padding=(0, 3))),
        "pool": nn.Sequential(V3_POOL(), ConvBN(ch, w(192), 1)),
    }), "inception", f"{RETHINKING}, Figure 6", "n x n convs factorized into 1 x n then n x 1 (n = 7)")


def reduction_b(ch, w: Widths):
    block = tag(Concat({
        "3x3": nn.Sequential(ConvBN(ch, w(192), 1), ConvBN(w(192), w(320), 3, 2)),
        "7x7x3": nn.Sequential(ConvBN(ch, w(192), 1), ConvBN(w(192), w(192), (1, 7), padding=(0, 3)),
                               ConvBN(w(192), w(192), (7, 1), padding=(3, 0)),
                               ConvBN(w(192), w(192), 3, 2)),
        "pool": nn.MaxPool2d(3, 2),
    }), "reduction", f"{RETHINKING}, Figure 10", "17x17 -> 8x8 grid reduction")
    return block, w(320) + w(192) + ch


def module_c(ch, w: Widths):
    block = tag(Concat({
        "1x1": ConvBN(ch, w(320), 1),
        "3x3": nn.Sequential(ConvBN(ch, w(384), 1), split(w(384), w(384))),
        "3x3dbl": nn.Sequential(ConvBN(ch, w(448), 1), ConvBN(w(448), w(384), 3, padding=1),
                                split(w(384), w(384))),
        "pool": nn.Sequential(V3_POOL(), ConvBN(ch, w(192), 1)),
    }), "inception", f"{RETHINKING}, Figure 7", "expanded filter banks (1x3 and 3x1 side by side) on the "
        "8x8 grid, for high-dimensional representations")
    return block, w(320) + 2 * w(384) + 2 * w(384) + w(192)


def aux_head(ch, num_classes, w: Widths, bn_convs: bool, bn_fc: bool):
    """Figure 8. Released: BN convs, plain fc; Table 3's BN-auxiliary (paper v3): the fc is
    batch-normalised too; Inception-v2: no BN anywhere in the head."""
    conv = partial(ConvBN, bn=bn_convs)
    layers = OrderedDict(pool=nn.AvgPool2d(5, 3), conv0=conv(ch, w(128), 1),
                         conv1=conv(w(128), w(768), 5), gap=nn.AdaptiveAvgPool2d(1),
                         flatten=nn.Flatten(1))
    layers["fc"] = nn.Linear(w(768), num_classes, bias=not bn_fc)
    if bn_fc:
        layers["fc_bn"] = nn.BatchNorm1d(num_classes, eps=1e-3)
    return tag(AuxHead(layers), "aux", f"{RETHINKING}, Figure 8",
               "the auxiliary classifier acts as a regulariser (it barely helps convergence)")


def _build(cfg: Config, *, paper: bool, version: int = 3) -> InceptionNet:
    """The v3 release (``paper=False``), v3 as Table 1 prints it, or (``version=2``, a paper
    layout only) the paper's Inception-v2."""
    w = Widths(cfg.width)
    if not paper:
        stem = OrderedDict(
            conv_1a=ConvBN(3, w(32), 3, 2), conv_2a=ConvBN(w(32), w(32), 3),
            conv_2b=ConvBN(w(32), w(64), 3, padding=1), pool_1=nn.MaxPool2d(3, 2),
            conv_3b=ConvBN(w(64), w(80), 1), conv_4a=ConvBN(w(80), w(192), 3),
            pool_2=nn.MaxPool2d(3, 2))
        ch, pools_a, c7s = w(192), (32, 64, 64), (128, 160, 160, 192)
        a_names, b_names, c_names = ("mixed_5b", "mixed_5c", "mixed_5d"), \
            ("mixed_6b", "mixed_6c", "mixed_6d", "mixed_6e"), ("mixed_7b", "mixed_7c")
    else:
        stem = OrderedDict()
        if version == 2:
            stem["conv_1"] = ConvBN(3, w(64), 7, 2)  # not yet factorized into three 3x3 convs
        else:
            stem["conv_1a"] = ConvBN(3, w(32), 3, 2)
            stem["conv_2a"] = ConvBN(w(32), w(32), 3)
            stem["conv_2b"] = ConvBN(w(32), w(64), 3, padding=1)
        stem["pool_1"] = nn.MaxPool2d(3, 2)
        stem["conv_3"] = ConvBN(w(64), w(80), 3)
        stem["conv_4"] = ConvBN(w(80), w(192), 3, 2)
        stem["conv_5"] = ConvBN(w(192), w(288), 3, padding=1)
        ch, pools_a, c7s = w(288), (64, 64, 64), (128, 160, 160, 160, 192)
        a_names, b_names, c_names = (tuple(str(i) for i in range(n)) for n in (3, 5, 2))
    stages = {"stem": stage(stem, "stem", f"{RETHINKING}, Table 1", "299x299 -> 35x35 with small convs")}

    blocks = OrderedDict()
    for name, pool_features in zip(a_names, pools_a):
        blocks[name], ch = module_a(ch, pool_features, w, five_by_five=not paper)
    stages["inception_a"] = stage(blocks, "stage", f"{RETHINKING}, Figure 5")
    red, ch = reduction_a(ch, w)
    stages["reduction_a"] = stage({"0" if paper else "mixed_6a": red}, "reduction",
                                  f"{RETHINKING}, Figure 10")
    blocks = OrderedDict()
    for name, c7 in zip(b_names, c7s):  # each block takes the previous one's output width
        blocks[name] = module_b(ch, c7, w)
        ch = 4 * w(192)
    stages["inception_b"] = stage(blocks, "stage", f"{RETHINKING}, Figure 6")
    red, ch = reduction_b(ch, w)
    stages["reduction_b"] = stage({"0" if paper else "mixed_7a": red}, "reduction",
                                  f"{RETHINKING}, Figure 10")
    blocks = OrderedDict()
    for name in c_names:
        blocks[name], ch = module_c(ch, w)
    stages["inception_c"] = stage(blocks, "stage", f"{RETHINKING}, Figure 7")

    aux = {}
    if cfg.aux_logits:
        head = aux_head(4 * w(192), cfg.num_classes, w, bn_convs=version == 3,
                        bn_fc=paper and version == 3)
        aux[f"inception_b.{b_names[-1]}"] = ("aux", head)
    dropout = cfg.dropout if cfg.dropout is not None else (0.2 if paper else 0.5)
    return InceptionNet(stages, classifier_head(ch, cfg.num_classes, dropout), aux)


def reference_key_map(cfg: Config) -> list:
    """torchvision's and timm's Inception-v3 share these state-dict names."""
    a = {"branch1x1": "branches.1x1.0", "branch5x5_1": "branches.5x5.0",
         "branch5x5_2": "branches.5x5.1", "branch3x3dbl_1": "branches.3x3dbl.0",
         "branch3x3dbl_2": "branches.3x3dbl.1", "branch3x3dbl_3": "branches.3x3dbl.2",
         "branch_pool": "branches.pool.1"}
    red_a = {"branch3x3": "branches.3x3.0", "branch3x3dbl_1": "branches.3x3dbl.0",
             "branch3x3dbl_2": "branches.3x3dbl.1", "branch3x3dbl_3": "branches.3x3dbl.2"}
    b = {"branch1x1": "branches.1x1.0", "branch_pool": "branches.pool.1",
         **{f"branch7x7_{i}": f"branches.7x7.{i - 1}" for i in (1, 2, 3)},
         **{f"branch7x7dbl_{i}": f"branches.7x7dbl.{i - 1}" for i in (1, 2, 3, 4, 5)}}
    red_b = {"branch3x3_1": "branches.3x3.0", "branch3x3_2": "branches.3x3.1",
             **{f"branch7x7x3_{i}": f"branches.7x7x3.{i - 1}" for i in (1, 2, 3, 4)}}
    c = {"branch1x1": "branches.1x1.0", "branch3x3_1": "branches.3x3.0",
         "branch3x3_2a": "branches.3x3.1.branches.1x3.0",
         "branch3x3_2b": "branches.3x3.1.branches.3x1.0",
         "branch3x3dbl_1": "branches.3x3dbl.0", "branch3x3dbl_2": "branches.3x3dbl.1",
         "branch3x3dbl_3a": "branches.3x3dbl.2.branches.1x3.0",
         "branch3x3dbl_3b": "branches.3x3dbl.2.branches.3x1.0", "branch_pool": "branches.pool.1"}
    rules = [("Conv2d_1a_3x3", "stem.conv_1a", None), ("Conv2d_2a_3x3", "stem.conv_2a", None),
             ("Conv2d_2b_3x3", "stem.conv_2b", None), ("Conv2d_3b_1x1", "stem.conv_3b", None),
             ("Conv2d_4a_3x3", "stem.conv_4a", None), ("Mixed_6a", "reduction_a.mixed_6a", red_a),
             ("Mixed_7a", "reduction_b.mixed_7a", red_b), ("AuxLogits", "aux", None),
             ("fc", "head.fc", None)]
    rules += [(f"Mixed_5{x}", f"inception_a.mixed_5{x}", a) for x in "bcd"]
    rules += [(f"Mixed_6{x}", f"inception_b.mixed_6{x}", b) for x in "bcde"]
    rules += [(f"Mixed_7{x}", f"inception_c.mixed_7{x}", c) for x in "bc"]
    return rules


V3_LAYOUTS = {
    "released": Layout(
        False, partial(_build, paper=False), min_input_size=75, min_input_size_aux=299,
        has_aux=True, dropout=0.5,
        checkpoint_formats={"torchvision": reference_key_map, "timm": reference_key_map},
        notes=(
            "The TF release, as torchvision and timm build it. Its stem differs from Table 1: "
            "conv 1x1 80 -> conv 3x3 192 (valid) -> max pool 3x3/2, so the first Inception "
            "module sees 35x35x192, not 35x35x288.",
            "The three 35x35 modules keep GoogLeNet's 5x5 branch (1x1 48 -> 5x5 64) where "
            "Figure 5 draws a 3x3; their pool branches have 32, 64, 64 filters (256, 288, 288 "
            "channels out).",
            "4 modules at 17x17 (the paper's Table 1 says 5) and 2 at 8x8.",
            "The auxiliary head batch-normalises its convs but not its fc.",
            "torchvision's weights expect transform_input (ImageNet mean/std folded into "
            "mean = std = 0.5); here that lives in the checkpoint's preprocessing, not the model.",
        )),
    "paper": Layout(
        True, partial(_build, paper=True), min_input_size=75, min_input_size_aux=299,
        has_aux=True, dropout=0.2,
        notes=(
            "Table 1 as printed: 3x3/2 32, 3x3 32, 3x3 64 padded, pool 3x3/2, 3x3 80, 3x3/2 192, "
            "3x3 288 -> 35x35x288; 3 x Figure 5, Figure 10 reduction, 5 x Figure 6, Figure 10 "
            "reduction, 2 x Figure 7.",
            "The paper gives no branch widths; we take the released ones (pool branches 64 in "
            "every 35x35 module so that each yields Table 1's 288 channels; 1x7 widths 128, 160, "
            "160, 160, 192 for the five 17x17 modules).",
            "Figure 5's 3x3 replaces the released 5x5 in the 35x35 modules.",
            "BN-auxiliary (Table 3): the auxiliary fc is batch-normalised as well as its convs; "
            "we apply BN to the fc's outputs, as to a conv's.",
        )),
}

V2_LAYOUTS = {
    "paper": Layout(
        True, partial(_build, paper=True, version=2), min_input_size=75, min_input_size_aux=299,
        has_aux=True, dropout=0.2,
        notes=(
            "The Rethinking paper's Inception-v2: Table 1's network before the last two steps of "
            "the Table 3 ablation (factorized 7x7, BN-auxiliary) that make it Inception-v3.",
            "Its stem starts with one 7x7/2 conv to 64 channels where v3 has three 3x3 convs "
            "(both give 147x147x64 from 299x299).",
            "No batch norm in the auxiliary head.",
            "Not to be confused with BN-Inception, which the v4 paper and TF-slim call "
            "Inception-v2 (see bn_inception).",
            "No public checkpoint exists, so paper is its only layout.",
        )),
}

RETHINKING_PUBLICATION = ("Rethinking the Inception Architecture for Computer Vision", "1512.00567",
                          2015)

V2_VARIANT = VariantInfo(
    "inception_v2", "Inception-v2 (Rethinking paper)", *RETHINKING_PUBLICATION, 299,
    "factorized convolutions and efficient grid reduction (Table 1), before the v3 refinements",
    V2_LAYOUTS, default_layout="paper",
    differences=("no public checkpoint: only the paper layout exists",),
    paper_results=(Result(76.6, None, RETHINKING_T3 + " (Inception-v2: 23.4 % top-1 error)",
                          "paper"),))

V3_VARIANT = VariantInfo(
    "inception_v3", "Inception-v3", *RETHINKING_PUBLICATION, 299,
    # Table 3's "factorized 7x7" is the stem's first 7x7 conv made into 3x3 convs; the 1x7 / 7x1
    # modules were already in Inception-v2
    "the stem's 7x7 conv factorized into 3x3 convs, label smoothing, BN-auxiliary classifier",
    V3_LAYOUTS,
    differences=("released stem ends at 35x35x192 (Table 1: 35x35x288)",
                 "released 35x35 modules keep a 5x5 branch (Figure 5: 3x3)",
                 "4 modules at 17x17 in the release, 5 in Table 1"),
    paper_results=(Result(78.8, 94.4, V4_TABLE + " (Inception-v3: 21.2 / 5.6 % error)", "paper"),),
    weights=(
        # ported from TensorFlow; holds the aux head, dropped unless built with aux_logits
        # (103.9 MB)
        WeightsSpec(
            "inception_v3", "IMAGENET1K_V1", "torchvision",
            Preprocess(299, 342, "bilinear", HALF, HALF),
            Result(77.294, 93.450, "torchvision Inception_V3_Weights.IMAGENET1K_V1", "weights"),
            url="https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth",
            sha256_prefix="0cc3c7bd"),
        timm_weights("inception_v3", "tf_in1k", 0.875, 77.862, 93.644),
        timm_weights("inception_v3", "tv_in1k", 0.875, 77.434, 93.474),  # torchvision's, via timm
        timm_weights("inception_v3", "gluon_in1k", 0.875, 78.806, 94.374, mean=IMAGENET_MEAN),
    ))
