"""analyze(): totals against torchinfo and FlopCounterMode, REFERENCE.md figures, per-block rows."""

import json

import pytest
import torch
import torchinfo
from torch.utils.flop_counter import FlopCounterMode

import explorer
from explorer.analysis.rows import analyze

# REFERENCE.md, "Whole models at native input": params and MACs (conv + linear)
REFERENCE = {
    "googlenet": (224, 6_624_904, 1.498e9),
    "bn_inception": (224, 11_295_240, 2.033e9),
    "inception_v3": (299, 23_834_568, 5.713e9),
    "inception_v4": (299, 42_679_816, 12.254e9),
    "inception_resnet_v2": (299, 55_843_464, 13.156e9),
}


@pytest.mark.parametrize("variant", list(REFERENCE))
def test_whole_model_figures_match_reference(variant):
    size, params, macs = REFERENCE[variant]
    result = analyze(variant)
    assert result.input_size == size
    assert result.total_params == params
    assert result.total_macs == pytest.approx(macs, rel=0.005)


def test_ir_v1_facenet_trunk_matches_reference():
    result = analyze("inception_resnet_v1", depth="block")
    fc = next(r for r in result.rows if r.name == "head.fc")
    assert result.total_params - fc.params == 23_482_624
    assert result.total_macs == pytest.approx(6.308e9, rel=0.005)


@pytest.mark.parametrize("variant", explorer.list_variants())
@pytest.mark.parametrize("layout", ["released", "paper"])
def test_totals_equal_torchinfo_and_flop_counter(variant, layout):
    info = explorer.VARIANTS[variant]
    if layout not in info.layouts:
        layout = info.default_layout
    size = info.native_input_size
    result = analyze(variant, layout=layout)
    model = explorer.build(variant, layout=layout, device="meta")
    summary = torchinfo.summary(model, input_size=(1, 3, size, size), device="meta", verbose=0)
    assert result.total_params == summary.total_params
    with FlopCounterMode(display=False) as counter:
        model(torch.empty(1, 3, size, size, device="meta"))
    assert result.total_macs == counter.get_total_flops() // 2


@pytest.mark.parametrize("depth", ["stage", "block", "layer"])
@pytest.mark.parametrize("variant", ["googlenet", "inception_v3", "inception_resnet_v2"])
def test_rows_add_up_at_every_depth(variant, depth):
    result = analyze(variant, depth=depth)
    assert sum(r.params for r in result.rows) == result.total_params
    assert sum(r.macs for r in result.rows) == result.total_macs
    assert sum(r.params_share for r in result.rows) == pytest.approx(1.0)
    assert sum(r.macs_share for r in result.rows) == pytest.approx(1.0)
    for row in result.rows:
        assert row.activation_bytes == 4 * torch.Size(row.output_shape).numel()


def test_v3_golden_blocks():
    rows = {r.name: r for r in analyze("inception_v3", aux_logits=True).rows}
    golden = {"stem.conv_1a": ((32, 149, 149), 928), "stem.conv_4a": ((192, 71, 71), 138_624),
              "inception_a.mixed_5b": ((256, 35, 35), 255_904),
              "reduction_a.mixed_6a": ((768, 17, 17), 1_153_280),
              "inception_b.mixed_6e": ((768, 17, 17), 2_141_952),
              "reduction_b.mixed_7a": ((1280, 8, 8), 1_698_304),
              "inception_c.mixed_7c": ((2048, 8, 8), 6_076_800), "head.fc": ((1000,), 2_049_000)}
    for name, (shape, params) in golden.items():
        assert rows[name].output_shape == shape, name
        assert rows[name].params == params, name
    assert rows["aux"].params == 3_326_696
    assert rows["aux"].kind == "aux"
    assert rows["inception_b.mixed_6b"].figure.endswith("Figure 6")


def test_aux_macs_are_not_part_of_inference_totals():
    plain = analyze("inception_v3")
    with_aux = analyze("inception_v3", aux_logits=True)
    assert with_aux.total_macs == plain.total_macs
    assert with_aux.total_params == plain.total_params + 3_326_696


def test_layer_depth_shows_joins_and_residual_scale():
    rows = analyze("inception_resnet_v2", depth="layer", repeats=(1, 1, 1)).rows
    names = [r.name for r in rows]
    i = names.index("inception_resnet_a.0.up")
    assert names[i - 1] == "inception_resnet_a.0.concat"
    assert rows[i - 1].output_shape == (128, 35, 35)
    assert names[i + 1] == "inception_resnet_a.0.add"
    assert rows[i + 1].kind == "residual add x0.17"
    last = next(r for r in rows if r.name == "inception_resnet_c.1.add")
    assert "no ReLU" in last.kind and "x1" in last.kind


def test_config_changes_the_analysis():
    base = analyze("inception_v4")
    narrow = analyze("inception_v4", width=0.5)
    small = analyze("inception_v4", input_size=149)
    assert narrow.total_params < base.total_params / 3
    assert small.rows[-1].output_shape == (1000,)
    assert small.total_macs < base.total_macs / 3
    assert analyze("inception_v4", num_classes=10).rows[-1].output_shape == (10,)


def test_analysis_is_cached_and_rejects_bad_input():
    assert analyze("googlenet") is analyze("googlenet")
    with pytest.raises(explorer.ConfigError, match="minimum of 75"):
        analyze("inception_v3", input_size=60)
    with pytest.raises(ValueError, match="depth"):
        analyze("inception_v3", depth="everything")


def test_analyze_a_built_model_without_touching_it():
    model = explorer.build("googlenet", width=0.25)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = analyze(model)
    assert result.total_params == sum(p.numel() for p in model.parameters())
    assert not model._forward_hooks and all(not m._forward_hooks for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.device.type == "cpu" for p in model.parameters())


def test_json_and_csv_exports():
    result = analyze("googlenet", depth="stage")
    data = json.loads(json.dumps(result.to_dict()))
    assert {"variant", "layout", "input_size", "total_params", "total_macs", "rows"} <= set(data)
    assert {"name", "kind", "output_shape", "params", "macs"} <= set(data["rows"][0])
    lines = result.to_csv().strip().splitlines()
    assert len(lines) == len(result.rows) + 2  # the settings line, the header, the rows
    assert lines[0].startswith("# settings: ") and lines[1].startswith("name,kind,figure")
