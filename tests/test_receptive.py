"""Receptive fields: hand-checked cases, published figures, and an independent measurement.

The measurement: with every weight positive, every bias zero, identity batch norms and max
pools replaced by average pools, every input pixel that can influence an output unit gets a
non-zero gradient (no ReLU is ever off, no max picks one pixel). So the first and last rows and
columns of the input whose gradient is non-zero are the unit's receptive field, measured
without any of the arithmetic under test. Gradients at a field's edge come through ~100 small
weights (down to 1e-123 for Inception-ResNet-v2): float64 keeps them above zero.

Width only changes channels, never fields, so the networks are measured at width ~0 (one
channel per conv). Fields are separable (height and width never mix), so the "large enough
for the whole field" measurement uses a tall image (big x the network's smallest size) for the
height and a wide one for the width, a fraction of the cost of a big square.
"""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from networks import distinct_layouts
from torch import nn

import explorer
from explorer.analysis.receptive import (
    PUBLISHED,
    Axis,
    Unsupported,
    fields,
    published,
    sees_whole_input,
    window,
)
from explorer.analysis.rows import analyze
from explorer.cli import main
from explorer.spec.compose import concat, conv, head, layer, maxpool, network, residual, stage
from explorer.spec.errors import ShapeError
from explorer.variants import VARIANTS

# Each distinct network once (inception_v4's and bn_inception's two layouts are one network; a
# deeper ResNet is its shallower sibling's blocks, more of them: tests/networks.py).
NETWORKS = list(distinct_layouts())


def axis(f, i=0) -> tuple:
    a = f[i]
    return a.size, a.rf, a.jump, a.start


def run(*blocks, size):
    """Fields of a one-stage network ``n`` made of ``blocks`` (spec layers or blocks), channels
    lifted from the RGB input by the first layer; ``""`` is its output."""
    return fields(network({"n": stage("n", list(blocks), "stage")}, head({})), size)


# -- hand-checked cases --------------------------------------------------------------------------

def test_two_3x3_see_what_one_5x5_sees():
    two, _ = run(conv(4, 3, padding=1), conv(4, 3, padding=1), size=35)
    five, _ = run(conv(4, 5, padding=2), size=35)
    assert axis(two[""]) == axis(five[""]) == (35, 5, 1, 0)
    assert axis(two[""], 1) == axis(five[""], 1)


def test_1x7_then_7x1_is_7x7_and_each_alone_is_one_sided():
    one_by_seven, _ = run(conv(4, (1, 7), padding=(0, 3)), size=17)
    assert (one_by_seven[""][0].rf, one_by_seven[""][1].rf) == (1, 7)
    pair, _ = run(conv(4, (1, 7), padding=(0, 3)), conv(4, (7, 1), padding=(3, 0)), size=17)
    assert (pair[""][0].rf, pair[""][1].rf) == (7, 7)   # torchscan (first dim only): 13 x 13


def test_stride_2_reduction():
    """Inception-v3's Figure 10 block on 35x35: the deepest branch, 1x1 -> 3x3 -> 3x3/2,
    sees 5 pixels; the 3x3/2 conv and pool beside it 3, centred on the same pixel 1."""
    from explorer.spec.compose import Widths
    from explorer.variants.inception_v3 import reduction_a
    f, notes = run(reduction_a(Widths(0.05)), size=35)
    assert axis(f["n.0"]) == (17, 5, 2, 1) and notes == []
    assert axis(f["n.0.branches.3x3"]) == axis(f["n.0.branches.pool"]) == (17, 3, 2, 1)
    pool, _ = run(maxpool(3, 2, ceil_mode=True), size=112)  # ceil mode: one more unit
    assert axis(pool[""]) == (56, 3, 2, 1)
    assert pool[""][0].size == nn.MaxPool2d(3, 2, ceil_mode=True)(torch.zeros(1, 1, 112, 112)).shape[2]


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 40), k=st.integers(1, 7), s=st.integers(1, 3), d=st.integers(1, 2),
       pad=st.integers(0, 3), ceil=st.booleans())
def test_window_sizes_follow_pytorch(n, k, s, d, pad, ceil):
    """Output sizes with padding, dilation and ceil mode, as PyTorch's max pool computes them."""
    assume(pad <= k // 2 and d * (k - 1) + 1 <= n + 2 * pad)
    pool = nn.MaxPool2d((k, 1), (s, 1), (pad, 0), (d, 1), ceil_mode=ceil)
    out = pool(torch.empty(1, 1, n, 1, device="meta"))
    a = window(Axis(n, 1, 1, 0), k, s, pad, d, ceil)
    assert a.size == out.shape[2]
    assert (a.rf, a.jump, a.start) == (d * (k - 1) + 1, s, d * (k - 1) / 2 - pad)


def test_branches_with_different_fields_take_the_largest():
    block = concat({"1x1": conv(2, 1), "5x5": [conv(2, 1), conv(2, 5, padding=2)],
                    "3x1": conv(2, (3, 1), padding=(1, 0))})
    f, notes = run(block, size=20)
    assert (f["n.0"][0].rf, f["n.0"][1].rf) == (5, 5) and notes == []
    assert (f["n.0.branches.3x1"][0].rf, f["n.0.branches.3x1"][1].rf) == (3, 1)


def test_misaligned_branches_are_reported_and_their_field_is_the_hull():
    """BN-Inception's stride-2 module: a padded 3x3/2 conv (first centre on pixel 0) beside an
    unpadded 3x3/2 pool (first centre on pixel 1): together they see pixels -1..2."""
    block = concat({"conv": conv(4, 3, 2, 1), "pool": maxpool(3, 2, ceil_mode=True)})
    f, notes = run(block, size=28)
    assert axis(f["n.0.branches.conv"]) == (14, 3, 2, 0)
    assert axis(f["n.0.branches.pool"]) == (14, 3, 2, 1)
    assert axis(f["n.0"]) == (14, 4, 2, 0.5)
    assert notes == ["n.0: branch centres differ by 1 x 1 input px (h x w); its field is the hull "
                     "of theirs"]


def test_residual_add_joins_the_shortcut_and_the_branch():
    block = residual({"3x3": conv(4, 3, padding=1), "1x1": conv(4, 1)}, 0.2)
    f, _ = run(conv(4, 3), block, size=12)
    assert f["n.1.concat"][0].rf == 5 and f["n.1.add"][0].rf == 5 and f["n.1"] == f["n.1.add"]
    shortcut_wider = residual({"1x1": conv(4, 1)}, 0.2)   # the add never shrinks a field
    g, _ = run(conv(4, 5), shortcut_wider, size=12)
    assert g["n.1"][0].rf == 5


def test_unmergeable_branches_are_refused():
    with pytest.raises(ShapeError, match="their grids must agree"):
        run(concat({"a": conv(2, 1), "b": conv(2, 1, 2)}), size=16)
    with pytest.raises(Unsupported, match="different jumps"):  # same size, different jumps
        run(concat({"a": conv(2, 1), "b": [conv(2, 3, 2, 1), layer("adaptive_avgpool", size=16)]}),
            size=16)


def test_global_pool_and_classifier_see_the_whole_map():
    f, _ = fields(explorer.build("inception_v3", device="meta"), 299)
    last = f["inception_c.mixed_7c"][0]
    assert f["head.pool"][0].rf == f["head"][0].rf == last.rf + 7 * 32 == 1535
    assert sees_whole_input(f["head"], 299)
    # GoogLeNet's aux head pools 14 -> 4 in unevenly spaced windows; its fc sees the whole map
    g, _ = fields(explorer.describe("googlenet", aux_logits=True), 224)
    tap = g["inception_4.inception_4a"][0]
    assert g["aux1.pool"][0].rf == tap.rf + 3 * tap.jump     # the first window spans 4 units
    assert g["aux1"][0].rf == tap.rf + 13 * tap.jump


# -- published figures -----------------------------------------------------------------------------

@pytest.mark.parametrize("variant", list(PUBLISHED))
def test_published_receptive_fields(variant):
    """Every end-point listed by google-research/receptive_field for this network."""
    rows = {r.name: r for r in analyze(variant, depth="block").rows}
    for name, (rf, stride, padding) in PUBLISHED[variant].items():
        r = rows[name]
        assert r.rf == (rf, rf) and r.jump == (stride, stride), name
        if padding is not None:
            assert (rf - 1) / 2 - r.rf_offset[0] == padding, name
        assert published(variant, "released", name) == (rf, stride, padding)
        assert published(variant, "paper", name) is None                 # not the TF model
        assert published(variant, "released", name, repeats=(1, 1, 1)) is None


# -- the independent measurement ------------------------------------------------------------------

def averaging(model: nn.Module) -> nn.Module:
    """Positive weights, zero biases, max pools -> average pools; float64, eval mode."""
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.MaxPool2d):
                setattr(parent, name, nn.AvgPool2d(child.kernel_size, child.stride, child.padding,
                                                   child.ceil_mode, count_include_pad=False))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.fill_(1.0 / m.weight[0].numel())   # averages: activations stay ~1
                if m.bias is not None:
                    m.bias.zero_()
    return model.double().eval()


def measured_extents(model: nn.Module, height: int, width: int, units) -> list[tuple]:
    """For each (i, j) unit of the last feature map: the (first, last) input row and column
    whose gradient is non-zero (all the unit's channels together)."""
    x = torch.ones(1, 3, height, width, dtype=torch.float64, requires_grad=True)
    out, _ = model.forward_features(x)
    found = []
    for i, j in units:
        grad, = torch.autograd.grad(out[0, :, i, j].sum(), x, retain_graph=True)
        seen = grad[0].abs().sum(0) > 0
        rows, cols = seen.any(1).nonzero().flatten(), seen.any(0).nonzero().flatten()
        found.append(((rows.min().item(), rows.max().item()),
                      (cols.min().item(), cols.max().item())))
    return found


def computed_extents(h: Axis, w: Axis, height: int, width: int, units) -> list[tuple]:
    return [(h.extent(i, height), w.extent(j, width)) for i, j in units]


def fitting(model, size_of, start: int) -> int:
    """The smallest size >= start at which the network's paths line up (size_of(n) -> input)."""
    for n in range(start, start + 64):
        try:
            fields(model, size_of(n))
            return n
        except (Unsupported, ShapeError):
            continue
    raise AssertionError(f"no size in {start}..{start + 63} fits")


@pytest.fixture(scope="module")
def thin_networks():
    """Each network at width ~0 (one channel per conv), averaging, float64."""
    torch.manual_seed(0)
    return {(v, lay): averaging(explorer.build(v, layout=lay, width=0.001)) for v, lay in NETWORKS}


@pytest.mark.parametrize("variant,layout", NETWORKS)
def test_gradient_extent_equals_the_computed_field(thin_networks, variant, layout):
    model = thin_networks[variant, layout]
    native = VARIANTS[variant].native_input_size
    last = model.stage_names[-1]

    # native size: the central unit and its neighbour (fields clipped by the image)
    f, _ = fields(model, native)
    h, w = f[last]
    c = (h.size - 1) // 2
    units = [(c, c), (c + 1, c + 1)]
    assert measured_extents(model, native, native, units) == \
        computed_extents(h, w, native, native, units)

    # big enough for the whole field along one axis (the other at the smallest size the
    # network takes): the field is measured unclipped, and moving the unit by one moves it
    # by exactly the jump
    rf = f[last][0].rf
    small = VARIANTS[variant].layouts[layout].min_input_size
    for axis_index in (0, 1):
        def size_of(n):
            return (n, small) if axis_index == 0 else (small, n)
        n = fitting(model, size_of, rf + 2 * h.jump)
        height, width = size_of(n)
        fh, fw = fields(model, (height, width))[0][last]
        ch, cw = (fh.size - 1) // 2, (fw.size - 1) // 2
        units = [(ch, cw), (ch + 1, cw) if axis_index == 0 else (ch, cw + 1)]
        big = fh if axis_index == 0 else fw
        first, moved = measured_extents(model, height, width, units)
        lo, hi = first[axis_index]
        assert (lo, hi) == big.extent(units[0][axis_index], n), (variant, layout, axis_index)
        assert lo > 0 and hi < n - 1 and hi - lo + 1 == big.rf   # unclipped: the whole field
        assert moved[axis_index][0] - lo == big.jump == 32


# -- where the fields are reported ------------------------------------------------------------------

def test_rows_carry_fields_at_every_depth_and_mark_the_whole_input():
    for depth in ("stage", "block", "layer"):
        result = analyze("inception_v3", depth=depth)
        assert all(r.rf and r.jump and r.rf_offset for r in result.rows)
        whole = [r.name for r in result.rows
                 if sees_whole_input(tuple(Axis(*((r.output_shape[1:] or (1, 1))[i], r.rf[i],
                                                      r.jump[i], r.rf_offset[i]))
                                           for i in (0, 1)), 299)]
        assert result.rf_whole_input == whole[0]
    assert analyze("inception_v3").rf_whole_input == "inception_b.mixed_6b"
    layer = {r.name: r for r in analyze("inception_resnet_v2", depth="layer").rows}
    assert layer["inception_resnet_a.0.add"].rf == layer["inception_resnet_a.0.concat"].rf == (95, 95)


def test_cli_summary_json_and_table(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("INCEPTION_EXPLORER_CACHE", str(tmp_path))
    assert main(["summary", "bn_inception", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    rows = {r["name"]: r for r in data["rows"]}
    assert rows["inception_5.inception_5b"]["rf"] == [699, 699]
    assert rows["inception_5.inception_5b"]["jump"] == [32, 32]
    assert data["rf_whole_input"] == "inception_4.inception_4b"
    assert any("inception_3c" in n for n in data["rf_notes"])
    assert main(["summary", "bn_inception"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("inception_4.inception_4b"))
    assert "251x251" in line and line.endswith(" *")
    assert "* inception_4.inception_4b: the first row whose central unit sees the whole" in out


# -- the pages ----------------------------------------------------------------------------------------

def test_charts_and_lessons_show_computed_fields():
    from explorer.analysis import charts, lessons
    result = analyze("inception_v3").to_dict()
    records = charts.table_records(result)
    starred = [r["name"] for r in records if r["RF (px)"].endswith("★")]
    assert starred == ["inception_b.mixed_6b"]
    last = next(r for r in records if r["name"] == "inception_c.mixed_7c")
    assert last["RF (px)"] == "1311 x 1311" and last["jump (px)"] == "32 x 32"
    fig = charts.receptive_fields(result)
    at = list(fig.data[0].x).index("inception_c.mixed_7c")
    assert fig.data[0].y[at] == 1311 and "field" in fig.layout.title.text
    five, threes = lessons.factorization_fields(64, 17)
    assert five["receptive field"] == threes["receptive field"] == "5 x 5"
    assert (five["MACs"], threes["MACs"]) == (lessons.factorize_5x5(64, 17)["5x5"],
                                              lessons.factorize_5x5(64, 17)["two 3x3"])
    square, pair = lessons.factorization_fields(64, 17, 7)
    assert square["receptive field"] == pair["receptive field"] == "7 x 7"
    assert pair["MACs"] == lessons.factorize_asymmetric(7, 64, 17)["1 x n + n x 1"] < square["MACs"]
    ways = lessons.reduction_fields(32, 35)
    assert [(w["field after"], w["jump after"]) for w in ways] == [
        ("5 x 5", "2 x 2"), ("7 x 7", "2 x 2"), ("3 x 3", "2 x 2")]
    assert [w["MACs"] for w in ways] == [w["MACs"] for w in lessons.grid_reduction(32, 35)]


def test_inspect_and_learn_pages_show_fields():
    from streamlit.testing.v1 import AppTest
    app = str(__import__("pathlib").Path(__file__).resolve().parents[1] / "explorer" / "app.py")
    at = AppTest.from_file(app, default_timeout=90)
    at.query_params.update({"variant": "bn_inception", "block": "inception_5.inception_5b",
                            "overlay": "RF"})
    at.switch_page("../pages/inspect.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    table = next(d.value for d in at.dataframe if "RF (px)" in d.value.columns)
    assert "jump (px)" in table.columns
    assert (table["RF (px)"] == "251 x 251 ★").sum() == 1
    captions = " ".join(c.value for c in at.caption)
    assert "★ inception_4.inception_4b: the first block whose central unit" in captions
    assert "inception_3c: branch centres differ by 8 x 8" in captions
    details = " ".join(m.value for m in at.markdown)
    assert "**receptive field**: 699 x 699 px, jump 32 x 32 px" in details
    assert "**published** (TF-slim): field 699 px, stride 32 px" in details
    graph = at.get("bidi_component")[0].proto.json   # the overlay: colour and label by field
    assert "colour: receptive field" in graph and "891 px" in graph   # the head sees 891 px
    at.switch_page("../pages/learn.py").run()
    assert not at.exception, [e.value for e in at.exception]
    fields_tables = [t.value for t in at.table if "receptive field" in t.value.columns]
    assert [list(t["receptive field"]) for t in fields_tables] == [["5 x 5", "5 x 5"],
                                                                   ["7 x 7", "7 x 7"]]
    reduction = next(t.value for t in at.table if "field after" in t.value.columns)
    assert list(reduction["field after"]) == ["5 x 5", "7 x 7", "3 x 3"]
    assert any("mixed_6a takes the field from 127 x 127 to 159 x 159" in c.value
               for c in at.caption)


def test_graph_overlay_colours_by_field():
    from explorer.analysis.graph import overlay_values, to_dot, value_text
    rows = analyze("inception_v3", depth="stage").to_dict()["rows"]
    values = overlay_values(rows, "rf")
    assert values["inception_c"] == 1311 and values["stem"] == 31
    assert value_text(1311.0, "rf") == "1311 px"
    source = to_dot("inception_v3", expanded=(), values=values, overlay="rf")
    assert "colour: receptive field" in source and "1311 px" in source
