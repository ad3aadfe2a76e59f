"""The DOT drawings: they lay out with Graphviz and read like the papers' figures."""

import re
import shutil
import subprocess

import pytest

from explorer import VARIANTS, ConfigError, build, list_variants
from explorer.analysis.graph import (
    DEPTHS,
    MISSING,
    GraphvizMissing,
    _text,
    expandable,
    legend,
    overlay_values,
    render,
    to_dot,
    unknown_names,
    value_range,
)
from explorer.analysis.rows import analyze
from explorer.runtime.torchinfo_view import torchinfo_text

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
    assert source.startswith(f"digraph {variant} {{") and "rankdir=TB" in source
    for stage in build(variant, device="meta").stage_names:
        assert f"subgraph cluster_{stage} {{" in source
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
    assert len(re.findall(r'^\s+"inception_resnet_b\.\d+" \[label', full, re.M)) == 20


def test_ir_v2_layers_show_the_scaled_residual_add(dot_binary):
    source = to_dot("inception_resnet_v2", depth="layer")
    assert 'label="+ x0.17"' in source and 'label="+ x0.1"' in source
    assert 'label="1x1 conv, 320 (linear)"' in source  # the filter expansion back to 320
    assert 'label="concat 128"' in source
    # identity shortcut: from the block's input (the stem's last concat) to the add
    assert '"stem.mixed_5b.concat" -> "inception_resnet_a.0.add"' in source
    assert '"inception_resnet_c.0.relu"' in source
    assert '"inception_resnet_c.9.add"' in source and '"inception_resnet_c.9.relu"' not in source
    assert "x10" in source  # repeated blocks are drawn once at layer depth too
    lay_out(dot_binary, source)


def test_v3_layers_read_like_the_paper():
    source = to_dot("inception_v3", depth="layer")
    assert 'label="concat 768"' in source
    assert 'label="768 x 17 x 17"' in source
    assert 'label="1x7 conv, 192"' in source and 'label="3x3 max pool /2"' in source
    # Figure 7's expanded filter bank: a nested fork into 1x3 and 3x1, joined by its own concat
    assert '"inception_c.mixed_7b.branches.3x3.1.concat" [label="concat 768"' in source
    assert 'label="1x3 conv, 384"' in source and 'label="3x1 conv, 384"' in source


@pytest.mark.parametrize("depth", DEPTHS)
def test_aux_head_is_a_side_branch_only_when_asked(depth):
    assert "auxiliary" not in to_dot("inception_v3", depth=depth)
    source = to_dot("inception_v3", depth=depth, aux_logits=True)
    assert "subgraph cluster_aux {" in source and "auxiliary classifier" in source
    assert len(re.findall(r"style=dashed", source)) == 1
    tap = {"stage": "inception_b", "block": "inception_b.mixed_6e",
           "layer": "inception_b.mixed_6e.concat"}[depth]
    assert re.search(rf'"?{re.escape(tap)}"? -> "?aux[^ ]*"? \[label="768 x 17 x 17" style=dashed',
                     source)
    googlenet = to_dot("googlenet", aux_logits=True)
    assert "subgraph cluster_aux1 {" in googlenet and "subgraph cluster_aux2 {" in googlenet


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


def test_labels_keep_backslashes_and_break_lines():
    assert _text('a "b" \\N\nc') == 'a "b" \\\\N\\nc'


# -- the explorer's view: stages and blocks expanded one by one ---------------------------------

TITLE = re.compile(r'<g id="node\d+" class="node">\s*<title>([^<]*)</title>')


def node_titles(svg: bytes) -> list[str]:
    import html
    return [html.unescape(t) for t in TITLE.findall(svg.decode())]


def drawable_names(variant: str, **config) -> set[str]:
    """What a node may be called: the analysis rows at every depth (joins included), the
    modules (a dropout has no row), the input; the ReLU after a residual add is drawn but has
    no module of its own."""
    rows = {r.name for d in DEPTHS for r in analyze(variant, depth=d, **config).rows}
    modules = {n for n, _ in build(variant, device="meta", **config).named_modules() if n}
    return rows | modules | set(expandable(variant, **config)) | {"input"}


def partial_expansion(variant: str, **config) -> set[str]:
    """The first stage of several blocks, its second block, a one-block stage and the head."""
    model = build(variant, device="meta", **config)
    stages = {s: list(getattr(model, s).named_children()) for s in model.stage_names}
    many = next(s for s, blocks in stages.items() if len(blocks) > 1 and s != "stem")
    opened = {many, f"{many}.{stages[many][1][0]}", "head"}
    opened |= {s for s, blocks in stages.items() if len(blocks) == 1}
    return opened


@pytest.mark.parametrize("variant", list_variants())
def test_partially_expanded_network_lays_out_with_its_names(dot_binary, variant):
    opened = partial_expansion(variant)
    source = to_dot(variant, expanded=opened)
    model = build(variant, device="meta")
    titles = node_titles(lay_out(dot_binary, source))
    assert len(titles) == len(set(titles))
    known = drawable_names(variant)
    assert {t for t in titles if not t.endswith(".relu")} <= known
    for stage in model.stage_names:
        blocks = [f"{stage}.{b}" for b, _ in getattr(model, stage).named_children()]
        if stage in opened:  # a box of its blocks, each one node unless expanded itself
            assert f"cluster_{stage}" in source and stage not in titles
            for block in blocks:
                if block in opened:
                    assert f'subgraph "cluster_{block}"' in source and block not in titles
                    assert any(t.startswith(block + ".branches.") for t in titles)
                    joins = {f"{block}.concat", f"{block}.add"}  # a bottleneck only adds
                    assert joins & set(titles)
                elif len(blocks) > 1:
                    assert block in titles
        else:  # one node, none of its blocks
            assert stage in titles and not any(t.startswith(stage + ".") for t in titles)
    assert "head" not in titles and "head.fc" in titles  # the head opened into its layers


@pytest.mark.parametrize("variant", list_variants())
def test_collapsed_view_is_one_node_per_stage(dot_binary, variant):
    model = build(variant, device="meta", aux_logits=VARIANTS[variant].layouts[
        VARIANTS[variant].default_layout].has_aux)
    config = {"aux_logits": model.config.aux_logits}
    titles = node_titles(lay_out(dot_binary, to_dot(variant, expanded=(), **config)))
    assert sorted(titles) == sorted(["input", *model.stage_names, "head", *model.aux_taps.values()])


def test_expand_then_collapse_gives_the_same_drawing_and_unknown_names_are_ignored():
    base = to_dot("inception_v4", expanded=set())
    assert to_dot("inception_v4", expanded={"inception_a"}) != base
    assert to_dot("inception_v4", expanded=["<img src=x onerror=alert(1)>", "nope"]) == base
    known = expandable("inception_v4")
    assert unknown_names(["inception_a", "x", "<b>", "x"], known) == ["x", "<b>"]
    assert list(known)[:3] == ["stem", "stem.mixed_3a", "stem.mixed_4a"]  # model order


def test_fully_expanded_ir_v2_draws_about_500_nodes(dot_binary):
    source = to_dot("inception_resnet_v2", expanded=expandable("inception_resnet_v2"))
    titles = node_titles(render(source, "svg"))  # how long `dot` takes: benchmarks/limits.py
    assert 350 <= len(titles) <= 600
    assert sum(t.startswith("inception_resnet_b.") and t.endswith(".add") for t in titles) == 20


def test_overlay_colours_nodes_on_one_scale_with_a_legend(dot_binary):
    rows = [r.__dict__ | {"input_shape": r.input_shape} for d in DEPTHS
            for r in analyze("inception_v4", depth=d).rows]
    macs = overlay_values(rows, "macs")
    assert macs["inception_a"] == sum(macs[f"inception_a.{i}"] for i in range(4))
    source = to_dot("inception_v4", expanded=(), values=macs, overlay="macs")
    lo, hi = value_range(macs)
    assert lo == min(v for v in macs.values() if v > 0) and hi == max(macs.values())
    assert "colour: MACs" in source and "log scale" in source
    assert "\\n" + "2.58 G" in source or "G" in source.split("inception_b [")[1].split("]")[0]
    items = legend(macs, overlay="macs")
    assert len(items) == 5 and items[0][0] == "#ffffcc" and items[-1][0] == "#800026"
    # the most expensive stage gets the darkest colour, white text
    darkest = max((v, k) for k, v in macs.items() if k in expandable("inception_v4"))[1]
    node = re.search(rf"\t{darkest} \[([^\]]*)\]", source).group(1)
    assert 'fillcolor="#800026"' in node and "fontcolor=white" in node
    # a shared scale: the same value gets the same colour in two drawings
    wide = (lo / 10, hi * 10)
    a = to_dot("inception_v4", expanded=(), values=macs, overlay="macs", value_scale=wide)
    assert 'fillcolor="#800026"' not in a
    lay_out(dot_binary, a)
    node_font = re.compile(r'node \[fontname="Noto Sans CJK KR" fontsize=(\d+)')
    big = int(node_font.search(to_dot("inception_v4", expanded=(), projector=True)).group(1))
    assert big > int(node_font.search(to_dot("inception_v4", expanded=())).group(1))


@pytest.mark.parametrize("call", [
    lambda **kw: to_dot("googlenet", **kw),
    lambda **kw: to_dot("googlenet", expanded=(), **kw),
    lambda **kw: analyze("googlenet", **kw),
    lambda **kw: expandable("googlenet", **kw),
    lambda **kw: torchinfo_text("googlenet", **kw),
], ids=["to_dot", "to_dot-expanded", "analyze", "expandable", "torchinfo_text"])
@pytest.mark.parametrize("valid,invalid", [
    ({"aux_logits": True}, {"aux_logits": 1}),
    ({"num_classes": 10}, {"num_classes": 10.0}),
])
def test_cached_functions_validate_whatever_the_call_order(call, valid, invalid):
    from explorer.analysis import graph
    from explorer.analysis import rows as analysis
    from explorer.runtime import torchinfo_view
    for order in ((valid, invalid), (invalid, valid)):
        graph._to_dot.cache_clear(), graph._expandable.cache_clear()
        analysis._analyze_variant.cache_clear(), torchinfo_view._text.cache_clear()
        for kwargs in order:
            if kwargs is invalid:
                with pytest.raises(ConfigError):
                    call(**kwargs)
            else:
                assert call(**kwargs)


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


def test_module_latency_times_every_module_once_per_pass():
    import torch

    from explorer.runtime.timing import module_latency
    model = build("googlenet", device="cpu").eval()
    times = module_latency(model, 96, repeats=2)
    called = {n for n, m in model.named_modules()  # aux heads run in training only
              if n and not n.startswith("aux") and not isinstance(m, torch.nn.ModuleDict)}
    assert set(times) == called
    assert all(t > 0 for t in times.values())
    # a stage's time holds its blocks' (hooks nest): never less than their sum, give or take
    # the timer's resolution
    blocks = [times[f"inception_4.{b}"] for b in ("inception_4a", "inception_4b", "inception_4c")]
    assert times["inception_4"] >= sum(blocks) - 0.05
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


def test_inspect_latency_overlay_is_measured_on_request():
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file("../explorer/app.py", default_timeout=120)
    at.switch_page("../pages/inspect.py")
    at.run()
    at.button_group(key="overlay").set_value("latency").run()
    graph = at.get("bidi_component")[0].proto.json
    assert '"legend": []' in graph and not at.exception
    at.button(key="time_blocks").click().run()
    assert not at.exception, [e.value for e in at.exception]
    graph = at.get("bidi_component")[0].proto.json
    assert '"legend_title": "measured latency:"' in graph and " ms" in graph
    assert any("forward hooks" in c.value for c in at.caption)


def test_a_link_names_one_variant_and_another_starts_afresh():
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file("../explorer/app.py", default_timeout=120)
    at.query_params.update(variant="inception_v4", open="inception_a,bogus",
                           block="inception_a.1")
    at.switch_page("../pages/inspect.py")
    at.run()
    notes = [w.value for w in at.warning]  # markdown source: the note's text escaped
    assert len(notes) == 1 and "open=" in notes[0] and notes[0].endswith(" bogus")
    assert at.query_params["open"] in ("inception_a", ["inception_a"])
    assert at.query_params["block"] in ("inception_a.1", ["inception_a.1"])
    at.selectbox(key="variant").set_value("inception_resnet_v2").run()
    assert not at.warning and not at.exception
    assert "open" not in at.query_params and "block" not in at.query_params
    assert at.get("bidi_component")[0].proto.json.count('class=\\"node\\"') == 8
