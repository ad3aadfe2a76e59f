"""The DOT drawings: they lay out with Graphviz and read like the papers' figures."""

import re
import shutil
import subprocess

import pytest

from explorer import VARIANTS, ConfigError, build, list_variants
from explorer.graph import DEPTHS, MISSING, GraphvizMissing, _quote, render, to_dot

SHAPE = re.compile(r'label="(\d+ x \d+ x \d+|\d+)"')


@pytest.fixture(scope="session")
def dot_binary():
    # Fail, never skip: CI installs graphviz, and a silent skip would hide broken drawings.
    path = shutil.which("dot")
    assert path, "Graphviz's `dot` is needed for these tests (apt-get install graphviz)"
    return path


def lay_out(dot_binary, source: str) -> bytes:
    done = subprocess.run([dot_binary, "-Tsvg"], input=source.encode(), capture_output=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr.decode()
    assert b"Warning" not in done.stderr and b"Error" not in done.stderr, done.stderr.decode()
    return done.stdout


@pytest.mark.parametrize("depth", DEPTHS)
@pytest.mark.parametrize("variant", list_variants())
def test_every_variant_lays_out_with_a_cluster_per_stage(dot_binary, variant, depth):
    source = to_dot(variant, depth=depth)
    assert source.startswith(f'digraph "{variant}"') and "rankdir=TB" in source
    for stage in build(variant, device="meta").stage_names:
        assert f'subgraph "cluster_{stage}"' in source
    native = VARIANTS[variant].native_input_size
    assert f'label="3 x {native} x {native}"' in source  # the input edge
    assert SHAPE.search(source)
    assert b"<svg" in lay_out(dot_binary, source)


@pytest.mark.parametrize("variant,layout,aux", [  # those the test above does not draw
    (v, layout, aux) for v, info in VARIANTS.items() for layout, lay in info.layouts.items()
    for aux in ((False, True) if lay.has_aux else (False,))
    if aux or layout != info.default_layout])
def test_every_layout_lays_out_at_layer_depth(dot_binary, variant, layout, aux):
    lay_out(dot_binary, to_dot(variant, depth="layer", layout=layout, aux_logits=aux))


def test_ir_v2_blocks_collapse_into_repeats():
    source = to_dot("inception_resnet_v2", depth="block")
    assert re.search(r"\\nx10\"", source) and re.search(r"\\nx20\"", source)
    assert re.search(r"\\nx9\"", source)  # 9 scaled C blocks, then the final one without ReLU
    assert "no ReLU" in source
    full = to_dot("inception_resnet_v2", depth="block", collapse=False)
    assert "x10" not in full and "x20" not in full
    assert len(re.findall(r'^ +"inception_resnet_b\.\d+" \[label', full, re.M)) == 20


def test_ir_v2_layers_show_the_scaled_residual_add(dot_binary):
    source = to_dot("inception_resnet_v2", depth="layer")
    assert 'label="+ x0.17"' in source and 'label="+ x0.1"' in source
    assert 'label="1x1 conv, 320 (linear)"' in source  # the filter expansion back to 320
    assert 'label="concat 128"' in source
    # identity shortcut: from the block's input (the stem's last concat) to the add
    assert '"stem.mixed_5b/concat" -> "inception_resnet_a.0/add"' in source
    assert '"inception_resnet_c.0/relu"' in source
    assert '"inception_resnet_c.9/add"' in source and '"inception_resnet_c.9/relu"' not in source
    assert "x10" in source  # repeated blocks are drawn once at layer depth too
    lay_out(dot_binary, source)


def test_v3_layers_read_like_the_paper():
    source = to_dot("inception_v3", depth="layer")
    assert 'label="concat 768"' in source
    assert 'label="768 x 17 x 17"' in source
    assert 'label="1x7 conv, 192"' in source and 'label="3x3 max pool /2"' in source
    # Figure 7's expanded filter bank: a nested fork into 1x3 and 3x1, joined by its own concat
    assert '"inception_c.mixed_7b.branches.3x3.1/concat" [label="concat 768"' in source
    assert 'label="1x3 conv, 384"' in source and 'label="3x1 conv, 384"' in source


@pytest.mark.parametrize("depth", DEPTHS)
def test_aux_head_is_a_side_branch_only_when_asked(depth):
    assert "auxiliary" not in to_dot("inception_v3", depth=depth)
    source = to_dot("inception_v3", depth=depth, aux_logits=True)
    assert 'subgraph "cluster_aux"' in source and "auxiliary classifier" in source
    assert len(re.findall(r"style=dashed", source)) == 1
    tap = {"stage": "inception_b", "block": "inception_b.mixed_6e",
           "layer": "inception_b.mixed_6e/concat"}[depth]
    assert re.search(rf'"{re.escape(tap)}" -> "aux[^"]*" \[label="768 x 17 x 17", style=dashed',
                     source)
    googlenet = to_dot("googlenet", aux_logits=True)
    assert 'subgraph "cluster_aux1"' in googlenet and 'subgraph "cluster_aux2"' in googlenet


def test_config_passes_through_to_build():
    assert 'label="3 x 331 x 331"' in to_dot("inception_v3", input_size=331)
    source = to_dot("inception_resnet_v2", repeats=[2, 3, 2], scale=0.3)
    assert "x2" in source and "x3" in source and "+ x0.3" in source
    assert 'label="2080 x 8 x 8"' in source
    assert "1x1 conv, 96" in to_dot("inception_v3", depth="layer", width=0.5)  # 192 halved


@pytest.mark.parametrize("kwargs", [
    {"scale": 0.1},  # inception_v4 has no residual blocks
    {"input_size": 8},
    {"depth": "module"},
    {"colour": "red"},
    {"device": "cpu"},
])
def test_invalid_options_raise_config_error(kwargs):
    with pytest.raises(ConfigError):
        to_dot("inception_v4", **kwargs)


def test_drawings_are_cached_by_variant_config_and_depth():
    assert to_dot("inception_v4", repeats=[1, 2, 1]) is to_dot("inception_v4", repeats=(1, 2, 1))
    assert to_dot("inception_v4", depth="stage") is not to_dot("inception_v4", depth="block")


def test_labels_and_ids_are_quoted_safely():
    assert _quote('a "b" \\N\nc') == r'"a \"b\" \\N\nc"'


def test_render_svg_and_png(dot_binary):
    source = to_dot("googlenet", depth="stage")
    svg = render(source, "svg")
    assert isinstance(svg, bytes) and (svg.startswith(b"<?xml") or b"<svg" in svg)
    assert render(source, "png").startswith(b"\x89PNG")
    with pytest.raises(ValueError, match="svg, png"):
        render(source, "pdf")


def test_render_without_dot_says_how_to_get_it(monkeypatch):
    source = to_dot("googlenet", depth="stage")
    monkeypatch.setattr(shutil, "which", lambda *args, **kwargs: None)
    with pytest.raises(GraphvizMissing, match=re.escape(MISSING)):
        render(source, "svg")
    monkeypatch.undo()
    monkeypatch.setenv("PATH", "")
    with pytest.raises(GraphvizMissing) as info:
        render(source, "png")
    assert str(info.value).startswith("Graphviz's `dot` program is not installed")
    assert isinstance(info.value, RuntimeError)
