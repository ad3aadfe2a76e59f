"""torchinfo's own summary of our models: the library function, `summary --format torchinfo` and
the Inspect page's toggle. Its totals agree with ours, and where they differ the difference is
exactly what torchinfo counts and we do not."""

from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest
from torch import nn

import explorer
from explorer.analysis.rows import analyze
from explorer.cli import main
from explorer.runtime.torchinfo_view import torchinfo_summary, torchinfo_text


def extra_mult_adds(variant: str, **config) -> int:
    """What torchinfo 1.8 counts as mult-adds beyond our conv/linear MACs: BatchNorm's scale and
    shift (one each per parameter), a linear layer's bias, and a conv's bias at every output
    position (Inception-ResNet's 1x1 up-projections have one)."""
    model = explorer.build(variant, device="meta", **config)
    extra, hooks = [0], []

    def count(module, _inputs, out):
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.affine:
            extra[0] += module.weight.numel() + module.bias.numel()
        elif isinstance(module, nn.Linear) and module.bias is not None:
            extra[0] += module.bias.numel()
        elif isinstance(module, nn.Conv2d) and module.bias is not None:
            extra[0] += module.bias.numel() * out.shape[2] * out.shape[3]

    for module in model.modules():
        hooks.append(module.register_forward_hook(count))
    size = config.get("input_size") or explorer.VARIANTS[variant].native_input_size
    with torch.no_grad():
        model(torch.empty(1, 3, size, size, device="meta"))
    return extra[0]


@pytest.mark.parametrize("variant,config", [
    ("googlenet", {}),
    ("inception_v3", {"layout": "paper"}),
    ("inception_resnet_v2", {"width": 0.5, "input_size": 149, "num_classes": 10}),
])
def test_torchinfo_totals_agree_with_ours(variant, config):
    size = config.pop("input_size", None)
    ours = analyze(variant, input_size=size, **config)
    theirs = torchinfo_summary(variant, input_size=size, **config)
    assert theirs.total_params == ours.total_params  # exact: both count the same tensors
    assert theirs.total_mult_adds - ours.total_macs == extra_mult_adds(variant, input_size=size, **config)
    assert theirs.summary_list[0].output_size == [1, config.get("num_classes", 1000)]


def test_torchinfo_depth_follows_ours():
    stage = torchinfo_text("inception_v4", depth="stage")
    block = torchinfo_text("inception_v4", depth="block")
    assert "(inception_a)" in stage and "(conv_1a)" not in stage and "Concat (" not in stage
    # at block depth, one row for every child of every stage (stem layers, blocks, head parts)
    model = explorer.build("inception_v4", device="meta")
    assert block.count("│    └─") == sum(len(list(s.children())) for s in model.children())
    assert "ConvBN (conv_1a)" in block
    assert "Total params: 42,679,816" in stage and "Total params: 42,679,816" in block


def test_summary_format_torchinfo(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("INCEPTION_EXPLORER_CACHE", str(tmp_path))
    assert main(["summary", "googlenet", "--depth", "stage", "--format", "torchinfo"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("=" * 20) and "Layer (type (var_name))" in out
    assert "Total params: 6,624,904" in out and "(inception_4)" in out
    assert main(["summary", "googlenet", "--format", "torchinfo", "--json"]) == 2  # one format only


def test_inspect_shows_torchinfo_when_asked():
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "explorer" / "app.py"),
                           default_timeout=60)
    at.query_params.update(variant="inception_v3")
    at.switch_page("../pages/inspect.py")
    at.run()
    assert not at.exception
    assert not any("Total params" in c.value for c in at.code), "computed only when asked"
    at.toggle(key="torchinfo").set_value(True).run()
    assert not at.exception
    (code,) = [c.value for c in at.code if "Total params" in c.value]
    assert "Total params: 23,834,568" in code
