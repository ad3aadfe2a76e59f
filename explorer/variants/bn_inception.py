"""BN-Inception: Ioffe & Szegedy, "Batch Normalization" (arXiv 1502.03167), Figure 5.

The network the Inception-v4 paper and TF-slim call "Inception-v2". Its public weights are the
Caffe model ported by Cadene (pretrainedmodels), which follows Figure 5 exactly, so the
released and the paper layout are the same network; its convs kept their bias next to BN.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

from explorer.core.i18n import N_
from explorer.core.preprocess import Preprocess
from explorer.spec.compose import Widths, avgpool, classifier_head, concat, maxpool, network, stage
from explorer.spec.compose import conv as plain_conv
from explorer.spec.netspec import NetSpec
from explorer.variants.config import Config, Layout
from explorer.variants.facts import V4_TABLE, Result, VariantInfo, WeightsSpec

FIGURE_5 = "Batch Normalization, Figure 5"
IDEA = N_("the 5x5 branch becomes two stacked 3x3 convs, and batch norm after every conv allows "
          "much higher learning rates")
REDUCTION_IDEA = N_("a stride-2 module: convs and a max pool in parallel halve the grid while the "
                    "channels grow")

# Figure 5: (#1x1, #3x3 reduce, #3x3, double #3x3 reduce, double #3x3, pool, pool proj);
# #1x1 = 0 marks a stride-2 module whose pool branch is passed through.
FIGURE_5_WIDTHS = {
    "3a": (64, 64, 64, 64, 96, "avg", 32),
    "3b": (64, 64, 96, 64, 96, "avg", 64),
    "3c": (0, 128, 160, 64, 96, "max", 0),
    "4a": (224, 64, 96, 96, 128, "avg", 128),
    "4b": (192, 96, 128, 96, 128, "avg", 128),
    "4c": (160, 128, 160, 128, 160, "avg", 128),
    "4d": (96, 128, 192, 160, 192, "avg", 128),
    "4e": (0, 128, 192, 192, 256, "max", 0),
    "5a": (352, 192, 320, 160, 224, "avg", 128),
    "5b": (352, 192, 320, 192, 224, "max", 128),
}

conv = partial(plain_conv, bias=True)  # Caffe-born: every conv keeps its bias before BN


def module(widths, w: Widths):
    c1, c3r, c3, d3r, d3, pool, proj = widths
    reduce = c1 == 0
    stride = 2 if reduce else 1
    branches = {}
    if not reduce:
        branches["1x1"] = conv(w(c1), 1)
    branches["3x3"] = [conv(w(c3r), 1), conv(w(c3), 3, stride, 1)]
    branches["3x3dbl"] = [conv(w(d3r), 1), conv(w(d3), 3, 1, 1), conv(w(d3), 3, stride, 1)]
    if reduce:
        branches["pool"] = [maxpool(3, 2, ceil_mode=True)]
        return concat(branches, "reduction", FIGURE_5, REDUCTION_IDEA)
    pool_layer = (avgpool(3, 1, 1, ceil_mode=True, count_include_pad=True) if pool == "avg"
                  else maxpool(3, 1, 1, ceil_mode=True))
    branches["pool"] = [pool_layer, conv(w(proj), 1)]
    return concat(branches, "inception", FIGURE_5, IDEA)


def build(cfg: Config) -> NetSpec:
    w = Widths(cfg.width)
    stem = dict(
        conv1=conv(w(64), 7, 2, 3),
        pool1=maxpool(3, 2, ceil_mode=True),
        conv2_reduce=conv(w(64), 1),
        conv2=conv(w(192), 3, 1, 1),
        pool2=maxpool(3, 2, ceil_mode=True),
    )
    stages = {"stem": stage("stem", stem, "stem", FIGURE_5, N_("plain convolutions shrink 224x224 to 28x28"))}
    groups = (("inception_3", "3a 3b"), ("reduction_3", "3c"), ("inception_4", "4a 4b 4c 4d"),
              ("reduction_4", "4e"), ("inception_5", "5a 5b"))
    for stage_name, names in groups:
        blocks = {f"inception_{n}": module(FIGURE_5_WIDTHS[n], w) for n in names.split()}
        kind = "reduction" if stage_name.startswith("reduction") else "stage"
        stages[stage_name] = stage(stage_name, blocks, kind, FIGURE_5,
                                   REDUCTION_IDEA if kind == "reduction" else IDEA)
    dropout = cfg.dropout if cfg.dropout is not None else 0.0
    return network(stages, classifier_head(cfg.num_classes, dropout), eps=1e-5)


def cadene_key_map(cfg: Config) -> list:
    """Cadene's flat Caffe names (``inception_3a_double_3x3_1_bn``) -> ours."""
    rules = [("last_linear", "head.fc", None)]
    for theirs, ours in (("conv1_7x7_s2", "conv1"), ("conv2_3x3_reduce", "conv2_reduce"),
                         ("conv2_3x3", "conv2")):
        rules += [(theirs, f"stem.{ours}.conv", None), (f"{theirs}_bn", f"stem.{ours}.bn", None)]
    parts = {"1x1": "1x1.0", "3x3_reduce": "3x3.0", "3x3": "3x3.1", "double_3x3_reduce": "3x3dbl.0",
             "double_3x3_1": "3x3dbl.1", "double_3x3_2": "3x3dbl.2", "pool_proj": "pool.1"}
    stage_of = {"3a": "inception_3", "3b": "inception_3", "3c": "reduction_3", "4e": "reduction_4",
                "5a": "inception_5", "5b": "inception_5"}
    for n in FIGURE_5_WIDTHS:
        prefix = f"{stage_of.get(n, 'inception_4')}.inception_{n}.branches"
        for theirs, ours in parts.items():
            rules += [(f"inception_{n}_{theirs}", f"{prefix}.{ours}.conv", None),
                      (f"inception_{n}_{theirs}_bn", f"{prefix}.{ours}.bn", None)]
    return rules


LAYOUTS = {
    "released": Layout(
        False, build, min_input_size=31,
        checkpoint_formats={"cadene": cadene_key_map},
        notes=(
            N_("Cadene's port of the Caffe model, which follows the paper's Figure 5: the released "
               "and the paper layout are one network."),
            N_("Convs keep a bias before BN (a Caffe habit that BN makes redundant); BN eps is 1e-5."),
            N_("Pools use ceil mode, so 224 -> 112 -> 56 -> 28 -> 14 -> 7."),
            N_("Its weights expect BGR input in 0-255 minus the mean (104, 117, 128)."),
        )),
}
# the paper's layout is the same network (Figure 5), offered under its own name
LAYOUTS["paper"] = replace(LAYOUTS["released"], paper=True)

VARIANT = VariantInfo(
    "bn_inception", N_("BN-Inception (the v4 paper's Inception-v2)"),
    "Batch Normalization: Accelerating Deep Network Training by Reducing Internal Covariate "
    "Shift", "1502.03167", 2015, 224,
    N_("batch norm everywhere, and the 5x5 branch replaced by two 3x3 convs"), LAYOUTS,
    differences=(N_("none: the public Caffe weights follow Figure 5"),),
    paper_results=(Result(74.8, 92.2, V4_TABLE + " (BN-Inception: 25.2 / 7.8 % error)", "paper"),),
    weights=(
        # converted from Caffe by Cadene (pretrainedmodels)
        WeightsSpec(
            "bn_inception", "imagenet", "cadene",
            # Cadene's pretrainedmodels: Caffe convention, BGR in 0..255 minus the channel means.
            Preprocess(224, 256, "bilinear", (104.0, 117.0, 128.0), (1.0, 1.0, 1.0),
                       channel_order="BGR", value_range=255.0),
            Result(73.524, 91.562, "Cadene pretrainedmodels README (bninception)", "weights"),
            url="http://data.lip6.fr/cadene/pretrainedmodels/bn_inception-52deb4733.pth",
            sha256_prefix="52deb4733"),
    ))
