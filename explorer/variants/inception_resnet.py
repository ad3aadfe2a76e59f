"""Inception-ResNet-v1 and -v2: Szegedy et al. 2016 (arXiv 1602.07261), Figures 10-19, Table 1.

The two networks share one block vocabulary and differ in widths, as the paper says. Each
residual block is: parallel branches -> concat -> linear 1x1 "filter expansion" back to the
input width -> x scale -> add onto the input -> ReLU. Scales are 0.17 / 0.10 / 0.20 for the
35x35 / 17x17 / 8x8 blocks (the released code; the paper says "between 0.1 and 0.3").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from explorer.core.i18n import N_
from explorer.spec.compose import (
    Widths,
    classifier_head,
    concat,
    conv,
    layer,
    maxpool,
    network,
    residual,
    stage,
)
from explorer.spec.netspec import NetSpec
from explorer.variants.config import Config, Layout, scale_per_stage
from explorer.variants.facts import V4_TABLE, Result, VariantInfo, timm_weights
from explorer.variants.inception_v4 import V4_PAPER, V4_PUBLICATION, avg_pool, reduction_a, stem_v4

SCALES = (0.17, 0.10, 0.20)


@dataclass(frozen=True)
class ResidualNetWidths:
    """The branch widths of one network's residual blocks (35x35 A, 17x17 B, 8x8 C) and its
    reductions (before ``width``), and the figures that draw them."""

    a: tuple            # 1x1, 3x3 (reduce, conv), 3x3dbl (reduce, conv, conv)
    red_a: tuple        # Table 1: k, l, m, n
    b: tuple            # 1x1, 7x7 (reduce, 1x7, 7x1)
    red_b: tuple        # (reduce, 3x3/2) x2, (reduce, 3x3, 3x3/2)
    c: tuple            # 1x1, 3x3 (reduce, 1x3, 3x1)
    figures: tuple      # A, RedA, B, RedB, C, stem


V1 = ResidualNetWidths(a=(32, 32, 32, 32, 32, 32), red_a=(192, 192, 256, 384), b=(128, 128, 128, 128),
                   red_b=(256, 384, 256, 256, 256, 256, 256), c=(192, 192, 192, 192),
                   figures=("Figure 10", "Figure 7", "Figure 11", "Figure 12", "Figure 13",
                            "Figure 14"))
V2 = ResidualNetWidths(a=(32, 32, 32, 32, 48, 64), red_a=(256, 256, 384, 384), b=(192, 128, 160, 192),
                   red_b=(256, 384, 256, 288, 256, 288, 320), c=(192, 192, 224, 256),
                   figures=("Figure 16", "Figure 7", "Figure 17", "Figure 18", "Figure 19",
                            "Figure 3"))

RESIDUAL_IDEA = N_("a residual connection around an Inception block, scaled down (0.1-0.3) before "
                   "the add so that very wide networks train stably")


def block_a(widths: tuple, w: Widths, scale, fig):
    c1, r3, c3, rd, d1, d2 = (w(c) for c in widths)
    return residual({
        "1x1": conv(c1, 1),
        "3x3": [conv(r3, 1), conv(c3, 3, padding=1)],
        "3x3dbl": [conv(rd, 1), conv(d1, 3, padding=1), conv(d2, 3, padding=1)],
    }, scale, "residual", f"{V4_PAPER}, {fig}", RESIDUAL_IDEA)


def block_b(widths: tuple, w: Widths, scale, fig):
    c1, r, c17, c71 = (w(c) for c in widths)
    return residual({
        "1x1": conv(c1, 1),
        "7x7": [conv(r, 1), conv(c17, (1, 7), padding=(0, 3)), conv(c71, (7, 1), padding=(3, 0))],
    }, scale, "residual", f"{V4_PAPER}, {fig}", RESIDUAL_IDEA)


def block_c(widths: tuple, w: Widths, scale, fig, relu=True):
    c1, r, c13, c31 = (w(c) for c in widths)
    return residual({
        "1x1": conv(c1, 1),
        "3x3": [conv(r, 1), conv(c13, (1, 3), padding=(0, 1)), conv(c31, (3, 1), padding=(1, 0))],
    }, scale, "residual", f"{V4_PAPER}, {fig}", RESIDUAL_IDEA, act=relu)


def reduction_b(widths: tuple, w: Widths, fig):
    r0, c0, r1, c1, r2, c2a, c2b = (w(c) for c in widths)
    return concat({
        "3x3": [conv(r0, 1), conv(c0, 3, 2)],
        "3x3b": [conv(r1, 1), conv(c1, 3, 2)],
        "3x3dbl": [conv(r2, 1), conv(c2a, 3, padding=1), conv(c2b, 3, 2)],
        "pool": maxpool(3, 2),
    }, "reduction", f"{V4_PAPER}, {fig}", N_("17x17 -> 8x8 grid reduction with three conv towers and a pool"))


def stem_v1(w: Widths) -> dict:
    """Figure 14: the Inception-ResNet-v1 stem, 299x299x3 -> 35x35x256."""
    return dict(
        conv_1a=conv(w(32), 3, 2), conv_2a=conv(w(32), 3),
        conv_2b=conv(w(64), 3, padding=1), pool_3a=maxpool(3, 2),
        conv_3b=conv(w(80), 1), conv_4a=conv(w(192), 3),
        conv_4b=conv(w(256), 3, 2))


def stem_ir_v2_released(w: Widths) -> dict:
    """TF-slim's Inception-ResNet-v2 stem: Inception-v3's convs, then an Inception-A-like
    ``mixed_5b`` giving 35x35x320 (the paper uses the Inception-v4 stem instead)."""
    layers = dict(
        conv_1a=conv(w(32), 3, 2), conv_2a=conv(w(32), 3),
        conv_2b=conv(w(64), 3, padding=1), pool_3a=maxpool(3, 2),
        conv_3b=conv(w(80), 1), conv_4a=conv(w(192), 3),
        pool_5a=maxpool(3, 2))
    layers["mixed_5b"] = concat({
        "1x1": conv(w(96), 1),
        "5x5": [conv(w(48), 1), conv(w(64), 5, padding=2)],
        "3x3dbl": [conv(w(64), 1), conv(w(96), 3, padding=1), conv(w(96), 3, padding=1)],
        "pool": [avg_pool(), conv(w(64), 1)],
    }, "stem", N_("TF-slim release (not in the paper)"), N_("an Inception-A block ends the stem"))
    return layers


@dataclass(frozen=True)
class ResidualNet:
    """What tells Inception-ResNet-v1 and -v2 apart, in the paper and in their releases."""

    name: str  # its variant's name
    widths: ResidualNetWidths
    paper_stem: Callable
    released_stem: Callable
    released_stem_figure: str | None  # None: the paper's stem figure
    released_head: str  # "slim" (1x1 conv to 1536 first) or "facenet" (512-d embedding + BN)


def _build(cfg: Config, net: ResidualNet, *, paper: bool) -> NetSpec:
    """The paper's layout: its stem, A / B / C blocks and a pool, dropout, fc head; the
    released one: the release's stem and head, and one more C block without ReLU."""
    layout = VARIANTS[net.name].layouts["paper" if paper else "released"]
    widths = net.widths
    w = Widths(cfg.width)
    reps = tuple(cfg.repeats or layout.repeats)
    scale_a, scale_b, scale_c = scale_per_stage(layout, cfg)
    fig_a, fig_ra, fig_b, fig_rb, fig_c, fig_stem = widths.figures
    stem_figure = (None if paper else net.released_stem_figure) or f"{V4_PAPER}, {fig_stem}"
    blocks_c = [block_c(widths.c, w, scale_c, fig_c) for _ in range(reps[2])]
    if not paper:
        # The released code ends with one more block, unscaled and without the ReLU.
        blocks_c.append(block_c(widths.c, w, 1.0, fig_c, relu=False))
    stages = {
        "stem": stage("stem", (net.paper_stem if paper else net.released_stem)(w), "stem",
                      stem_figure, N_("299x299 -> 35x35")),
        "inception_resnet_a": stage("inception_resnet_a", [block_a(widths.a, w, scale_a, fig_a)
                                                           for _ in range(reps[0])],
                                    "stage", f"{V4_PAPER}, {fig_a}"),
        "reduction_a": stage("reduction_a", [reduction_a(*(w(c) for c in widths.red_a),
                                                         f"{V4_PAPER}, {fig_ra}")],
                             "reduction", f"{V4_PAPER}, {fig_ra}"),
        "inception_resnet_b": stage("inception_resnet_b", [block_b(widths.b, w, scale_b, fig_b)
                                                           for _ in range(reps[1])],
                                    "stage", f"{V4_PAPER}, {fig_b}"),
        "reduction_b": stage("reduction_b", [reduction_b(widths.red_b, w, fig_rb)], "reduction",
                             f"{V4_PAPER}, {fig_rb}"),
        "inception_resnet_c": stage("inception_resnet_c", blocks_c, "stage", f"{V4_PAPER}, {fig_c}"),
    }
    dropout = cfg.dropout if cfg.dropout is not None else layout.dropout
    if paper:
        return network(stages, classifier_head(cfg.num_classes, dropout))
    if net.released_head == "slim":
        pre = {"conv_7b": conv(w(1536), 1)}
        return network(stages, classifier_head(cfg.num_classes, dropout, pre=pre))
    post = {"last_linear": layer("linear", out=512, bias=False),  # facenet's embedding
            "last_bn": layer("bn1d", eps=1e-3)}
    return network(stages, classifier_head(cfg.num_classes, dropout, post=post))


IR_V1 = ResidualNet("inception_resnet_v1", V1, paper_stem=stem_v1, released_stem=stem_v1,
                    released_stem_figure=None, released_head="facenet")
IR_V2 = ResidualNet("inception_resnet_v2", V2, paper_stem=stem_v4, released_stem=stem_ir_v2_released,
                    released_stem_figure=N_("TF-slim release (Inception-v3 stem + mixed_5b)"),
                    released_head="slim")


A_MAP = {"branch0": "branches.1x1.0", "branch1": "branches.3x3", "branch2": "branches.3x3dbl",
         "conv2d": "up"}
B_MAP = {"branch0": "branches.1x1.0", "branch1": "branches.7x7", "conv2d": "up"}
C_MAP = {"branch0": "branches.1x1.0", "branch1": "branches.3x3", "conv2d": "up"}
RED_A_MAP = {"branch0": "branches.3x3.0", "branch1": "branches.3x3dbl"}
RED_B_MAP = {"branch0": "branches.3x3", "branch1": "branches.3x3b", "branch2": "branches.3x3dbl"}
STEM_NAMES = {"conv2d_1a": "conv_1a", "conv2d_2a": "conv_2a", "conv2d_2b": "conv_2b",
              "conv2d_3b": "conv_3b", "conv2d_4a": "conv_4a", "conv2d_4b": "conv_4b"}


def _residual_rules(reps, repeat_names: tuple[str, str, str]) -> list:
    rules = [("mixed_6a", "reduction_a.0", RED_A_MAP), ("mixed_7a", "reduction_b.0", RED_B_MAP),
             ("block8", f"inception_resnet_c.{reps[2]}", C_MAP)]
    for theirs, ours, count, inner in zip(repeat_names, ("a", "b", "c"), reps, (A_MAP, B_MAP, C_MAP)):
        rules += [(f"{theirs}.{i}", f"inception_resnet_{ours}.{i}", inner) for i in range(count)]
    return rules


def timm_key_map(cfg: Config) -> list:
    """timm ``inception_resnet_v2`` -> ours."""
    reps = tuple(cfg.repeats or V2_LAYOUTS["released"].repeats)
    rules = [(theirs, f"stem.{ours}", None) for theirs, ours in STEM_NAMES.items()
             if ours != "conv_4b"]
    rules += [("mixed_5b", "stem.mixed_5b", {"branch0": "branches.1x1.0", "branch1": "branches.5x5",
                                              "branch2": "branches.3x3dbl", "branch3": "branches.pool"}),
              ("conv2d_7b", "head.conv_7b", None), ("classif", "head.fc", None)]
    return rules + _residual_rules(reps, ("repeat", "repeat_1", "repeat_2"))


def facenet_key_map(cfg: Config) -> list:
    """facenet-pytorch ``InceptionResnetV1`` -> ours (``logits`` is its classifier)."""
    reps = tuple(cfg.repeats or V1_LAYOUTS["released"].repeats)
    rules = [(theirs, f"stem.{ours}", None) for theirs, ours in STEM_NAMES.items()]
    rules += [("last_linear", "head.last_linear", None), ("last_bn", "head.last_bn", None),
              ("logits", "head.fc", None)]
    return rules + _residual_rules(reps, ("repeat_1", "repeat_2", "repeat_3"))


STAGES = ("inception_resnet_a", "inception_resnet_b", "inception_resnet_c")
SHARED_NOTES = (N_("The 1x1 filter expansion before each add is linear: a bias, no BN, no ReLU; "
                   "no BN on top of the sums."),)

V1_LAYOUTS = {
    "released": Layout(
        False, partial(_build, net=IR_V1, paper=False), min_input_size=75, repeats=(5, 10, 5),
        repeat_stages=STAGES, scale=SCALES, dropout=0.6,
        checkpoint_formats={"facenet": facenet_key_map},
        notes=SHARED_NOTES + (
            N_("Released only as a face-recognition trunk (facenet, TF and facenet-pytorch); that "
               "trunk follows the paper's Figures 10-14."),
            N_("Like the TF-slim code, it adds a sixth Inception-ResNet-C block, unscaled and "
               "without ReLU, after the five of the paper."),
            N_("facenet's head: average pool, dropout, a 512-d linear embedding with batch norm, then "
               "the classifier (here 1000 classes unless num_classes says otherwise)."),
        )),
    "paper": Layout(
        True, partial(_build, net=IR_V1, paper=True), min_input_size=75, repeats=(5, 10, 5),
        repeat_stages=STAGES,
        scale=SCALES, dropout=0.2,
        notes=SHARED_NOTES + (
            N_("Figure 15 with the Inception-ResNet-v1 blocks: stem (Figure 14), 5 x A, Reduction-A "
               "(k, l, m, n = 192, 192, 256, 384), 10 x B, Reduction-B, 5 x C, average pool, "
               "dropout (keep 0.8), softmax."),
        )),
}

V2_LAYOUTS = {
    "released": Layout(
        False, partial(_build, net=IR_V2, paper=False), min_input_size=75, repeats=(10, 20, 9),
        repeat_stages=STAGES, scale=SCALES, dropout=0.2,
        checkpoint_formats={"timm": timm_key_map},
        notes=SHARED_NOTES + (
            N_("TF-slim's released layout (timm's inception_resnet_v2): Inception-v3's stem plus a "
               "mixed_5b block (35x35x320) instead of the paper's Inception-v4 stem."),
            N_("10 x A, 20 x B, 9 x C and one final C block, unscaled and without ReLU; widths "
               "320 / 1088 / 2080 at 35 / 17 / 8, then a 1x1 conv to 1536 before the pool."),
            N_("Only this layout loads the public weights (55.8 M parameters)."),
        )),
    "paper": Layout(
        True, partial(_build, net=IR_V2, paper=True), min_input_size=75, repeats=(5, 10, 5),
        repeat_stages=STAGES,
        scale=SCALES, dropout=0.2,
        notes=SHARED_NOTES + (
            N_("Figure 15 with the Inception-ResNet-v2 blocks: the Inception-v4 stem (Figure 3), "
               "5 x A, Reduction-A (k, l, m, n = 256, 256, 384, 384), 10 x B, Reduction-B "
               "(Figure 18), 5 x C."),
            N_("The paper's widths do not add up: Figure 17 expands to 1154 channels, but "
               "Reduction-A yields 384 + 384 + 384 = 1152; Figure 19 expands to 2048, but "
               "Reduction-B yields 1152 + 384 + 288 + 320 = 2144. We use 1152 and 2144, the only "
               "widths the adds allow."),
            N_("Residual scales follow the released code (0.17, 0.10, 0.20); the paper gives 0.1-0.3."),
        )),
}

V1_VARIANT = VariantInfo(
    "inception_resnet_v1", "Inception-ResNet-v1", *V4_PUBLICATION, 299,
    N_("residual connections around cheap Inception blocks (cost of Inception-v3)"), V1_LAYOUTS,
    differences=(N_("released only as the facenet face-embedding trunk"),
                 N_("an extra final C block without ReLU in the release"),
                 N_("facenet's 512-d embedding head")),
    paper_results=(Result(78.7, 94.5, V4_TABLE + " (Inception-ResNet-v1: 21.3 / 5.5 % error)",
                          "paper"),))

V2_VARIANT = VariantInfo(
    "inception_resnet_v2", "Inception-ResNet-v2", *V4_PUBLICATION, 299,
    N_("residual connections around wide Inception blocks (cost of Inception-v4), scaled by 0.1-0.3"),
    V2_LAYOUTS,
    differences=(N_("released stem: v3-style + mixed_5b (paper: the v4 stem)"),
                 N_("10 / 20 / 9+1 blocks released vs 5 / 10 / 5 in the paper"),
                 N_("released widths 320 / 1088 / 2080 + 1x1 conv to 1536; the paper's "
                    "384 / 1154 / 2048 are inconsistent (1152 / 2144 used)")),
    paper_results=(Result(80.1, 95.1, V4_TABLE + " (Inception-ResNet-v2: 19.9 / 4.9 % error)",
                          "paper"),),
    weights=(
        timm_weights("inception_resnet_v2", "tf_in1k", 0.8975, 80.462, 95.308),
        # ensemble adversarial training (Tramer et al. 2017)
        timm_weights("inception_resnet_v2", "tf_ens_adv_in1k", 0.8975, 79.978, 94.946),
    ))
VARIANTS = {v.name: v for v in (V1_VARIANT, V2_VARIANT)}
