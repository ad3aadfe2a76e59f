"""Inception-v4: Szegedy et al., "Inception-v4, Inception-ResNet and the Impact of Residual
Connections on Learning" (arXiv 1602.07261), Figures 3-9.

timm's ``inception_v4`` (ported from the TF-slim release) follows the figures block for block,
so the released and the paper layout are one network. The stem and Reduction-A defined here are
shared with the Inception-ResNet networks, as in the paper.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from explorer.variants.blocks import Concat, ConvBN, InceptionNet, Widths, classifier_head, stage, tag
from explorer.variants.config import Config, Layout
from explorer.variants.facts import V4_TABLE, Result, VariantInfo, timm_weights

V4_PAPER = "v4 paper"  # figures are cited as "v4 paper, Figure 4"
REPEATS = (4, 7, 3)


def avg_pool():
    # timm / TF-slim average the pool branch over real pixels only (count_include_pad=False)
    return nn.AvgPool2d(3, 1, 1, count_include_pad=False)


def split(in_ch: int, out_ch: int) -> Concat:
    """1x3 and 3x1 side by side on the same input (Figure 6's expanded filter bank)."""
    return tag(Concat({"1x3": ConvBN(in_ch, out_ch, (1, 3), padding=(0, 1)),
                       "3x1": ConvBN(in_ch, out_ch, (3, 1), padding=(1, 0))}),
               "split", f"{V4_PAPER}, Figure 6", "the last convs split into 1x3 and 3x1 in parallel")


def stem_v4(w: Widths) -> tuple[OrderedDict, int]:
    """Figure 3: 299x299x3 -> 35x35x384, with three small concat blocks."""
    layers = OrderedDict(
        conv_1a=ConvBN(3, w(32), 3, 2),
        conv_2a=ConvBN(w(32), w(32), 3),
        conv_2b=ConvBN(w(32), w(64), 3, padding=1),
    )
    layers["mixed_3a"] = tag(Concat({"pool": nn.MaxPool2d(3, 2), "3x3": ConvBN(w(64), w(96), 3, 2)}),
                             "stem", f"{V4_PAPER}, Figure 3", "pool and stride-2 conv side by side")
    ch = w(64) + w(96)
    layers["mixed_4a"] = tag(Concat({
        "3x3": nn.Sequential(ConvBN(ch, w(64), 1), ConvBN(w(64), w(96), 3)),
        "7x7": nn.Sequential(ConvBN(ch, w(64), 1), ConvBN(w(64), w(64), (1, 7), padding=(0, 3)),
                             ConvBN(w(64), w(64), (7, 1), padding=(3, 0)), ConvBN(w(64), w(96), 3)),
    }), "stem", f"{V4_PAPER}, Figure 3", "a factorized 7x7 beside a 3x3")
    ch = 2 * w(96)
    layers["mixed_5a"] = tag(Concat({"3x3": ConvBN(ch, w(192), 3, 2), "pool": nn.MaxPool2d(3, 2)}),
                             "stem", f"{V4_PAPER}, Figure 3", "pool and stride-2 conv side by side")
    return layers, w(192) + ch


def inception_a(in_ch: int, w: Widths):
    return tag(Concat({
        "1x1": ConvBN(in_ch, w(96), 1),
        "3x3": nn.Sequential(ConvBN(in_ch, w(64), 1), ConvBN(w(64), w(96), 3, padding=1)),
        "3x3dbl": nn.Sequential(ConvBN(in_ch, w(64), 1), ConvBN(w(64), w(96), 3, padding=1),
                                ConvBN(w(96), w(96), 3, padding=1)),
        "pool": nn.Sequential(avg_pool(), ConvBN(in_ch, w(96), 1)),
    }), "inception", f"{V4_PAPER}, Figure 4", "the 5x5 of GoogLeNet factorized into two 3x3 convs")


def reduction_a(in_ch: int, k: int, l: int, m: int, n: int, figure: str = f"{V4_PAPER}, Figure 7"):
    """Figure 7, with Table 1's filter banks k, l, m, n (already width-scaled)."""
    block = tag(Concat({
        "3x3": ConvBN(in_ch, n, 3, 2),
        "3x3dbl": nn.Sequential(ConvBN(in_ch, k, 1), ConvBN(k, l, 3, padding=1), ConvBN(l, m, 3, 2)),
        "pool": nn.MaxPool2d(3, 2),
    }), "reduction", figure, "35x35 -> 17x17: stride-2 convs beside a max pool, so the grid "
        "shrinks without a representational bottleneck")
    return block, n + m + in_ch


def inception_b(in_ch: int, w: Widths):
    return tag(Concat({
        "1x1": ConvBN(in_ch, w(384), 1),
        "7x7": nn.Sequential(ConvBN(in_ch, w(192), 1),
                             ConvBN(w(192), w(224), (1, 7), padding=(0, 3)),
                             ConvBN(w(224), w(256), (7, 1), padding=(3, 0))),
        "7x7dbl": nn.Sequential(ConvBN(in_ch, w(192), 1),
                                ConvBN(w(192), w(192), (7, 1), padding=(3, 0)),
                                ConvBN(w(192), w(224), (1, 7), padding=(0, 3)),
                                ConvBN(w(224), w(224), (7, 1), padding=(3, 0)),
                                ConvBN(w(224), w(256), (1, 7), padding=(0, 3))),
        "pool": nn.Sequential(avg_pool(), ConvBN(in_ch, w(128), 1)),
    }), "inception", f"{V4_PAPER}, Figure 5", "7x7 convs factorized into asymmetric 1x7 and 7x1")


def reduction_b(in_ch: int, w: Widths):
    block = tag(Concat({
        "3x3": nn.Sequential(ConvBN(in_ch, w(192), 1), ConvBN(w(192), w(192), 3, 2)),
        "7x7x3": nn.Sequential(ConvBN(in_ch, w(256), 1),
                               ConvBN(w(256), w(256), (1, 7), padding=(0, 3)),
                               ConvBN(w(256), w(320), (7, 1), padding=(3, 0)),
                               ConvBN(w(320), w(320), 3, 2)),
        "pool": nn.MaxPool2d(3, 2),
    }), "reduction", f"{V4_PAPER}, Figure 8", "17x17 -> 8x8 grid reduction")
    return block, w(192) + w(320) + in_ch


def inception_c(in_ch: int, w: Widths):
    return tag(Concat({
        "1x1": ConvBN(in_ch, w(256), 1),
        "3x3": nn.Sequential(ConvBN(in_ch, w(384), 1), split(w(384), w(256))),
        "3x3dbl": nn.Sequential(ConvBN(in_ch, w(384), 1),
                                ConvBN(w(384), w(448), (3, 1), padding=(1, 0)),
                                ConvBN(w(448), w(512), (1, 3), padding=(0, 1)),
                                split(w(512), w(256))),
        "pool": nn.Sequential(avg_pool(), ConvBN(in_ch, w(256), 1)),
    }), "inception", f"{V4_PAPER}, Figure 6", "expanded filter banks on the coarsest grid")


def build(cfg: Config) -> InceptionNet:
    """The one Inception-v4: the paper's figures and the released network agree."""
    w = Widths(cfg.width)
    reps = tuple(cfg.repeats or REPEATS)
    stem, ch = stem_v4(w)
    stages = {"stem": stage(stem, "stem", f"{V4_PAPER}, Figure 3",
                            "299x299 -> 35x35 with parallel pool/conv steps")}
    # Only the first block of a stage takes the stage's input width; the others take the
    # blocks' own output width (the two differ when the width multiplier rounds unevenly).
    blocks_a = [inception_a(ch if i == 0 else 4 * w(96), w) for i in range(reps[0])]
    stages["inception_a"] = stage(blocks_a, "stage", f"{V4_PAPER}, Figure 4")
    ch = 4 * w(96)
    red_a, ch = reduction_a(ch, w(192), w(224), w(256), w(384))
    stages["reduction_a"] = stage([red_a], "reduction", f"{V4_PAPER}, Figure 7")
    b_out = w(384) + w(256) + w(256) + w(128)
    blocks_b = [inception_b(ch if i == 0 else b_out, w) for i in range(reps[1])]
    stages["inception_b"] = stage(blocks_b, "stage", f"{V4_PAPER}, Figure 5")
    ch = b_out
    red_b, ch = reduction_b(ch, w)
    stages["reduction_b"] = stage([red_b], "reduction", f"{V4_PAPER}, Figure 8")
    c_out = w(256) + 2 * w(256) + 2 * w(256) + w(256)
    blocks_c = [inception_c(ch if i == 0 else c_out, w) for i in range(reps[2])]
    stages["inception_c"] = stage(blocks_c, "stage", f"{V4_PAPER}, Figure 6")
    ch = c_out
    dropout = cfg.dropout if cfg.dropout is not None else 0.2
    return InceptionNet(stages, classifier_head(ch, cfg.num_classes, dropout))


def timm_key_map(cfg: Config) -> list:
    """timm ``inception_v4`` (``features.N``, ``last_linear``) -> ours."""
    reps = tuple(cfg.repeats or REPEATS)
    a = {"branch0": "branches.1x1.0", "branch1": "branches.3x3", "branch2": "branches.3x3dbl",
         "branch3": "branches.pool"}
    b = {"branch0": "branches.1x1.0", "branch1": "branches.7x7", "branch2": "branches.7x7dbl",
         "branch3": "branches.pool"}
    c = {"branch0": "branches.1x1.0", "branch1_0": "branches.3x3.0",
         "branch1_1a": "branches.3x3.1.branches.1x3.0", "branch1_1b": "branches.3x3.1.branches.3x1.0",
         "branch2_0": "branches.3x3dbl.0", "branch2_1": "branches.3x3dbl.1",
         "branch2_2": "branches.3x3dbl.2", "branch2_3a": "branches.3x3dbl.3.branches.1x3.0",
         "branch2_3b": "branches.3x3dbl.3.branches.3x1.0", "branch3": "branches.pool"}
    rules = [("features.0", "stem.conv_1a", None), ("features.1", "stem.conv_2a", None),
             ("features.2", "stem.conv_2b", None),
             ("features.3", "stem.mixed_3a", {"conv": "branches.3x3.0"}),
             ("features.4", "stem.mixed_4a", {"branch0": "branches.3x3", "branch1": "branches.7x7"}),
             ("features.5", "stem.mixed_5a", {"conv": "branches.3x3.0"}),
             ("last_linear", "head.fc", None)]
    index = 6
    for stage_name, count, inner in (
            ("inception_a", reps[0], a),
            ("reduction_a", 1, {"branch0": "branches.3x3.0", "branch1": "branches.3x3dbl"}),
            ("inception_b", reps[1], b),
            ("reduction_b", 1, {"branch0": "branches.3x3", "branch1": "branches.7x7x3"}),
            ("inception_c", reps[2], c)):
        for i in range(count):
            rules.append((f"features.{index}", f"{stage_name}.{i}", inner))
            index += 1
    return rules


LAYOUTS = {
    "released": Layout(
        False, build, min_input_size=75, checkpoint_formats={"timm": timm_key_map},
        repeats=REPEATS, repeat_stages=("inception_a", "inception_b", "inception_c"), dropout=0.2,
        notes=(
            "timm's inception_v4, ported from TF-slim; it follows the paper's Figures 3-9 block for "
            "block, so the released and the paper layout are one network.",
            "Average pools in the Inception blocks exclude the zero padding (TF's SAME pooling).",
        )),
}
# The paper's layout is this same network: one layout is offered, and "paper" is accepted as
# another name for it (``VariantInfo.aliases``) so that callers of layout="paper" keep working.

V4_PUBLICATION = ("Inception-v4, Inception-ResNet and the Impact of Residual Connections on Learning",
            "1602.07261", 2016)

VARIANT = VariantInfo(
    "inception_v4", "Inception-v4", *V4_PUBLICATION, 299,
    "a uniform, deeper Inception network with a new stem and explicit reduction blocks",
    LAYOUTS, aliases={"paper": "released"},
    differences=("none: the TF-slim release follows Figures 3-9, so one layout is offered "
                 "(layout='paper' is another name for it)",),
    paper_results=(Result(80.0, 95.0, V4_TABLE + " (Inception-v4: 20.0 / 5.0 % error)", "paper"),),
    weights=(timm_weights("inception_v4", "tf_in1k", 0.875, 80.156, 94.968),))
