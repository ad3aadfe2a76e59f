"""The model zoo: every variant and layout builds and runs; configs change what they should;
input sizes and bad configs are refused with useful messages; parameter counts and per-block
figures match the published / reference numbers in shared/REFERENCE.md and the papers."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from explorer import VARIANTS, ConfigError, build, list_variants
from explorer.runtime.modules import Concat, InceptionNet, InceptionOutputs, Residual
from explorer.weights.formats import WeightsError

ALL_LAYOUTS = [(v, lay) for v, info in VARIANTS.items() for lay in info.layouts]
WITH_AUX = [(v, lay) for v, lay in ALL_LAYOUTS if VARIANTS[v].layouts[lay].has_aux]
RESIDUAL = [(v, lay) for v in ("inception_resnet_v1", "inception_resnet_v2")
            for lay in VARIANTS[v].layouts]
REPEATABLE = [(v, lay) for v in ("inception_v4", "inception_resnet_v1", "inception_resnet_v2")
              for lay in VARIANTS[v].layouts]
# how many aux heads a layout with aux_logits=True has, and where they read from
GOOGLENET_TAPS = {"inception_4.inception_4a": "aux1", "inception_4.inception_4d": "aux2"}
AUX_TAPS = {
    ("googlenet", "released"): GOOGLENET_TAPS,
    ("googlenet", "paper"): GOOGLENET_TAPS,
    ("inception_v3", "released"): {"inception_b.mixed_6e": "aux"},  # after the last 17x17 module
    ("inception_v3", "paper"): {"inception_b.4": "aux"},
    ("inception_v2", "paper"): {"inception_b.4": "aux"},
}


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def native(variant: str) -> int:
    return VARIANTS[variant].native_input_size


def meta_batch(size: int) -> torch.Tensor:
    return torch.empty(2, 3, size, size, device="meta")


def runs(model: nn.Module, size: int) -> bool:
    """Whether a (2, 3, size, size) meta batch flows through ``model``."""
    try:
        with torch.no_grad():
            model(meta_batch(size))
    except RuntimeError:
        return False
    return True


def residual_blocks(stage: nn.Sequential) -> list[Residual]:
    return [b for b in stage if isinstance(b, Residual)]


# ---------------------------------------------------------------------------------------------
# Every variant and layout builds


def test_list_variants_is_the_registry():
    assert list_variants() == list(VARIANTS)
    assert set(list_variants()) == {"googlenet", "bn_inception", "inception_v2", "inception_v3",
                                    "inception_v4", "inception_resnet_v1", "inception_resnet_v2",
                                    "resnet50", "resnet101", "resnet152", "resnetv2_50",
                                    "resnetv2_101"}


@pytest.mark.parametrize("variant,layout", ALL_LAYOUTS)
def test_builds_on_meta_and_maps_native_batch_to_logits(variant, layout):
    model = build(variant, layout=layout, device="meta")
    assert isinstance(model, InceptionNet)
    assert not model.training, "build returns an eval-mode model"
    assert model.variant == variant and model.layout == layout
    assert all(p.device.type == "meta" for p in model.parameters())
    assert model.stage_names and model.stage_names[0] == "stem"
    for name in model.stage_names:
        assert isinstance(getattr(model, name), nn.Sequential) and len(getattr(model, name)) >= 1
    with torch.no_grad():
        out = model(meta_batch(native(variant)))
    assert isinstance(out, torch.Tensor) and tuple(out.shape) == (2, 1000)


@pytest.mark.parametrize("variant,layout", ALL_LAYOUTS)
def test_cpu_forward_at_native_size_quarter_width(variant, layout):
    torch.manual_seed(0)
    model = build(variant, layout=layout, width=0.25)
    assert all(p.device.type == "cpu" for p in model.parameters())
    size = native(variant)
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        out = model(x)
    assert out.shape == (2, 1000) and out.dtype == torch.float32
    assert torch.isfinite(out).all()


def test_googlenet_full_width_cpu_forward():
    torch.manual_seed(0)
    model = build("googlenet")
    assert count_params(model) == 6_624_904
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        first, second = model(x), model(x)
    assert first.shape == (2, 1000) and torch.isfinite(first).all()
    assert torch.equal(first, second), "eval mode must be deterministic (dropout off)"
    assert not torch.allclose(first[0], first[1]), "different images, different logits"


# ---------------------------------------------------------------------------------------------
# Configs change shapes and counts as they should


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_num_classes_changes_the_classifier(variant):
    ref = build(variant, device="meta")
    model = build(variant, num_classes=7, device="meta")
    assert model.head.fc.out_features == 7
    assert model.head.fc.in_features == ref.head.fc.in_features
    assert count_params(ref) - count_params(model) == (1000 - 7) * (ref.head.fc.in_features + 1)
    with torch.no_grad():
        assert tuple(model(meta_batch(native(variant))).shape) == (2, 7)


@pytest.mark.parametrize("variant,layout", ALL_LAYOUTS)
def test_half_width_roughly_quarters_the_parameters(variant, layout):
    full = count_params(build(variant, layout=layout, device="meta"))
    half_model = build(variant, layout=layout, width=0.5, device="meta")
    half = count_params(half_model)
    # conv weights scale with width squared; the classifier only linearly
    assert 0.2 * full < half < 0.35 * full
    with torch.no_grad():
        assert tuple(half_model(meta_batch(native(variant))).shape) == (2, 1000)


@pytest.mark.parametrize("variant,layout", REPEATABLE)
def test_repeats_set_the_number_of_blocks(variant, layout):
    lay = VARIANTS[variant].layouts[layout]
    # the released Inception-ResNets end with one extra, unscaled C block that is not repeated
    extra_c = 1 if variant.startswith("inception_resnet") and layout == "released" else 0
    ref = build(variant, layout=layout, device="meta")
    assert [len(getattr(ref, s)) for s in lay.repeat_stages] == \
        [lay.repeats[0], lay.repeats[1], lay.repeats[2] + extra_c]

    small = build(variant, layout=layout, repeats=(1, 1, 1), device="meta")
    assert [len(getattr(small, s)) for s in lay.repeat_stages] == [1, 1, 1 + extra_c]
    assert count_params(small) < count_params(ref)
    # the non-repeated stages are untouched
    for s in ref.stage_names:
        if s not in lay.repeat_stages:
            assert count_params(getattr(small, s)) == count_params(getattr(ref, s))
    with torch.no_grad():
        assert tuple(small(meta_batch(native(variant))).shape) == (2, 1000)

    other = build(variant, layout=layout, repeats=[2, 3, 4], device="meta")  # lists are accepted
    assert [len(getattr(other, s)) for s in lay.repeat_stages] == [2, 3, 4 + extra_c]


@pytest.mark.parametrize("variant,layout", RESIDUAL)
def test_scale_sets_the_residual_scales(variant, layout):
    stages = ("inception_resnet_a", "inception_resnet_b", "inception_resnet_c")

    def scales(model):
        return [[b.scale for b in residual_blocks(getattr(model, s))] for s in stages]

    released = layout == "released"

    def expected(a, b, c):
        n = VARIANTS[variant].layouts[layout].repeats
        # the released final C block is unscaled (1.0) and has no ReLU
        return [[a] * n[0], [b] * n[1], [c] * n[2] + ([1.0] if released else [])]

    ref = build(variant, layout=layout, device="meta")
    assert scales(ref) == expected(0.17, 0.10, 0.20)
    assert scales(build(variant, layout=layout, scale=0.3, device="meta")) == expected(0.3, 0.3, 0.3)
    assert scales(build(variant, layout=layout, scale=(0.1, 0.2, 0.3), device="meta")) == \
        expected(0.1, 0.2, 0.3)
    last = ref.inception_resnet_c[-1]
    assert (last.act is None) == released
    assert all(b.act is not None for b in residual_blocks(ref.inception_resnet_a))


def test_scale_changes_the_computation():
    torch.manual_seed(0)
    x = torch.randn(1, 3, 75, 75)
    a = build("inception_resnet_v2", width=0.25, repeats=(1, 1, 1))
    b = build("inception_resnet_v2", width=0.25, repeats=(1, 1, 1), scale=0.3)
    b.load_state_dict(a.state_dict())
    with torch.no_grad():
        assert not torch.allclose(a(x), b(x))


@pytest.mark.parametrize("variant,layout", ALL_LAYOUTS)
def test_dropout_sets_the_head_dropout(variant, layout):
    lay = VARIANTS[variant].layouts[layout]
    ref = build(variant, layout=layout, device="meta")
    assert isinstance(ref.head.dropout, nn.Dropout)
    assert ref.head.dropout.p == pytest.approx(lay.dropout)
    assert build(variant, layout=layout, dropout=0.3, device="meta").head.dropout.p == \
        pytest.approx(0.3)
    assert build(variant, layout=layout, dropout=0, device="meta").head.dropout.p == 0


def test_reference_dropouts():
    expected = {("googlenet", "released"): 0.2, ("googlenet", "paper"): 0.4,
                ("inception_v3", "released"): 0.5, ("inception_v4", "released"): 0.2,
                ("inception_resnet_v1", "released"): 0.6, ("inception_resnet_v2", "released"): 0.2}
    for (variant, layout), p in expected.items():
        assert build(variant, layout=layout, device="meta").head.dropout.p == pytest.approx(p)


@pytest.mark.parametrize("variant,layout", WITH_AUX)
def test_aux_logits_in_train_mode(variant, layout):
    heads = {"googlenet": 2}.get(variant, 1)
    model = build(variant, layout=layout, aux_logits=True, num_classes=10, device="meta")
    assert len(model.aux_taps) == heads
    assert model.aux_taps == AUX_TAPS[variant, layout]
    size = native(variant)
    with torch.no_grad():
        assert tuple(model(meta_batch(size)).shape) == (2, 10), "no aux outputs in eval mode"
        out = model.train()(meta_batch(size))
    assert isinstance(out, InceptionOutputs)
    assert tuple(out.logits.shape) == (2, 10)
    assert len(out.aux_logits) == heads
    assert all(tuple(a.shape) == (2, 10) for a in out.aux_logits)
    # without aux heads, train mode returns plain logits
    plain = build(variant, layout=layout, num_classes=10, device="meta").train()
    assert not any(name.startswith("aux") for name, _ in plain.named_children())
    with torch.no_grad():
        out = plain(meta_batch(size))
    assert isinstance(out, torch.Tensor) and tuple(out.shape) == (2, 10)


def test_aux_heads_on_cpu_return_finite_logits():
    torch.manual_seed(0)
    model = build("googlenet", aux_logits=True, num_classes=5, width=0.25).train()
    out = model(torch.randn(2, 3, 224, 224))
    assert tuple(out.logits.shape) == (2, 5) and len(out.aux_logits) == 2
    assert all(torch.isfinite(a).all() and a.shape == (2, 5) for a in out.aux_logits)


# ---------------------------------------------------------------------------------------------
# Input sizes


@pytest.mark.parametrize("variant,layout", ALL_LAYOUTS)
def test_below_minimum_input_size_is_refused(variant, layout):
    minimum = VARIANTS[variant].layouts[layout].min_input_size
    with pytest.raises(ConfigError, match=rf"minimum of {minimum}x{minimum}\b"):
        build(variant, layout=layout, input_size=minimum - 1, device="meta")
    assert build(variant, layout=layout, input_size=minimum, device="meta").config.input_size == minimum


@pytest.mark.parametrize("variant,layout", ALL_LAYOUTS)
def test_recorded_minimum_is_the_true_minimum(variant, layout):
    minimum = VARIANTS[variant].layouts[layout].min_input_size
    model = build(variant, layout=layout, device="meta")
    with torch.no_grad():
        assert tuple(model(meta_batch(minimum)).shape) == (2, 1000)
    with pytest.raises(RuntimeError):
        with torch.no_grad():
            model(meta_batch(minimum - 1))


@pytest.mark.parametrize("variant,layout", WITH_AUX)
def test_recorded_aux_minimum_is_the_true_minimum(variant, layout):
    lay = VARIANTS[variant].layouts[layout]
    minimum = max(lay.min_input_size, lay.min_input_size_aux or 0)
    model = build(variant, layout=layout, aux_logits=True, device="meta").train()
    with torch.no_grad():
        out = model(meta_batch(minimum))
    assert all(tuple(a.shape) == (2, 1000) for a in (out.logits, *out.aux_logits))
    assert not runs(model, minimum - 1)
    extra = " with the auxiliary head" if lay.min_input_size_aux else ""
    with pytest.raises(ConfigError, match=rf"minimum of {minimum}x{minimum}{extra}"):
        build(variant, layout=layout, aux_logits=True, input_size=minimum - 1, device="meta")
    assert build(variant, layout=layout, aux_logits=True, input_size=minimum,
                 device="meta").config.input_size == minimum


def test_aux_minimum_differs_where_the_aux_head_needs_more():
    # the v3 aux head (5x5/3 pool, then a 5x5 conv) needs a 17x17 map, i.e. a 299 input
    v3 = VARIANTS["inception_v3"].layouts["released"]
    assert v3.min_input_size == 75 and v3.min_input_size_aux == 299
    assert build("inception_v3", input_size=75, device="meta").config.input_size == 75
    with pytest.raises(ConfigError, match="299x299 with the auxiliary head"):
        build("inception_v3", aux_logits=True, input_size=298, device="meta")


def test_bn_inception_sizes_that_do_not_fit_name_the_nearest_that_do():
    layout = VARIANTS["bn_inception"].layouts["released"]
    model = build("bn_inception", device="meta")
    assert runs(model, 224)
    # its stride-2 modules (conv 3x3/2 pad 1 beside a ceil-mode pool) need even grids,
    # so some sizes above the minimum do not fit: find the first
    bad = next(s for s in range(layout.min_input_size, 400) if not runs(model, s))
    assert bad > layout.min_input_size
    with pytest.raises(ConfigError, match="does not fit") as err:
        build("bn_inception", input_size=bad, device="meta")
    found = re.search(r"Nearest sizes that fit: (\d+), (\d+)", str(err.value))
    assert found, str(err.value)
    below, above = int(found.group(1)), int(found.group(2))
    assert below < bad < above
    assert runs(model, below) and runs(model, above)
    assert not any(runs(model, s) for s in range(below + 1, above)), "not the nearest sizes"
    assert build("bn_inception", input_size=below, device="meta").config.input_size == below


def test_input_size_bounds_and_type():
    with pytest.raises(ConfigError, match="above the limit of 2048"):
        build("googlenet", input_size=4096, device="meta")
    with pytest.raises(ConfigError, match="input_size must be an integer"):
        build("googlenet", input_size="224", device="meta")
    assert build("inception_v3", input_size=512, device="meta").config.input_size == 512


# ---------------------------------------------------------------------------------------------
# Bad configs


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)
    assert issubclass(WeightsError, ValueError)


def test_unknown_variant_lists_the_variants():
    with pytest.raises(ConfigError, match="unknown variant 'inception_v9'") as err:
        build("inception_v9", device="meta")
    for name in VARIANTS:
        assert name in str(err.value)


def test_unknown_layout_lists_the_offered_ones():
    with pytest.raises(ConfigError, match=r"inception_v3 has no layout 'tf'; it offers: "
                                          r"released, paper"):
        build("inception_v3", layout="tf", device="meta")
    with pytest.raises(ConfigError, match=r"it offers: paper$"):
        build("inception_v2", layout="tf", device="meta")


BAD_CONFIGS = [
    ("googlenet", dict(width=-0.5), r"width must be a number in \(0, 4.0\].*got -0.5"),
    ("googlenet", dict(width=0), r"width must be"),
    ("googlenet", dict(width=8), r"width must be"),
    ("googlenet", dict(repeats=(1, 1, 1)),
     r"repeats is not offered for googlenet.*inception_v4, inception_resnet_v1"),
    ("inception_v3", dict(repeats=(1, 1, 1)), r"repeats is not offered for inception_v3"),
    ("inception_v4", dict(repeats=(1, 1)), r"repeats must be 3 integers.*reference is \(4, 7, 3\)"),
    ("inception_resnet_v2", dict(repeats=(0, 1, 1)), r"repeats must be 3 integers"),
    ("inception_v4", dict(scale=0.2),
     r"scale applies to residual blocks; inception_v4 has none.*inception_resnet_v1"),
    ("inception_resnet_v2", dict(scale=1.5), r"scale must be a number in \(0, 1\]"),
    ("inception_resnet_v2", dict(scale=(0.1, 0.2)), r"scale must be"),
    ("inception_v4", dict(aux_logits=True),
     r"inception_v4 \(released layout\) has no auxiliary head; use aux_logits=False"),
    ("bn_inception", dict(aux_logits=True), r"bn_inception .* has no auxiliary head"),
    ("inception_resnet_v2", dict(aux_logits=True), r"has no auxiliary head"),
    ("googlenet", dict(depth=3), r"unknown option\(s\) depth; the options are: .*width"),
    ("googlenet", dict(device="tpu"), r"unknown device 'tpu'; choose one of: cpu, cuda, meta"),
    ("googlenet", dict(device="not a device"), r"unknown device"),
    ("googlenet", dict(num_classes=0), r"num_classes must be an integer from 1"),
    ("googlenet", dict(num_classes=2.5), r"num_classes must be an integer"),
    ("googlenet", dict(dropout=1.0), r"dropout must be a probability in \[0, 1\)"),
    ("googlenet", dict(dropout=-0.1), r"dropout must be"),
]


@pytest.mark.parametrize("variant,kwargs,message", BAD_CONFIGS,
                         ids=[f"{v}-{'-'.join(k)}" for v, k, _ in BAD_CONFIGS])
def test_bad_configs_are_refused_with_a_useful_message(variant, kwargs, message):
    kwargs = {"device": "meta", **kwargs}
    with pytest.raises(ConfigError, match=message):
        build(variant, **kwargs)


def test_inception_v2_has_only_the_paper_layout_and_builds_by_default():
    assert list(VARIANTS["inception_v2"].layouts) == ["paper"]
    model = build("inception_v2", device="meta")
    assert model.layout == "paper"
    with torch.no_grad():
        assert tuple(model(meta_batch(299)).shape) == (2, 1000)
    # v2's stem starts with one 7x7/2 conv (not yet factorized into three 3x3 convs, as in v3)
    assert model.stem.conv_1.conv.kernel_size == (7, 7)


# ---------------------------------------------------------------------------------------------
# Exact parameter counts of the released layouts (shared/REFERENCE.md)


@pytest.mark.parametrize("variant,kwargs,params", [
    ("googlenet", {}, 6_624_904),
    ("googlenet", {"aux_logits": True}, 13_004_888),
    ("inception_v3", {}, 23_834_568),
    ("inception_v3", {"aux_logits": True}, 27_161_264),
    ("inception_v4", {}, 42_679_816),
    ("inception_resnet_v2", {}, 55_843_464),
    ("bn_inception", {}, 11_295_240),
])
def test_released_parameter_counts(variant, kwargs, params):
    assert count_params(build(variant, device="meta", **kwargs)) == params


def test_inception_resnet_v1_released_trunk_and_embedding():
    model = build("inception_resnet_v1", device="meta")
    assert model.head.fc.in_features == 512  # facenet's 512-d embedding feeds the classifier
    assert model.head.last_linear.out_features == 512
    assert count_params(model) - count_params(model.head.fc) == 23_482_624


# ---------------------------------------------------------------------------------------------
# Golden per-block figures (shared/REFERENCE.md): (path, output C x H x W or None, params)

V3_GOLDEN = [
    ("stem.conv_1a", (32, 149, 149), 928),
    ("stem.conv_2a", (32, 147, 147), 9_280),
    ("stem.conv_2b", (64, 147, 147), 18_560),
    ("stem.conv_3b", (80, 73, 73), 5_280),
    ("stem.conv_4a", (192, 71, 71), 138_624),
    ("inception_a.mixed_5b", (256, 35, 35), 255_904),
    ("inception_a.mixed_5c", (288, 35, 35), 277_472),
    ("inception_a.mixed_5d", (288, 35, 35), 285_152),
    ("reduction_a.mixed_6a", (768, 17, 17), 1_153_280),
    ("inception_b.mixed_6b", (768, 17, 17), 1_297_408),
    ("inception_b.mixed_6c", (768, 17, 17), 1_691_008),
    ("inception_b.mixed_6d", (768, 17, 17), 1_691_008),
    ("inception_b.mixed_6e", (768, 17, 17), 2_141_952),
    ("aux", None, 3_326_696),
    ("reduction_b.mixed_7a", (1280, 8, 8), 1_698_304),
    ("inception_c.mixed_7b", (2048, 8, 8), 5_044_608),
    ("inception_c.mixed_7c", (2048, 8, 8), 6_076_800),
    ("head.fc", (1000,), 2_049_000),
]

V4_GOLDEN = (
    [("stem.conv_1a", (32, 149, 149), 928), ("stem.conv_2a", (32, 147, 147), 9_280),
     ("stem.conv_2b", (64, 147, 147), 18_560), ("stem.mixed_3a", (160, 73, 73), 55_488),
     ("stem.mixed_4a", (192, 71, 71), 189_312), ("stem.mixed_5a", (384, 35, 35), 332_160)]
    + [(f"inception_a.{i}", (384, 35, 35), 317_632) for i in range(4)]
    + [("reduction_a.0", (1024, 17, 17), 2_306_112)]
    + [(f"inception_b.{i}", (1024, 17, 17), 2_936_256) for i in range(7)]
    + [("reduction_b.0", (1536, 8, 8), 2_747_392)]
    + [(f"inception_c.{i}", (1536, 8, 8), 4_553_088) for i in range(3)]
    + [("head.fc", (1000,), 1_537_000)]
)

GOOGLENET_GOLDEN = [
    ("stem.conv1", (64, 112, 112), 9_536),
    ("stem.conv2", (64, 56, 56), 4_224),
    ("stem.conv3", (192, 56, 56), 110_976),
    ("inception_3.inception_3a", (256, 28, 28), 155_872),
    ("inception_3.inception_3b", (480, 28, 28), 340_224),
    ("inception_4.inception_4a", (512, 14, 14), 364_512),
    ("inception_4.inception_4b", (512, 14, 14), 425_232),
    ("inception_4.inception_4c", (512, 14, 14), 486_192),
    ("inception_4.inception_4d", (528, 14, 14), 573_312),
    ("inception_4.inception_4e", (832, 14, 14), 803_840),
    ("inception_5.inception_5a", (832, 7, 7), 978_944),
    ("inception_5.inception_5b", (1024, 7, 7), 1_347_040),
    ("head.fc", (1000,), 1_025_000),
]


def _check_golden(model, size, golden, meta_forward_shapes):
    shapes = meta_forward_shapes(model, size, [p for p, shape, _ in golden if shape])
    for path, shape, params in golden:
        module = model.get_submodule(path)
        assert count_params(module) == params, path
        if shape:
            assert shapes[path] == shape, path


def test_golden_torchvision_inception_v3(meta_forward_shapes):
    model = build("inception_v3", aux_logits=True, device="meta")
    _check_golden(model, 299, V3_GOLDEN, meta_forward_shapes)


def test_golden_timm_inception_v4(meta_forward_shapes):
    model = build("inception_v4", device="meta")
    _check_golden(model, 299, V4_GOLDEN, meta_forward_shapes)
    assert len(model.inception_a) == 4 and len(model.inception_b) == 7 and len(model.inception_c) == 3


def test_golden_timm_inception_resnet_v2(meta_forward_shapes):
    model = build("inception_resnet_v2", device="meta")
    shapes = meta_forward_shapes(model, 299, ["stem.mixed_5b", "inception_resnet_a", "reduction_a.0",
                                              "inception_resnet_b", "reduction_b.0",
                                              "inception_resnet_c", "head.conv_7b"])
    assert shapes["stem.mixed_5b"] == (320, 35, 35)
    assert count_params(model.stem.mixed_5b) == 268_320
    assert len(model.inception_resnet_a) == 10 and shapes["inception_resnet_a"] == (320, 35, 35)
    assert count_params(model.inception_resnet_a) == 1_231_680
    assert shapes["reduction_a.0"] == (1088, 17, 17)
    assert count_params(model.reduction_a[0]) == 2_664_960
    assert len(model.inception_resnet_b) == 20 and shapes["inception_resnet_b"] == (1088, 17, 17)
    assert count_params(model.inception_resnet_b) == 22_535_680
    assert shapes["reduction_b.0"] == (2080, 8, 8)
    assert count_params(model.reduction_b[0]) == 3_880_960
    c = model.inception_resnet_c
    assert len(c) == 10 and shapes["inception_resnet_c"] == (2080, 8, 8)
    assert sum(count_params(b) for b in list(c)[:9]) == 18_318_816
    assert count_params(c[9]) == 2_035_424
    assert shapes["head.conv_7b"] == (1536, 8, 8)
    assert count_params(model.head.conv_7b) == 3_197_952
    assert count_params(model.head.fc) == 1_537_000


def test_golden_torchvision_googlenet(meta_forward_shapes):
    model = build("googlenet", device="meta")
    _check_golden(model, 224, GOOGLENET_GOLDEN, meta_forward_shapes)
    # output widths 256/480 @28, 512/512/512/528/832 @14, 832/1024 @7
    widths = [shape for path, shape, _ in GOOGLENET_GOLDEN if path.startswith("inception_")]
    assert [w[0] for w in widths] == [256, 480, 512, 512, 512, 528, 832, 832, 1024]
    assert [w[1] for w in widths] == [28, 28, 14, 14, 14, 14, 14, 7, 7]


# ---------------------------------------------------------------------------------------------
# Paper layouts

# Going Deeper, Table 1, "params" column, in K = 1024 weights (the paper counts weights only)
GOOGLENET_TABLE_1_PARAMS_K = {"3a": 159, "3b": 380, "4a": 364, "4b": 437, "4c": 463, "4d": 580,
                              "4e": 840, "5a": 1072, "5b": 1388}
# The same table's filter columns (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj) and
# each module's input channels, for counting the weights by hand.
GOOGLENET_TABLE_1_FILTERS = {
    "3a": (192, 64, 96, 128, 16, 32, 32), "3b": (256, 128, 128, 192, 32, 96, 64),
    "4a": (480, 192, 96, 208, 16, 48, 64), "4b": (512, 160, 112, 224, 24, 64, 64),
    "4c": (512, 128, 128, 256, 24, 64, 64), "4d": (512, 112, 144, 288, 32, 64, 64),
    "4e": (528, 256, 160, 320, 32, 128, 128), "5a": (832, 256, 160, 320, 32, 128, 128),
    "5b": (832, 384, 192, 384, 48, 128, 128),
}
# The printed params of 4c and 5a disagree with the printed filter counts (463K vs 497.5K,
# 1072K vs 1018K): misprints in the paper. Those two are checked against the filter columns.
TABLE_1_PARAM_MISPRINTS = {"4c", "5a"}
TABLE_1_TOLERANCE = 0.03


def conv_weights(module: nn.Module) -> int:
    return sum(m.weight.numel() for m in module.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))


def table_1_weights(name: str) -> int:
    cin, c1, c3r, c3, c5r, c5, pp = GOOGLENET_TABLE_1_FILTERS[name]
    return cin * c1 + cin * c3r + 9 * c3r * c3 + cin * c5r + 25 * c5r * c5 + cin * pp


def test_googlenet_paper_layout_matches_table_1_params():
    model = build("googlenet", layout="paper", device="meta")
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules()), "no BN in the paper"
    assert sum(isinstance(m, nn.LocalResponseNorm) for m in model.modules()) == 2
    # Table 1's "conv2" row is the 1x1 reduce + the 3x3 conv: 112K
    assert (conv_weights(model.stem.conv2) + conv_weights(model.stem.conv3)) / 1024 == \
        pytest.approx(112, rel=TABLE_1_TOLERANCE)
    assert conv_weights(model.head.fc) / 1024 == pytest.approx(1000, rel=TABLE_1_TOLERANCE)
    for name, paper_k in GOOGLENET_TABLE_1_PARAMS_K.items():
        block = getattr(getattr(model, f"inception_{name[0]}"), f"inception_{name}")
        ours = conv_weights(block)
        assert ours == table_1_weights(name), name
        if name in TABLE_1_PARAM_MISPRINTS:
            assert abs(ours / 1024 / paper_k - 1) > TABLE_1_TOLERANCE, \
                f"{name} now agrees with the printed value: revisit the misprint list"
        else:
            assert ours / 1024 == pytest.approx(paper_k, rel=TABLE_1_TOLERANCE), name


def test_googlenet_paper_conv1_misprint_is_recorded():
    model = build("googlenet", layout="paper", device="meta")
    assert conv_weights(model.stem.conv1) == 7 * 7 * 3 * 64 == 9408
    notes = VARIANTS["googlenet"].layouts["paper"].notes
    assert any("2.7K" in n and "conv1" in n and "misprint" in n for n in notes)


def test_googlenet_paper_five_by_five_branch_is_5x5_released_is_3x3():
    paper = build("googlenet", layout="paper", device="meta")
    released = build("googlenet", device="meta")
    for model, k in ((paper, 5), (released, 3)):
        modules = [b for s in ("inception_3", "inception_4", "inception_5")
                   for b in getattr(model, s)]
        assert len(modules) == 9
        for module in modules:
            assert module.branches["5x5"][1].conv.kernel_size == (k, k)
    assert any("5x5" in n and "3x3" in n for n in VARIANTS["googlenet"].layouts["released"].notes)


@pytest.mark.parametrize("variant,klmn", [
    ("inception_v4", (192, 224, 256, 384)),
    ("inception_resnet_v1", (192, 192, 256, 384)),
    ("inception_resnet_v2", (256, 256, 384, 384)),
])
@pytest.mark.parametrize("layout", ["released", "paper"])
def test_reduction_a_filter_banks(variant, klmn, layout):
    block = build(variant, layout=layout, device="meta").reduction_a[0]
    k, l, m = (conv.conv.out_channels for conv in block.branches["3x3dbl"])
    n = block.branches["3x3"][0].conv.out_channels
    assert (k, l, m, n) == klmn


def test_inception_resnet_v2_paper_layout(meta_forward_shapes):
    model = build("inception_resnet_v2", layout="paper", device="meta")
    stages = ("inception_resnet_a", "inception_resnet_b", "inception_resnet_c")
    assert [len(getattr(model, s)) for s in stages] == [5, 10, 5]
    shapes = meta_forward_shapes(model, 299, ["stem"] + list(stages))
    assert shapes["stem"] == (384, 35, 35)  # the Inception-v4 stem
    for stage_name, width, grid in zip(stages, (384, 1152, 2144), (35, 17, 8)):
        assert shapes[stage_name] == (width, grid, grid)
        assert all(b.up.out_channels == width for b in getattr(model, stage_name))
        assert all(b.act is not None for b in getattr(model, stage_name))
    assert any("1154" in n for n in VARIANTS["inception_resnet_v2"].layouts["paper"].notes)
    assert not hasattr(model.head, "conv_7b")


def test_inception_resnet_v2_released_widths(meta_forward_shapes):
    model = build("inception_resnet_v2", device="meta")
    for stage_name, width in zip(("inception_resnet_a", "inception_resnet_b",
                                  "inception_resnet_c"), (320, 1088, 2080)):
        assert all(b.up.out_channels == width for b in getattr(model, stage_name))


def test_inception_v3_paper_layout_follows_table_1(meta_forward_shapes):
    model = build("inception_v3", layout="paper", device="meta")
    assert [len(getattr(model, s)) for s in ("inception_a", "inception_b", "inception_c")] == [3, 5, 2]
    shapes = meta_forward_shapes(model, 299, ["stem", "inception_a", "inception_b", "inception_c"])
    assert shapes == {"stem": (288, 35, 35), "inception_a": (288, 35, 35),
                      "inception_b": (768, 17, 17), "inception_c": (2048, 8, 8)}
    released = build("inception_v3", device="meta")
    assert meta_forward_shapes(released, 299, ["stem"]) == {"stem": (192, 35, 35)}


def test_printing_v4_names_each_blocks_kind_and_figure():
    """``print(model)`` reads like the paper: every stage and block says its kind and figure."""
    model = build("inception_v4", device="meta")
    lines = repr(model).splitlines()
    # the line after "(name): Class(" is the module's own description (its extra_repr)
    described = {lines[i].strip(): lines[i + 1].strip() for i in range(len(lines) - 1)
                 if lines[i].rstrip().endswith("(")}
    # stage -> (the stage's kind, its blocks' kind, the figure that draws them)
    expected = {"stem": ("stem", "stem", "Figure 3"),
                "inception_a": ("stage", "inception", "Figure 4"),
                "reduction_a": ("reduction", "reduction", "Figure 7"),
                "inception_b": ("stage", "inception", "Figure 5"),
                "reduction_b": ("reduction", "reduction", "Figure 8"),
                "inception_c": ("stage", "inception", "Figure 6")}
    blocks = 0
    for stage_name, (stage_kind, kind, figure) in expected.items():
        stage = getattr(model, stage_name)
        assert described[f"({stage_name}): Stage("] == f"kind={stage_kind}, figure=v4 paper, {figure}"
        for name, block in stage.named_children():
            if not isinstance(block, Concat):
                continue  # the stem's plain convs and pools are layers, not blocks
            blocks += 1
            text = repr(block).splitlines()[1].strip()
            assert text == f"kind={kind}, figure=v4 paper, {figure}", (stage_name, name)
    assert blocks == 3 + 4 + 1 + 7 + 1 + 3  # mixed_3a/4a/5a, then the paper's 4 / 7 / 3 blocks
    assert described["(head): ClassifierHead("] == "kind=head"
    # a residual block adds its scale to the same line
    ir = build("inception_resnet_v2", device="meta")
    assert repr(ir.inception_resnet_a[0]).splitlines()[1].strip() == (
        "kind=residual, figure=v4 paper, Figure 16, scale=0.17")


def test_each_variant_declares_its_facts_once_in_its_module():
    """Layouts, papers' results and weights entries live in the variant's own module; the
    published and pretrained registries are views of them, not copies."""
    from explorer.analysis import published
    from explorer.weights import pretrained

    for name, info in VARIANTS.items():
        assert all(key == lay.name == ("paper" if lay.paper else "released")
                   for key, lay in info.layouts.items()), name
        assert info.default_layout in info.layouts
        assert [s.variant for s in info.weights] == [name] * len(info.weights)
        assert pretrained.specs_for(name) == list(info.weights)
        assert published.PUBLISHED[name] == info.published
        # the default weights' accuracy is the "weights" result itself, not an equal copy
        if info.weights:
            assert published.best_published(name) is info.weights[0].accuracy
        assert all(r.kind == "paper" for r in info.paper_results)
