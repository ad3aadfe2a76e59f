"""The shape probe: shapes propagated from the modules' arguments equal a meta-device forward
pass, exactly, for every variant and layout and a spread of configs; the probe validates, is
cached by typed keys, and the command line's summary runs no forward pass (nor imports what a
forward pass imports)."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from dataclasses import replace

import pytest
import torch
from torch import nn

import explorer
from explorer import VARIANTS, ConfigError
from explorer.analysis.probe import CACHE_SIZE, _probe, probe, probe_layout, record_forward
from explorer.variants.blocks import ConvBN, InceptionNet
from explorer.variants.config import fits, min_input_size
from explorer.variants.shapes import ShapeError, Unsupported, macs, propagate

LAYOUTS = [(v, name) for v, info in VARIANTS.items() for name in info.layouts]


def configs(variant: str, layout: str) -> list[dict]:
    """The default, aux heads, narrow and wide, other depths, odd and minimum input sizes."""
    lay = VARIANTS[variant].layouts[layout]
    out = [{}, {"width": 0.3, "num_classes": 7, "input_size": lay.min_input_size}]
    if lay.has_aux:
        out.append({"aux_logits": True, "input_size": min_input_size(lay, True)})
        aux = replace(reference(variant, layout), aux_logits=True)
        size = next((s for s in range(331, 420) if fits(lay, aux, s)), None)
        out.append({"aux_logits": True, "width": 1.3, "input_size": size})
    if lay.repeats is not None:
        out.append({"repeats": tuple(max(1, r // 3) for r in lay.repeats), "width": 0.7})
    odd = next(s for s in range(lay.min_input_size + 37, lay.min_input_size + 200, 2)
               if fits(lay, reference(variant, layout), s))
    out.append({"input_size": odd})
    return out


def reference(variant, layout):
    return explorer.variants.resolve(variant, layout)[2]


def forward_records(found):
    """What a meta-device forward with hooks records for a fresh build of the same network."""
    lay = VARIANTS[found.variant].layouts[found.layout]
    with torch.device("meta"):
        model = lay.build(found.config)
    return record_forward(model, found.input_size)


@pytest.mark.parametrize("variant,layout", LAYOUTS)
def test_propagated_shapes_equal_a_meta_forward_pass(variant, layout):
    for config in configs(variant, layout):
        found = probe(variant, layout, **config)
        shapes, order = forward_records(found)
        assert found.shapes == shapes, (config, sorted(set(found.shapes.items()) ^ set(shapes.items()))[:4])
        assert found.order == tuple(order), config
        assert found.macs == macs(found.model, shapes)
        assert found.shapes[""][1] == (found.config.num_classes,)
        assert found.input_size == (config.get("input_size") or VARIANTS[variant].native_input_size)


@pytest.mark.parametrize("variant,layout", LAYOUTS)
def test_what_fits_is_what_a_forward_pass_accepts(variant, layout):
    """Around the minimum input size, propagation refuses exactly the sizes that a forward
    pass refuses (aux heads included where the layout has them)."""
    lay = VARIANTS[variant].layouts[layout]
    aux = lay.has_aux
    with torch.device("meta"):
        model = lay.build(replace(reference(variant, layout), aux_logits=aux))
    low = min_input_size(lay, aux)
    for size in range(low - 2, low + 4):
        try:
            record_forward(model, size)
            accepted = True
        except RuntimeError:
            accepted = False
        try:
            propagate(model, (3, size, size))
            propagated = True
        except ShapeError:
            propagated = False
        assert propagated == accepted, size


def test_shape_errors_where_pytorch_refuses():
    x = (3, 32, 32)
    with pytest.raises(ShapeError, match="4 input channels expected"):
        propagate(nn.Sequential(nn.Conv2d(3, 8, 3), nn.Conv2d(4, 8, 3)), x)
    with pytest.raises(ShapeError, match="larger than the padded"):
        propagate(nn.Sequential(nn.Conv2d(3, 8, 33)), x)
    with pytest.raises(ShapeError, match="too small"):
        propagate(nn.Sequential(nn.MaxPool2d(3, 2), nn.MaxPool2d(17)), x)
    with pytest.raises(ShapeError, match="10 inputs expected"):
        propagate(nn.Sequential(nn.Flatten(), nn.Linear(10, 2)), x)
    with pytest.raises(Unsupported, match="GELU"):
        propagate(nn.Sequential(nn.GELU()), x)

    class Cropped(nn.Conv2d):  # a known layer's subclass with a forward of its own
        def forward(self, x):
            return super().forward(x)[..., 1:, :]

    with pytest.raises(Unsupported, match="Cropped"):
        propagate(nn.Sequential(Cropped(3, 4, 3)), x)
    shapes, order = propagate(nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.MaxPool2d(3, 2, ceil_mode=True),
                                            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5)), x)
    assert [shapes[n][1] for n in order] == [(8, 16, 16), (8, 8, 8), (8, 1, 1), (8,), (5,), (5,)]


def test_probe_validates_and_caches_by_typed_keys():
    with pytest.raises(ConfigError, match="minimum of 75"):
        probe("inception_v3", input_size=60)
    with pytest.raises(ConfigError, match="unknown variant"):
        probe("inception_v9")
    assert probe("googlenet", width=0.5) is probe("googlenet", width=0.5)
    one, one_float = probe("googlenet", width=1), probe("googlenet", width=1.0)
    assert one is not one_float  # 1 == 1.0, but each probe keeps the config it was asked for
    assert type(one.config.width) is int and type(one_float.config.width) is float
    assert one.shapes == one_float.shapes
    assert _probe.cache_info().maxsize == CACHE_SIZE
    info, lay, cfg = explorer.variants.resolve("inception_v3", aux_logits=True)
    assert probe_layout(lay, cfg) is probe("inception_v3", aux_logits=True)


def test_analysis_and_graph_run_no_forward_pass(monkeypatch):
    from explorer.analysis import graph
    from explorer.analysis import rows as analysis

    def refuse(*args, **kwargs):
        raise AssertionError("a forward pass ran")

    monkeypatch.setattr(InceptionNet, "forward", refuse)
    _probe.cache_clear()
    analysis._analyze_variant.cache_clear()
    graph._to_dot.cache_clear()
    result = explorer.analyze("inception_resnet_v2", depth="layer", input_size=331)
    assert result.rows[-1].output_shape == (1000,)
    assert "2080 x 9 x 9" in explorer.to_dot("inception_resnet_v2", depth="block", input_size=331)
    with pytest.raises(ConfigError, match="does not fit"):
        explorer.build("bn_inception", input_size=231, device="meta")


def test_a_cold_summary_imports_nothing_it_does_not_need(tmp_path):
    """No forward pass, so none of what the first one imports (torch._dynamo, sympy), and none
    of the app's libraries."""
    code = ("import sys, io; from explorer.cli import main; "
            "assert main(['summary', 'inception_resnet_v2']) == 0; "
            "print('loaded:', *(m for m in ('torch._dynamo', 'sympy', 'graphviz', 'plotly', 'PIL', "
            "'huggingface_hub', 'streamlit', 'torch.fx.experimental.symbolic_shapes') "
            "if m in sys.modules))")
    env = {**os.environ, "INCEPTION_EXPLORER_CACHE": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=300, check=True).stdout
    assert out.startswith("inception_resnet_v2 (released layout) at 299x299")
    assert out.splitlines()[-1] == "loaded:"


def test_a_model_of_our_blocks_is_analysed_without_a_forward_and_others_with_one():
    """analyze(model) (the Learn page's lessons) propagates through our blocks and the layers
    they use; a module whose forward it has no rule for is run instead."""
    with torch.device("meta"):
        ours = nn.Sequential(ConvBN(3, 8, 1), ConvBN(8, 8, (1, 7), padding=(0, 3)),
                             ConvBN(8, 8, (7, 1), padding=(3, 0)), nn.MaxPool2d(3, 2, ceil_mode=True))
    shapes, order = propagate(ours, (3, 17, 17))
    assert (shapes, order) == record_forward(copy.deepcopy(ours), 17)
    assert shapes[""][1] == (8, 8, 8)

    class Crop(nn.Module):  # a forward of its own: no rule may be guessed
        def forward(self, x):
            return x[..., 1:, :]

    foreign = nn.Sequential(nn.Conv2d(3, 4, 3), Crop())
    with pytest.raises(Unsupported, match="Crop"):
        propagate(foreign, (3, 8, 8))
    assert explorer.analyze(foreign, input_size=8, depth="layer").rows[-1].output_shape == (4, 5, 6)
