"""The design bench (``explorer.analysis.design``, ``replace=``): the papers' design rules as
numbers, checked against torch itself; a block opened and applied unchanged changes nothing;
impossible designs are refused by name; a design travels (URL value, JSON, Python snippet)."""

from __future__ import annotations

import json

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import explorer
from explorer.analysis import design as d
from explorer.analysis.graph import to_dot
from explorer.analysis.rows import analyze
from explorer.runtime.build import build
from explorer.runtime.modules import materialize
from explorer.spec.errors import ConfigError, ShapeError
from explorer.spec.netspec import Layer
from explorer.spec.walk import walk
from explorer.variants import VARIANTS, describe

LAYOUTS = [(v, lay) for v, info in VARIANTS.items() for lay in info.layouts]
V3 = describe("inception_v3", "paper")


def torch_macs(spec) -> int:
    """Multiply-accumulates of the modules built from ``spec``, counted by torch."""
    model = materialize(spec).eval()
    x = torch.zeros(1, spec.in_channels, spec.input_size, spec.input_size)
    with torch.no_grad(), FlopCounterMode(display=False) as flops:
        model(x)
    return flops.get_total_flops() // 2


def test_one_5x5_for_two_stacked_3x3_moves_the_macs_by_the_rule():
    name = "inception_a.0"
    block = d.open_block(V3, name)
    layers = block.branch("3x3dbl")
    assert [x["kernel"] for x in layers[1:]] == [3, 3]
    designed = d.unfactorize(block, "3x3dbl", 1)
    assert designed.branch("3x3dbl")[1]["kernel"] == 5
    result = d.bench(V3, name, designed)
    trace = walk(V3)
    c_in = trace.nodes[f"{name}.branches.3x3dbl.0"].out_shape[0]
    c_mid, h, w = trace.nodes[f"{name}.branches.3x3dbl.1"].out_shape
    c_out = trace.nodes[f"{name}.branches.3x3dbl.2"].out_shape[0]
    rule = h * w * (25 * c_in * c_out - 9 * c_in * c_mid - 9 * c_mid * c_out)
    assert rule != 0
    assert result.difference("block")["macs"] == rule
    assert result.difference("network")["macs"] == rule
    # torch counts the same on the modules built from both designs
    assert torch_macs(result.block_spec) - torch_macs(result.original_block_spec) == rule
    assert torch_macs(result.block_spec) == result.block["designed"].macs
    # and the whole network, built with the design in place
    assert analyze("inception_v3", layout="paper", replace={name: designed}).total_macs == \
        analyze("inception_v3", layout="paper").total_macs + rule
    # factorizing the 5x5 again is the undo
    assert d.factorize(designed, "3x3dbl", 1, mid=c_mid) == block


def test_3x3_as_1x3_then_3x1_moves_the_macs_by_the_rule():
    name = "inception_a.1"
    block = d.open_block(V3, name)
    designed = d.factorize(block, "3x3", 1)
    assert [x["kernel"] for x in designed.branch("3x3")[1:]] == [(1, 3), (3, 1)]
    result = d.bench(V3, name, designed)
    trace = walk(V3)
    c_in = trace.nodes[f"{name}.branches.3x3.0"].out_shape[0]
    c_out, h, w = trace.nodes[f"{name}.branches.3x3.1"].out_shape
    rule = h * w * (3 * c_in * c_out + 3 * c_out * c_out - 9 * c_in * c_out)
    assert result.difference("block")["macs"] == rule != 0
    assert torch_macs(result.block_spec) - torch_macs(result.original_block_spec) == rule
    assert result.block["designed"].out_shape == result.block["original"].out_shape
    assert d.unfactorize(designed, "3x3", 1) == block


@pytest.mark.parametrize("variant,layout", LAYOUTS)
def test_every_block_opened_and_applied_unchanged_gives_the_original_numbers(variant, layout):
    spec = describe(variant, layout)
    original = analyze(spec, depth="block")
    rows = [(r.name, r.output_shape, r.params, r.macs, r.rf) for r in original.rows]
    for stage in spec.stages:
        for block_name, _ in stage.blocks:
            name = f"{stage.name}.{block_name}"
            design = d.open_block(spec, name)
            again = analyze(spec, depth="block", replace={name: design})
            assert (again.total_params, again.total_macs) == \
                (original.total_params, original.total_macs), name
            assert [(r.name, r.output_shape, r.params, r.macs, r.rf) for r in again.rows] == rows
            result = d.bench(spec, name, design)
            assert result.block["designed"] == result.block["original"], name
            assert result.difference("network") == {"params": 0, "macs": 0}, name


def test_a_stage_name_replaces_every_block_of_the_stage():
    block = d.set_residual(d.open_block(V3, "inception_a.0"), False)
    block = d.change_layer(block, "pool", 1, out=32)
    spec = explorer.describe("inception_v3", layout="paper")
    from explorer.spec.replace import replaced
    new = replaced(spec, {"inception_a": block})
    assert all(b == block for _, b in new.stage("inception_a").blocks)
    result = d.bench(V3, "inception_a.0", block, whole_stage=True)
    assert result.placed == "inception_a"
    # the later blocks read fewer channels: the whole stage saves more than its first block
    assert result.difference("network")["params"] < result.difference("block")["params"] < 0
    model = build("inception_v3", layout="paper", replace={"inception_a": block}, device="meta")
    assert model.inception_a[2].branches["pool"][1].conv.out_channels == 32


def test_residual_on_and_its_scale():
    spec = describe("inception_resnet_v2", "paper")
    name = "inception_resnet_a.0"
    block = d.open_block(spec, name)
    assert block.op == "residual" and block.scale != 1.0
    unscaled = d.set_residual(block, True, 1.0)
    assert unscaled.scale == 1.0
    result = d.bench(spec, name, unscaled)
    assert result.difference("block") == {"params": 0, "macs": 0, "rf": [0, 0]}
    plain = d.bench(spec, name, d.set_residual(block, False))
    # no 1x1 expansion back to the input's channels: fewer params, more channels out
    assert plain.difference("block")["params"] < 0
    assert plain.block["designed"].out_shape[0] != plain.block["original"].out_shape[0]
    with pytest.raises(ConfigError, match="scale"):
        d.set_residual(block, True, 0)


def test_edits_add_remove_rename_change():
    block = d.open_block(V3, "inception_a.0")
    b = d.add_branch(block, "extra")
    assert [n for n, _ in b.branches][-1] == "extra"
    b = d.rename_branch(b, "extra", "wide")
    b = d.add_layer(b, "wide")
    b = d.change_layer(b, "wide", 1, kernel=(1, 7), padding=(0, 3), out=40)
    assert b.branch("wide")[1] == Layer("conv", out=40, kernel=(1, 7), padding=(0, 3))
    b = d.change_layer(b, "wide", 1, op="maxpool", kernel=3, stride=1, padding=1)
    assert b.branch("wide")[1].op == "maxpool"
    result = d.bench(V3, "inception_a.0", b)
    assert result.block["designed"].out_shape[0] == result.block["original"].out_shape[0] + 32
    assert d.remove_branch(d.remove_layer(b, "wide", 1), "wide") == block
    with pytest.raises(ConfigError, match="only branch"):
        d.remove_branch(d.empty_block(), "1x1")
    with pytest.raises(ConfigError, match="no branch .nope"):
        d.remove_layer(block, "nope", 0)


@pytest.mark.parametrize("edit,match", [
    (lambda b: d.change_layer(b, "3x3", 1, stride=2), r"branch 3x3.*grids must agree|branches give"),
    (lambda b: d.change_layer(b, "1x1", 0, kernel=99), r"branch 1x1, layer 0"),
    (lambda b: d.change_layer(b, "3x3dbl", 2, out=0), r"branch 3x3dbl, layer 2"),
])
def test_impossible_designs_are_refused_by_branch_and_layer(edit, match):
    with pytest.raises(ConfigError, match=match):
        d.bench(V3, "inception_a.0", edit(d.open_block(V3, "inception_a.0")))


def test_an_impossible_design_is_refused_by_build_analyze_and_to_dot():
    bad = d.change_layer(d.open_block(V3, "inception_a.0"), "1x1", 0, kernel=99)
    for call in (lambda: build("inception_v3", layout="paper", replace={"inception_a.0": bad},
                               device="meta"),
                 lambda: analyze("inception_v3", layout="paper", replace={"inception_a.0": bad}),
                 lambda: to_dot("inception_v3", layout="paper", replace={"inception_a.0": bad})):
        with pytest.raises(ShapeError, match="block 0, branch 1x1, layer 0"):
            call()
    with pytest.raises(ConfigError, match="no block or stage 'nowhere'"):
        analyze("inception_v3", replace={"nowhere": bad})
    with pytest.raises(ConfigError, match="branch 1x1, layer 0"):
        analyze("inception_v3", layout="paper", replace={
            "inception_a.0": {"op": "concat", "branches": {"1x1": [{"op": "conv", "out": -3}]}}})


def test_replace_takes_the_plain_json_dict_and_draws_it():
    designed = d.factorize(d.open_block(V3, "inception_a.0"), "3x3", 1)
    as_dict = json.loads(d.to_json(designed))
    dot = to_dot("inception_v3", layout="paper", depth="layer", replace={"inception_a.0": as_dict})
    assert "1x3" in dot and dot != to_dot("inception_v3", layout="paper", depth="layer")
    model = build("inception_v3", layout="paper", replace={"inception_a.0": as_dict}, device="meta")
    assert tuple(model.inception_a[0].branches["3x3"][1].conv.kernel_size) == (1, 3)
    with pytest.raises(ConfigError, match="random weights"):
        build("inception_v3", replace={"inception_a.0": as_dict}, weights="x.pth")


def test_a_design_travels_by_url_json_and_snippet():
    designed = d.unfactorize(d.open_block(V3, "inception_a.0"), "3x3dbl", 1)
    value = d.encode(designed)
    assert value.replace("-", "").replace("_", "").isalnum() and len(value) < 600
    assert d.decode(value) == designed
    assert d.from_json(d.to_json(designed)) == designed
    code = d.snippet(designed, "inception_v3", "paper", "inception_a.0")
    scope: dict = {}
    assert "explorer.build('inception_v3'" in code
    exec(compile(code.replace("design})\nprint(", 'design}, device="meta")\nresult = ('),
                 "<snippet>", "exec"), scope)
    assert tuple(scope["model"].inception_a[0].branches["3x3dbl"][1].conv.kernel_size) == (5, 5)
    assert scope["result"] == analyze("inception_v3", layout="paper",
                                      replace={"inception_a.0": designed}).total_macs


@pytest.mark.parametrize("value", [
    "<script>alert(1)</script>", "x" * (d.MAX_URL_CHARS + 1), "eJzLSM3JyVcozy_KSQEAGgQEXQ",
    d.encode(d.empty_block()).upper(),
    # valid base64 and zlib, but a bomb and a non-block
    __import__("base64").urlsafe_b64encode(__import__("zlib").compress(b"[" * 10**6)).decode(),
    __import__("base64").urlsafe_b64encode(__import__("zlib").compress(b'{"op": "exec"}')).decode(),
])
def test_a_crafted_design_value_is_refused_with_a_message(value):
    with pytest.raises(ConfigError):
        d.decode(value)


# -- the command line: --replace NAME=FILE ---------------------------------------------------

@pytest.fixture
def design_files(tmp_path):
    good = d.unfactorize(d.open_block(V3, "inception_a.0"), "3x3dbl", 1)
    bad = d.change_layer(good, "1x1", 0, kernel=99)
    (tmp_path / "good.json").write_text(d.to_json(good))
    (tmp_path / "bad.json").write_text(d.to_json(bad))
    (tmp_path / "junk.json").write_text("{not json")
    return tmp_path, good


def run_cli(argv):
    import io

    from explorer.cli import main
    out = io.StringIO()
    return main(argv, out=out), out.getvalue()


def test_cli_replace_changes_summary_graph_and_compare(design_files):
    folder, good = design_files
    status, text = run_cli(["summary", "inception_v3", "--layout", "paper", "--json",
                            "--replace", f"inception_a.0={folder / 'good.json'}"])
    assert status == 0
    expected = analyze("inception_v3", layout="paper", replace={"inception_a.0": good})
    assert json.loads(text)["total_macs"] == expected.total_macs
    assert expected.total_macs != analyze("inception_v3", layout="paper").total_macs
    status, text = run_cli(["graph", "inception_v3", "--layout", "paper", "--depth", "layer",
                            "--replace", f"inception_a={folder / 'good.json'}"])
    assert status == 0 and "5x5 conv, 96" in text
    status, text = run_cli(["compare", "inception_v3", "--layout", "paper", "--json",
                            "--replace", f"inception_a.0={folder / 'good.json'}"])
    rows = json.loads(text)
    assert [r["variant"] for r in rows] == ["inception_v3", "inception_v3 (designed)"]
    assert rows[1]["total_macs"] - rows[0]["total_macs"] == \
        expected.total_macs - analyze("inception_v3", layout="paper").total_macs


@pytest.mark.parametrize("command", [
    ["summary", "inception_v3", "--layout", "paper"],
    ["graph", "inception_v3", "--layout", "paper"],
    ["compare", "inception_v3", "--layout", "paper"],
    ["time", "inception_v3", "--layout", "paper", "--runs", "1"],
    ["race", "inception_v3", "--steps", "1"],
])
def test_cli_refuses_an_impossible_design_by_name_with_exit_2(command, design_files, capsys):
    folder, _ = design_files
    status, text = run_cli([*command, "--replace", f"inception_a.0={folder / 'bad.json'}"])
    err = capsys.readouterr().err
    assert status == 2 and text == ""
    assert "block 0, branch 1x1, layer 0" in err and "Traceback" not in err
    status, _ = run_cli([*command, "--replace", f"inception_a.0={folder / 'junk.json'}"])
    assert status == 2 and "not JSON" in capsys.readouterr().err
    status, _ = run_cli([*command, "--replace", "inception_a.0"])
    assert status == 2 and "NAME=FILE" in capsys.readouterr().err


def test_the_lab_builds_the_design_scaled_to_its_width(design_files):
    from explorer.cli import make_parser, race_configs
    from explorer.lab.config import build_lab_model
    from explorer.lab.training import make_request

    folder, _ = design_files
    args = make_parser().parse_args(["race", "inception_v3", "--replace",
                                     f"inception_a.0={folder / 'good.json'}"])
    request = make_request(race_configs(args.variants, args))
    original, designed = request.configs
    assert designed.design_at == "inception_a.0" and original.design is None
    assert designed.label() != original.label()
    model = build_lab_model(designed, torch.Generator().manual_seed(0))
    conv = model.inception_a[0].branches["3x3dbl"][1].conv
    assert tuple(conv.kernel_size) == (5, 5) and conv.out_channels == round(96 * designed.width)
