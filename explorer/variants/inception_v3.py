"""Inception-v2 and -v3: Szegedy et al., "Rethinking the Inception Architecture for Computer
Vision" (arXiv 1512.00567), Table 1 and Figures 5-8 and 10.

- ``inception_v3`` ``released``: torchvision's / timm's Inception-v3 (the TF release).
- ``inception_v3`` ``paper``: Table 1 as printed (its stem ends in a 3x3 conv to 288 channels at
  35x35; 3 / 5 / 2 modules) with the BN-auxiliary head of Table 3.
- ``inception_v2``: the paper's v2, i.e. Table 1 before the last two ablation steps of Table 3:
  the first 7x7 conv not yet factorized into 3x3 convs, and no BN in the auxiliary head.
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
    split,
    stage,
)
from explorer.spec.netspec import NetSpec
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

RETHINKING = "Rethinking"  # figures are cited as "Rethinking, Figure 5"


def v3_pool():
    return avgpool(3, 1, 1)  # counts the zero padding, unlike v4's blocks


def module_a(pool_features, w: Widths, five_by_five: bool):
    """Figure 5. The released v3 keeps GoogLeNet's 5x5 branch (1x1 48 -> 5x5 64) in all three
    35x35 modules; Figure 5 draws a 3x3 there."""
    k = 5 if five_by_five else 3
    return concat({
        "1x1": conv(w(64), 1),
        "5x5" if five_by_five else "3x3": [conv(w(48), 1), conv(w(64), k, padding=k // 2)],
        "3x3dbl": [conv(w(64), 1), conv(w(96), 3, padding=1), conv(w(96), 3, padding=1)],
        "pool": [v3_pool(), conv(w(pool_features), 1)],
    }, "inception", f"{RETHINKING}, Figure 5",
        N_("a 5x5 conv factorized into two 3x3 convs: MACs down by 28 %"))


def reduction_a(w: Widths):
    return concat({
        "3x3": conv(w(384), 3, 2),
        "3x3dbl": [conv(w(64), 1), conv(w(96), 3, padding=1), conv(w(96), 3, 2)],
        "pool": maxpool(3, 2),
    }, "reduction", f"{RETHINKING}, Figure 10", N_("stride-2 convs beside a pool shrink the grid while the "
           "channels grow, avoiding a representational bottleneck"))


def module_b(c7, w: Widths):
    c7 = w(c7)
    return concat({
        "1x1": conv(w(192), 1),
        "7x7": [conv(c7, 1), conv(c7, (1, 7), padding=(0, 3)), conv(w(192), (7, 1), padding=(3, 0))],
        "7x7dbl": [conv(c7, 1), conv(c7, (7, 1), padding=(3, 0)), conv(c7, (1, 7), padding=(0, 3)),
                   conv(c7, (7, 1), padding=(3, 0)), conv(w(192), (1, 7), padding=(0, 3))],
        "pool": [v3_pool(), conv(w(192), 1)],
    }, "inception", f"{RETHINKING}, Figure 6", N_("n x n convs factorized into 1 x n then n x 1 (n = 7)"))


def reduction_b(w: Widths):
    return concat({
        "3x3": [conv(w(192), 1), conv(w(320), 3, 2)],
        "7x7x3": [conv(w(192), 1), conv(w(192), (1, 7), padding=(0, 3)),
                  conv(w(192), (7, 1), padding=(3, 0)), conv(w(192), 3, 2)],
        "pool": maxpool(3, 2),
    }, "reduction", f"{RETHINKING}, Figure 10", N_("17x17 -> 8x8 grid reduction"))


def module_c(w: Widths):
    return concat({
        "1x1": conv(w(320), 1),
        "3x3": [conv(w(384), 1), split(w(384), f"{RETHINKING}, Figure 7")],
        "3x3dbl": [conv(w(448), 1), conv(w(384), 3, padding=1), split(w(384), f"{RETHINKING}, Figure 7")],
        "pool": [v3_pool(), conv(w(192), 1)],
    }, "inception", f"{RETHINKING}, Figure 7", N_("expanded filter banks (1x3 and 3x1 side by side) on the "
           "8x8 grid, for high-dimensional representations"))


def aux_head(tap: str, num_classes, w: Widths, bn_convs: bool, bn_fc: bool):
    """Figure 8. Released: BN convs, plain fc; Table 3's BN-auxiliary (paper v3): the fc is
    batch-normalised too; Inception-v2: no BN anywhere in the head."""
    layers = {"pool": avgpool(5, 3), "conv0": conv(w(128), 1, bn=bn_convs),
              "conv1": conv(w(768), 5, bn=bn_convs), "gap": layer("adaptive_avgpool", size=1),
              "flatten": layer("flatten"), "fc": layer("linear", out=num_classes, bias=not bn_fc)}
    if bn_fc:
        layers["fc_bn"] = layer("bn1d", eps=1e-3)
    return head(layers, "aux", f"{RETHINKING}, Figure 8",
                N_("the auxiliary classifier acts as a regulariser (it barely helps convergence)"),
                name="aux", tap=tap)


def _build(cfg: Config, *, paper: bool, version: int = 3) -> NetSpec:
    """The v3 release (``paper=False``), v3 as Table 1 prints it, or (``version=2``, a paper
    layout only) the paper's Inception-v2."""
    w = Widths(cfg.width)
    if not paper:
        stem = dict(
            conv_1a=conv(w(32), 3, 2), conv_2a=conv(w(32), 3),
            conv_2b=conv(w(64), 3, padding=1), pool_1=maxpool(3, 2),
            conv_3b=conv(w(80), 1), conv_4a=conv(w(192), 3),
            pool_2=maxpool(3, 2))
        pools_a, c7s = (32, 64, 64), (128, 160, 160, 192)
        a_names, b_names, c_names = ("mixed_5b", "mixed_5c", "mixed_5d"), \
            ("mixed_6b", "mixed_6c", "mixed_6d", "mixed_6e"), ("mixed_7b", "mixed_7c")
    else:
        stem = {}
        if version == 2:
            stem["conv_1"] = conv(w(64), 7, 2)  # not yet factorized into three 3x3 convs
        else:
            stem["conv_1a"] = conv(w(32), 3, 2)
            stem["conv_2a"] = conv(w(32), 3)
            stem["conv_2b"] = conv(w(64), 3, padding=1)
        stem["pool_1"] = maxpool(3, 2)
        stem["conv_3"] = conv(w(80), 3)
        stem["conv_4"] = conv(w(192), 3, 2)
        stem["conv_5"] = conv(w(288), 3, padding=1)
        pools_a, c7s = (64, 64, 64), (128, 160, 160, 160, 192)
        a_names, b_names, c_names = (tuple(str(i) for i in range(n)) for n in (3, 5, 2))
    stages = {
        "stem": stage("stem", stem, "stem", f"{RETHINKING}, Table 1",
                      N_("299x299 -> 35x35 with small convs")),
        "inception_a": stage("inception_a", {name: module_a(pool, w, five_by_five=not paper)
                                             for name, pool in zip(a_names, pools_a)},
                             "stage", f"{RETHINKING}, Figure 5"),
        "reduction_a": stage("reduction_a", {"0" if paper else "mixed_6a": reduction_a(w)},
                             "reduction", f"{RETHINKING}, Figure 10"),
        "inception_b": stage("inception_b", {name: module_b(c7, w) for name, c7 in zip(b_names, c7s)},
                             "stage", f"{RETHINKING}, Figure 6"),
        "reduction_b": stage("reduction_b", {"0" if paper else "mixed_7a": reduction_b(w)},
                             "reduction", f"{RETHINKING}, Figure 10"),
        "inception_c": stage("inception_c", {name: module_c(w) for name in c_names}, "stage",
                             f"{RETHINKING}, Figure 7"),
    }
    aux = []
    if cfg.aux_logits:
        aux.append(aux_head(f"inception_b.{b_names[-1]}", cfg.num_classes, w,
                            bn_convs=version == 3, bn_fc=paper and version == 3))
    dropout = cfg.dropout if cfg.dropout is not None else (0.2 if paper else 0.5)
    return network(stages, classifier_head(cfg.num_classes, dropout), aux)


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
            N_("The TF release, as torchvision and timm build it. Its stem differs from Table 1: "
               "conv 1x1 80 -> conv 3x3 192 (valid) -> max pool 3x3/2, so the first Inception "
               "module sees 35x35x192, not 35x35x288."),
            N_("The three 35x35 modules keep GoogLeNet's 5x5 branch (1x1 48 -> 5x5 64) where "
               "Figure 5 draws a 3x3; their pool branches have 32, 64, 64 filters (256, 288, 288 "
               "channels out)."),
            N_("4 modules at 17x17 (the paper's Table 1 says 5) and 2 at 8x8."),
            N_("The auxiliary head batch-normalises its convs but not its fc."),
            N_("torchvision's weights expect transform_input (ImageNet mean/std folded into "
               "mean = std = 0.5); here that lives in the checkpoint's preprocessing, not the model."),
        )),
    "paper": Layout(
        True, partial(_build, paper=True), min_input_size=75, min_input_size_aux=299,
        has_aux=True, dropout=0.2,
        notes=(
            N_("Table 1 as printed: 3x3/2 32, 3x3 32, 3x3 64 padded, pool 3x3/2, 3x3 80, 3x3/2 192, "
               "3x3 288 -> 35x35x288; 3 x Figure 5, Figure 10 reduction, 5 x Figure 6, Figure 10 "
               "reduction, 2 x Figure 7."),
            N_("The paper gives no branch widths; we take the released ones (pool branches 64 in "
               "every 35x35 module so that each yields Table 1's 288 channels; 1x7 widths 128, 160, "
               "160, 160, 192 for the five 17x17 modules)."),
            N_("Figure 5's 3x3 replaces the released 5x5 in the 35x35 modules."),
            N_("BN-auxiliary (Table 3): the auxiliary fc is batch-normalised as well as its convs; "
               "we apply BN to the fc's outputs, as to a conv's."),
        )),
}

V2_LAYOUTS = {
    "paper": Layout(
        True, partial(_build, paper=True, version=2), min_input_size=75, min_input_size_aux=299,
        has_aux=True, dropout=0.2,
        notes=(
            N_("The Rethinking paper's Inception-v2: Table 1's network before the last two steps of "
               "the Table 3 ablation (factorized 7x7, BN-auxiliary) that make it Inception-v3."),
            N_("Its stem starts with one 7x7/2 conv to 64 channels where v3 has three 3x3 convs "
               "(both give 147x147x64 from 299x299)."),
            N_("No batch norm in the auxiliary head."),
            N_("Not to be confused with BN-Inception, which the v4 paper and TF-slim call "
               "Inception-v2 (see bn_inception)."),
            N_("No public checkpoint exists, so paper is its only layout."),
        )),
}

RETHINKING_PUBLICATION = ("Rethinking the Inception Architecture for Computer Vision", "1512.00567",
                          2015)

V2_VARIANT = VariantInfo(
    "inception_v2", N_("Inception-v2 (Rethinking paper)"), *RETHINKING_PUBLICATION, 299,
    N_("factorized convolutions and efficient grid reduction (Table 1), before the v3 refinements"),
    V2_LAYOUTS, default_layout="paper",
    differences=(N_("no public checkpoint: only the paper layout exists"),),
    paper_results=(Result(76.6, None, RETHINKING_T3 + " (Inception-v2: 23.4 % top-1 error)",
                          "paper"),))

V3_VARIANT = VariantInfo(
    "inception_v3", "Inception-v3", *RETHINKING_PUBLICATION, 299,
    # Table 3's "factorized 7x7" is the stem's first 7x7 conv made into 3x3 convs; the 1x7 / 7x1
    # modules were already in Inception-v2
    N_("the stem's 7x7 conv factorized into 3x3 convs, label smoothing, BN-auxiliary classifier"),
    V3_LAYOUTS,
    differences=(N_("released stem ends at 35x35x192 (Table 1: 35x35x288)"),
                 N_("released 35x35 modules keep a 5x5 branch (Figure 5: 3x3)"),
                 N_("4 modules at 17x17 in the release, 5 in Table 1")),
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
