"""Inception-v4: Szegedy et al., "Inception-v4, Inception-ResNet and the Impact of Residual
Connections on Learning" (arXiv 1602.07261), Figures 3-9.

timm's ``inception_v4`` (ported from the TF-slim release) follows the figures block for block,
so the released and the paper layout are one network. The stem and Reduction-A defined here are
shared with the Inception-ResNet networks, as in the paper.
"""

from __future__ import annotations

from explorer.core.i18n import N_
from explorer.spec.compose import (
    Widths,
    avgpool,
    classifier_head,
    concat,
    conv,
    maxpool,
    network,
    split,
    stage,
)
from explorer.spec.netspec import NetSpec
from explorer.variants.config import Config, Layout
from explorer.variants.facts import V4_TABLE, Result, VariantInfo, timm_weights

V4_PAPER = "v4 paper"  # figures are cited as "v4 paper, Figure 4"
REPEATS = (4, 7, 3)


def avg_pool():
    # timm / TF-slim average the pool branch over real pixels only (count_include_pad=False)
    return avgpool(3, 1, 1, count_include_pad=False)


def stem_v4(w: Widths) -> dict:
    """Figure 3: 299x299x3 -> 35x35x384, with three small concat blocks."""
    return {
        "conv_1a": conv(w(32), 3, 2),
        "conv_2a": conv(w(32), 3),
        "conv_2b": conv(w(64), 3, padding=1),
        "mixed_3a": concat({"pool": maxpool(3, 2), "3x3": conv(w(96), 3, 2)},
                           "stem", f"{V4_PAPER}, Figure 3", N_("pool and stride-2 conv side by side")),
        "mixed_4a": concat({
            "3x3": [conv(w(64), 1), conv(w(96), 3)],
            "7x7": [conv(w(64), 1), conv(w(64), (1, 7), padding=(0, 3)),
                    conv(w(64), (7, 1), padding=(3, 0)), conv(w(96), 3)],
        }, "stem", f"{V4_PAPER}, Figure 3", N_("a factorized 7x7 beside a 3x3")),
        "mixed_5a": concat({"3x3": conv(w(192), 3, 2), "pool": maxpool(3, 2)},
                           "stem", f"{V4_PAPER}, Figure 3", N_("pool and stride-2 conv side by side")),
    }


def inception_a(w: Widths):
    return concat({
        "1x1": conv(w(96), 1),
        "3x3": [conv(w(64), 1), conv(w(96), 3, padding=1)],
        "3x3dbl": [conv(w(64), 1), conv(w(96), 3, padding=1), conv(w(96), 3, padding=1)],
        "pool": [avg_pool(), conv(w(96), 1)],
    }, "inception", f"{V4_PAPER}, Figure 4", N_("the 5x5 of GoogLeNet factorized into two 3x3 convs"))


def reduction_a(k: int, l: int, m: int, n: int, figure: str = f"{V4_PAPER}, Figure 7"):
    """Figure 7, with Table 1's filter banks k, l, m, n (already width-scaled)."""
    return concat({
        "3x3": conv(n, 3, 2),
        "3x3dbl": [conv(k, 1), conv(l, 3, padding=1), conv(m, 3, 2)],
        "pool": maxpool(3, 2),
    }, "reduction", figure, N_("35x35 -> 17x17: stride-2 convs beside a max pool, so the grid "
           "shrinks without a representational bottleneck"))


def inception_b(w: Widths):
    return concat({
        "1x1": conv(w(384), 1),
        "7x7": [conv(w(192), 1), conv(w(224), (1, 7), padding=(0, 3)),
                conv(w(256), (7, 1), padding=(3, 0))],
        "7x7dbl": [conv(w(192), 1), conv(w(192), (7, 1), padding=(3, 0)),
                   conv(w(224), (1, 7), padding=(0, 3)), conv(w(224), (7, 1), padding=(3, 0)),
                   conv(w(256), (1, 7), padding=(0, 3))],
        "pool": [avg_pool(), conv(w(128), 1)],
    }, "inception", f"{V4_PAPER}, Figure 5", N_("7x7 convs factorized into asymmetric 1x7 and 7x1"))


def reduction_b(w: Widths):
    return concat({
        "3x3": [conv(w(192), 1), conv(w(192), 3, 2)],
        "7x7x3": [conv(w(256), 1), conv(w(256), (1, 7), padding=(0, 3)),
                  conv(w(320), (7, 1), padding=(3, 0)), conv(w(320), 3, 2)],
        "pool": maxpool(3, 2),
    }, "reduction", f"{V4_PAPER}, Figure 8", N_("17x17 -> 8x8 grid reduction"))


def inception_c(w: Widths):
    return concat({
        "1x1": conv(w(256), 1),
        "3x3": [conv(w(384), 1), split(w(256), f"{V4_PAPER}, Figure 6")],
        "3x3dbl": [conv(w(384), 1), conv(w(448), (3, 1), padding=(1, 0)),
                   conv(w(512), (1, 3), padding=(0, 1)), split(w(256), f"{V4_PAPER}, Figure 6")],
        "pool": [avg_pool(), conv(w(256), 1)],
    }, "inception", f"{V4_PAPER}, Figure 6", N_("expanded filter banks on the coarsest grid"))


def build(cfg: Config) -> NetSpec:
    """The one Inception-v4: the paper's figures and the released network agree."""
    w = Widths(cfg.width)
    reps = tuple(cfg.repeats or REPEATS)
    stages = {
        "stem": stage("stem", stem_v4(w), "stem", f"{V4_PAPER}, Figure 3",
                      N_("299x299 -> 35x35 with parallel pool/conv steps")),
        "inception_a": stage("inception_a", [inception_a(w) for _ in range(reps[0])], "stage",
                             f"{V4_PAPER}, Figure 4"),
        "reduction_a": stage("reduction_a", [reduction_a(w(192), w(224), w(256), w(384))],
                             "reduction", f"{V4_PAPER}, Figure 7"),
        "inception_b": stage("inception_b", [inception_b(w) for _ in range(reps[1])], "stage",
                             f"{V4_PAPER}, Figure 5"),
        "reduction_b": stage("reduction_b", [reduction_b(w)], "reduction", f"{V4_PAPER}, Figure 8"),
        "inception_c": stage("inception_c", [inception_c(w) for _ in range(reps[2])], "stage",
                             f"{V4_PAPER}, Figure 6"),
    }
    dropout = cfg.dropout if cfg.dropout is not None else 0.2
    return network(stages, classifier_head(cfg.num_classes, dropout))


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
            N_("timm's inception_v4, ported from TF-slim; it follows the paper's Figures 3-9 block for "
               "block, so the released and the paper layout are one network."),
            N_("Average pools in the Inception blocks exclude the zero padding (TF's SAME pooling)."),
        )),
}
# The paper's layout is this same network: one layout is offered, and "paper" is accepted as
# another name for it (``VariantInfo.aliases``) so that callers of layout="paper" keep working.

V4_PUBLICATION = ("Inception-v4, Inception-ResNet and the Impact of Residual Connections on Learning",
            "1602.07261", 2016)

VARIANT = VariantInfo(
    "inception_v4", "Inception-v4", *V4_PUBLICATION, 299,
    N_("a uniform, deeper Inception network with a new stem and explicit reduction blocks"),
    LAYOUTS, aliases={"paper": "released"},
    differences=(N_("none: the TF-slim release follows Figures 3-9, so one layout is offered "
                    "(layout='paper' is another name for it)"),),
    paper_results=(Result(80.0, 95.0, V4_TABLE + " (Inception-v4: 20.0 / 5.0 % error)", "paper"),),
    weights=(timm_weights("inception_v4", "tf_in1k", 0.875, 80.156, 94.968),))
