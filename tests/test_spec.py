"""The NetSpec: a network as data, read back from JSON, walked once, and built into modules.

- spec -> JSON -> spec is the same spec, builds the same modules (names, shapes), gives the same
  analysis rows at every depth and, with the same weights, the same logits (exactly);
- the walk against torch itself: output shapes from forward hooks, parameters from the tensors,
  MACs from ``FlopCounterMode``, the state dict's names and shapes;
- describing and analysing imports no torch (a fresh interpreter);
- a malformed spec is refused by a ConfigError that names the place (library and CLI).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from explorer.analysis.rows import DEPTHS, analyze
from explorer.cli import main
from explorer.runtime.build import build
from explorer.spec import ops
from explorer.spec.compose import concat, conv, head, maxpool, network, stage
from explorer.spec.errors import ConfigError, ShapeError
from explorer.spec.netspec import NetSpec
from explorer.spec.walk import walk
from explorer.variants import VARIANTS, describe

LAYOUTS = [(v, lay) for v, info in VARIANTS.items() for lay in info.layouts]
CONFIGS = [  # a few configs that reach every option
    ("inception_v3", {"width": 0.5, "num_classes": 10, "aux_logits": True}),
    ("inception_v4", {"repeats": (1, 2, 1), "dropout": 0.3}),
    ("inception_resnet_v2", {"scale": (0.1, 0.2, 0.3), "repeats": (2, 1, 1), "width": 0.25}),
    ("inception_resnet_v1", {"layout": "paper", "scale": 0.5}),
    ("googlenet", {"layout": "paper", "aux_logits": True}),
    ("bn_inception", {"input_size": 160, "width": 0.5}),
]


def round_trip(spec: NetSpec) -> NetSpec:
    return NetSpec.from_json(json.dumps(spec.to_dict()))


@pytest.mark.parametrize("variant,layout", LAYOUTS)
def test_json_round_trip_is_the_same_network(variant, layout):
    spec = describe(variant, layout)
    again = round_trip(spec)
    assert again == spec and again.to_dict() == spec.to_dict()
    for depth in DEPTHS:
        assert analyze(again, depth=depth).rows == analyze(variant, layout=layout, depth=depth).rows
    ours = build(variant, layout=layout, device="meta").state_dict()
    theirs = build(again, device="meta").state_dict()
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}


@pytest.mark.parametrize("variant,config", CONFIGS)
def test_a_configured_spec_round_trips_to_the_same_logits(variant, config):
    spec = describe(variant, **config)
    again = round_trip(spec)
    assert again == spec
    torch.manual_seed(0)
    model = build(variant, **{k: v for k, v in config.items() if k != "input_size"})
    other = build(again)
    other.load_state_dict(model.state_dict())
    x = torch.randn(2, 3, spec.input_size, spec.input_size)
    with torch.no_grad():
        torch.testing.assert_close(other(x), model(x), rtol=0, atol=0)
    assert repr(other) == repr(model)  # kinds and figures, as print(model) shows them


@pytest.mark.parametrize("variant,layout", LAYOUTS)
def test_the_walk_agrees_with_torch(variant, layout):
    spec = describe(variant, layout, aux_logits=VARIANTS[variant].layouts[layout].has_aux)
    trace = walk(spec)
    with torch.device("meta"):
        model = build(spec, device="meta")
    # the state dict's names and shapes
    assert trace.state_shapes() == {k: tuple(v.shape) for k, v in model.state_dict().items()}
    # parameters under every module, from the tensors
    for name, m in model.named_modules():
        assert trace.nodes[name].params == sum(p.numel() for p in m.parameters()), name
    # every module's output shape, from forward hooks (aux heads run on their taps' outputs)
    seen, outputs = {}, {}

    def hook(name):
        def record(mod, args, out):
            if isinstance(out, torch.Tensor):
                seen[name] = tuple(out.shape[1:])
                outputs[name] = out
        return record

    for name, m in model.named_modules():
        m.register_forward_hook(hook(name))
    x = torch.empty(1, 3, spec.input_size, spec.input_size, device="meta")
    with torch.no_grad(), FlopCounterMode(display=False) as flops:
        model(x)
    assert trace.root.macs == flops.get_total_flops() // 2
    with torch.no_grad():
        for tap, aux_name in trace.aux_taps.items():
            getattr(model, aux_name)(outputs[tap])
    for name, shape in seen.items():
        assert trace.nodes[name].out_shape == shape, name
    assert set(seen) == set(trace.order)


def test_describe_and_analyze_import_no_torch():
    code = ("import sys, explorer\n"
            "from explorer.variants import VARIANTS\n"
            "for v, info in VARIANTS.items():\n"
            "    for lay in info.layouts:\n"
            "        explorer.describe(v, lay).to_json()\n"
            "        for d in ('stage', 'block', 'layer'):\n"
            "            explorer.analyze(v, layout=lay, depth=d)\n"
            "        explorer.to_dot(v, layout=lay)\n"
            "print('torch' in sys.modules, [m for m in sys.modules if m.startswith('torch')][:3])\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False []"


def small(**blocks) -> dict:
    """A small network as plain JSON, with ``blocks`` as its one stage's blocks."""
    return {"input_size": 16, "stages": {"body": {"blocks": blocks}},
            "head": {"layers": {"pool": {"op": "adaptive_avgpool", "size": 1},
                                "flatten": {"op": "flatten"}, "fc": {"op": "linear", "out": 3}}}}


GOOD_BLOCK = {"op": "concat", "branches": {"a": [{"op": "conv", "out": 4, "kernel": 1}],
                                           "b": [{"op": "conv", "out": 4, "kernel": 3, "padding": 1}]}}


@pytest.mark.parametrize("block,where,what", [
    ({"op": "swish"}, "stage body, block x", "unknown op 'swish'"),
    ({"op": "conv", "out": -4, "kernel": 3}, "stage body, block x", "out must be a positive integer"),
    ({"op": "concat", "branches": {"a": {"op": "conv", "out": 4, "kernel": 1}}},
     "stage body, block x, branch a", "a branch is a non-empty list of layers"),
    ({"op": "concat", "branches": {"a": [{"op": "conv", "out": 0, "kernel": 1}]}},
     "stage body, block x, branch a, layer 0", "out must be a positive integer"),
    ({"op": "conv", "out": 4, "kernel": 3, "speed": 2}, "stage body, block x", "conv takes no speed"),
    ({"op": "residual", "branches": {"a": [{"op": "conv", "out": 4, "kernel": 1}]}, "scale": -1},
     "stage body, block x", "scale must be a number"),
])
def test_a_malformed_spec_names_the_place(block, where, what):
    with pytest.raises(ConfigError) as err:
        NetSpec.from_dict(small(x=block))
    assert str(err.value).startswith(where) and what in str(err.value), str(err.value)


def test_a_spec_that_cannot_run_names_the_branch_and_layer():
    too_big = small(x=GOOD_BLOCK, y={"op": "conv", "out": 4, "kernel": 33})
    with pytest.raises(ShapeError, match=r"^stage body, block y: a 33x33 kernel is larger than "
                                         r"the padded 16x16 input"):
        walk(NetSpec.from_dict(too_big))
    misaligned = {"op": "concat", "branches": {
        "a": [{"op": "conv", "out": 4, "kernel": 1}],
        "b": [{"op": "conv", "out": 4, "kernel": 3, "stride": 2}]}}
    with pytest.raises(ShapeError, match=r"^stage body, block x: the branches give a 4x16x16, "
                                         r"b 4x7x7"):
        walk(NetSpec.from_dict(small(x=misaligned)))
    strided_residual = {"op": "residual", "scale": 0.2, "branches": {
        "a": [{"op": "conv", "out": 4, "kernel": 3, "stride": 2, "padding": 1}]}}
    with pytest.raises(ShapeError, match="a residual add needs the grid unchanged"):
        walk(NetSpec.from_dict(small(x=strided_residual)))
    assert walk(NetSpec.from_dict(small(x=GOOD_BLOCK))).root.out_shape == (3,)


def test_the_cli_refuses_a_bad_spec_file_with_the_place(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(small(x={"op": "concat", "branches": {"a": "conv"}})))
    for command in ("summary", "graph", "describe"):
        assert main([command, str(bad)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("inception-explorer: error: stage body, block x, branch a: a branch "
                              "is a non-empty list") and "Traceback" not in err
    good = tmp_path / "good.json"
    assert main(["describe", "googlenet", "--width", "0.5"], out=(f := open(good, "w"))) == 0
    f.close()
    assert main(["summary", str(good), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["total_params"] == analyze("googlenet", width=0.5).total_params
    assert main(["describe", "inception_v3", "--block", "inception_a.mixed_5b"]) == 0
    block = json.loads(capsys.readouterr().out)
    assert block["op"] == "concat" and list(block["branches"]) == ["1x1", "5x5", "3x3dbl", "pool"]
    assert main(["describe", "inception_v3", "--block", "inception_a.nope"]) == 2
    assert "has no block 'inception_a.nope'" in capsys.readouterr().err


def test_changing_one_block_rethreads_every_channel_after_it():
    """A layer states its output only: widen one block and the next block's convs take it."""
    spec = network({"s": stage("s", {"a": conv(8, 3, padding=1),
                                     "b": concat({"x": conv(4, 1), "y": [maxpool(3, 1, 1)]}),
                                     "c": conv(5, 1)}, "stage")}, head({}))
    trace = walk(spec, 12)
    assert trace.nodes["s.b"].out_shape == (12, 12, 12) and trace.nodes["s.c.conv"].tensors[
        "weight"] == (5, 12, 1, 1)
    wider = network({"s": stage("s", {"a": conv(16, 3, padding=1), "b": spec.stages[0].blocks[1][1],
                                      "c": conv(5, 1)}, "stage")}, head({}))
    assert walk(wider, 12).nodes["s.c.conv"].tensors["weight"] == (5, 20, 1, 1)


def test_every_op_has_a_torch_layer():
    from explorer.runtime.modules import LAYERS
    assert set(LAYERS) == set(ops.OPS)
