"""The ResNet baselines: torchvision's resnet50/101/152 and timm's resnetv2_50/101, described in
the NetSpec vocabulary (a bottleneck is a residual block with one branch, scale 1, no implied
expansion, an identity or projection shortcut, and for v2 a pre-activation), checked against the
references with the same (random) weights."""

from __future__ import annotations

import pytest
import torch
from tolerances import LOGIT_ATOL
from torch.utils.flop_counter import FlopCounterMode

import explorer
from explorer.spec.compose import conv, head, layer, network, norm, residual, stage
from explorer.spec.errors import ShapeError
from explorer.spec.netspec import NetSpec
from explorer.spec.walk import walk
from explorer.variants import VARIANTS

REFERENCES = [("torchvision_resnet50", "torchvision"), ("torchvision_resnet101", "torchvision"),
              ("torchvision_resnet152", "torchvision"), ("timm_resnetv2_50", "timm"),
              ("timm_resnetv2_101", "timm")]


@pytest.mark.parametrize("name,fmt", REFERENCES)
def test_reference_checkpoint_loads_by_key_and_gives_its_logits(reference_zoo, name, fmt):
    ref = reference_zoo[name]
    variant, size = ref.spec.variant, ref.spec.input_size
    model = explorer.build(variant, weights=ref.path).eval()
    assert model.checkpoint_format == fmt
    with torch.no_grad():
        out = model(ref.x)
    assert (ref.logits[0] - ref.logits[1]).abs().max() > 1000 * LOGIT_ATOL
    torch.testing.assert_close(out, ref.logits, atol=LOGIT_ATOL, rtol=0)
    # the same parameters, and the walk's MACs are the reference's own FlopCounterMode count
    assert sum(p.numel() for p in model.parameters()) == \
        sum(p.numel() for p in ref.model.parameters())
    with torch.no_grad(), FlopCounterMode(display=False) as flops:
        ref.model(ref.x[:1])
    assert explorer.analyze(variant, input_size=size).total_macs == flops.get_total_flops() // 2


def test_for_inference_folds_the_pre_activation_norms(reference_zoo):
    ref = reference_zoo["timm_resnetv2_50"]
    model = explorer.build("resnetv2_50", weights=ref.path).eval()
    fast = explorer.for_inference(model, engine="torch")
    from explorer.runtime.modules import BNAct
    # every BN inside a bottleneck follows a plain conv: folded; the pre-activations stay
    left = [n for n, m in fast.named_modules() if isinstance(m, BNAct)]
    assert left and all(n.endswith(".pre.0") or n.endswith("head.norm") for n in left)
    scale = max(1.0, ref.logits.abs().max().item())
    torch.testing.assert_close(fast(ref.x), ref.logits, atol=LOGIT_ATOL * scale, rtol=0)


def test_paper_layout_moves_the_stride_to_the_first_1x1():
    released, paper = (explorer.describe("resnet50", lay) for lay in ("released", "paper"))
    first = [released.block("conv3_x.0").branch("bottleneck"), paper.block("conv3_x.0").branch(
        "bottleneck")]
    assert [x.get("stride", 1) for x in first[0]] == [1, 2, 1]
    assert [x.get("stride", 1) for x in first[1]] == [2, 1, 1]
    a, b = (explorer.analyze(s) for s in (released, paper))
    assert a.total_params == b.total_params and b.total_macs < a.total_macs  # 1x1 on 28x28


def test_projection_shortcuts_only_where_the_shape_changes():
    spec = explorer.describe("resnet101")
    projected = [f"{s.name}.{n}" for s in spec.stages[1:] for n, b in s.blocks if b.shortcut]
    assert projected == ["conv2_x.0", "conv3_x.0", "conv4_x.0", "conv5_x.0"]
    assert [len(s.blocks) for s in spec.stages[1:]] == [3, 4, 23, 3]


def test_configuration_options_apply():
    spec = explorer.describe("resnet50", width=0.5, repeats=(1, 1, 2, 1), num_classes=10,
                             input_size=96)
    t = walk(spec)
    assert t.nodes["head.fc"].out_shape == (10,)
    assert t.nodes["conv5_x"].out_shape == (1024, 3, 3)
    assert [len(s.blocks) for s in spec.stages[1:]] == [1, 1, 2, 1]
    with pytest.raises(explorer.ConfigError, match="scale applies to residual blocks"):
        explorer.describe("resnet50", scale=0.2)
    with pytest.raises(explorer.ConfigError, match="auxiliary head"):
        explorer.describe("resnetv2_50", aux_logits=True)


def _tiny(block) -> NetSpec:
    return network({"stem": stage("stem", [conv(16, 3, padding=1)], "stem"),
                    "body": stage("body", [block], "stage")},
                   head({"pool": layer("adaptive_avgpool", size=1), "flatten": layer("flatten"),
                         "fc": layer("linear", out=3)}))


def test_a_bottleneck_whose_channels_do_not_add_up_is_refused_by_name():
    bad = residual({"b": [conv(8, 1), conv(32, 1, act=False)]}, 1.0, expand=False)
    with pytest.raises(ShapeError, match=r"stage body, block 0: the branches give 32 channels "
                                         r"but the shortcut needs 16.*projection shortcut"):
        walk(_tiny(bad))
    strided = residual({"b": [conv(8, 3, 2, 1), conv(16, 1, act=False)]}, 1.0, expand=False)
    with pytest.raises(ShapeError, match="a residual add needs the grid unchanged"):
        walk(_tiny(strided))
    fixed = residual({"b": [conv(8, 3, 2, 1), conv(32, 1, act=False)]}, 1.0, expand=False,
                     shortcut=[conv(32, 1, 2, act=False)], pre=[norm()])
    assert walk(_tiny(fixed), 32).nodes["body.0"].out_shape == (32, 16, 16)


def test_bottleneck_json_round_trip_and_hostile_fields():
    spec = explorer.describe("resnetv2_50", repeats=(1, 1, 1, 1), width=0.25)
    again = NetSpec.from_json(spec.to_json())
    assert again == spec
    d = spec.to_dict()
    d["stages"]["conv2_x"]["blocks"]["0"]["shortcut"] = {"op": "conv"}
    with pytest.raises(explorer.ConfigError, match="block 0: shortcut must be a list of layers"):
        NetSpec.from_dict(d)
    d["stages"]["conv2_x"]["blocks"]["0"]["shortcut"] = [{"op": "conv", "out": 8}]
    with pytest.raises(explorer.ConfigError, match="shortcut layer 0: conv needs kernel"):
        NetSpec.from_dict(d)


def test_each_resnet_states_its_weights_and_sources():
    for name in ("resnet50", "resnet101", "resnet152"):
        tags = [w.tag for w in VARIANTS[name].weights]
        assert tags == ["IMAGENET1K_V2", "IMAGENET1K_V1"]  # torchvision's DEFAULT first
        v2, v1 = VARIANTS[name].weights
        assert (v1.preprocess.resize_size, v2.preprocess.resize_size) == (256, 232)
        assert v1.url.startswith("https://download.pytorch.org/models/" + name)
        assert VARIANTS[name].paper_results[0].source.startswith("ResNet paper")
    for name in ("resnetv2_50", "resnetv2_101"):
        (w,) = VARIANTS[name].weights
        assert w.hub_id == f"timm/{name}.a1h_in1k"
        assert w.preprocess.interpolation == "bicubic" and w.preprocess.mean == (0.5,) * 3


def test_design_bench_starts_from_a_bottleneck_and_toggles_its_parts():
    from explorer.analysis import design as d

    name = "inception_resnet_a.0"
    channels = d.block_input_channels("inception_resnet_v2", "released", name)
    start = d.bottleneck_block(channels)
    bench = d.bench_of("inception_resnet_v2", "released", name, start)
    designed, original = bench.block["designed"], bench.block["original"]
    assert designed.out_shape == original.out_shape  # it fits in place
    assert designed.params < original.params
    # the expansion back on: a linear 1x1 after the bottleneck's last conv, more weights
    expanded = d.bench_of("inception_resnet_v2", "released", name, d.set_expand(start, True))
    assert expanded.block["designed"].params == designed.params + channels * channels + channels
    # a stride in the branch needs a projection, which takes the branch's stride and channels
    strided = d.change_layer(start, "bottleneck", 1, stride=2)
    with pytest.raises(ShapeError, match="projection shortcut"):
        d.bench_of("inception_resnet_v2", "released", name, strided)
    projected = d.set_projection(strided, True)
    assert projected.shortcut[0]["stride"] in (2, (2, 2)) and projected.shortcut[0]["out"] == channels
    # residual off drops the shortcut's parts; the URL value round-trips the block
    assert d.set_residual(projected, False).shortcut == ()
    assert d.decode(d.encode(projected)) == projected
    # the Lab's width scales the projection too
    assert d.scaled(projected, 0.5).shortcut[0]["out"] == round(channels * 0.5)


def test_lab_races_a_resnet_of_the_same_cost():
    from explorer.lab.config import LAB_INPUT_SIZE, network_macs, same_cost_width
    from explorer.lab.present import network_choices, parse_network

    assert "resnet50:cost=inception_resnet_v1" in network_choices()
    cfg = parse_network("resnet50:cost=inception_resnet_v1", width=0.25).resolved()
    assert cfg.input_size == LAB_INPUT_SIZE and cfg.resolved() == cfg
    ours, theirs = (network_macs(v, w, LAB_INPUT_SIZE) for v, w in
                    (("resnet50", cfg.width), ("inception_resnet_v1", 0.25)))
    assert abs(ours - theirs) / theirs < 0.02
    # one step of width either way is further from the target
    for w in (cfg.width - 0.01, cfg.width + 0.01):
        assert abs(network_macs("resnet50", w, LAB_INPUT_SIZE) - theirs) > abs(ours - theirs)
    assert "MACs of inception_resnet_v1 at 0.25" in cfg.label()
    with pytest.raises(explorer.ConfigError, match="VARIANT@WIDTH"):
        same_cost_width("resnet50", "inception_resnet_v1")
