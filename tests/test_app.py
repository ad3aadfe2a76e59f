"""The Streamlit pages (streamlit.testing.v1.AppTest) and the pure code behind them."""


import pytest
import torch
from apptest_helpers import app, clean, metric  # tests/ on sys.path
from streamlit.testing.v1 import AppTest

from explorer.analysis import charts, lessons
from explorer.analysis.compare import compare_rows
from explorer.analysis.rows import analyze


def first_table(at: AppTest):
    return at.dataframe[0].value


# -- pages -----------------------------------------------------------------------------------

@pytest.mark.parametrize("page", [None, "inspect", "compare", "learn"])
def test_every_page_renders_without_error(page):
    at = clean(app(page))
    assert not at.error, [e.value for e in at.error]
    assert at.title


def test_overview_lists_the_family_and_opens_inspect():
    at = clean(app())
    assert at.title[0].value == "Inception Explorer"
    assert len(at.get("plotly_chart")) == 1  # the timeline
    buttons = [b for b in at.button if b.label == "Inspect"]
    assert len(buttons) == 12  # the seven Inception networks, then the five ResNet baselines
    assert [b.key for b in buttons][7:] == [f"inspect_{v}" for v in (
        "resnet50", "resnet101", "resnet152", "resnetv2_50", "resnetv2_101")]
    text = " ".join(m.value for m in at.markdown)
    assert "Inception-ResNet-v2" in text and "55.84 M" in text and "80.5 %" in text
    at.button(key="inspect_inception_v4").click().run()
    clean(at)
    assert at.title[0].value == "Inception-v4"
    assert at.selectbox(key="variant").value == "inception_v4"


def test_inspect_has_its_widgets_graph_table_and_downloads():
    at = clean(app("inspect"))
    for key in ("variant", "layout"):
        assert at.selectbox(key=key)
    for key in ("size", "width", "classes"):
        assert at.number_input(key=key)
    assert at.checkbox(key="aux")
    assert at.radio(key="depth").value == "block"
    graph = at.get("bidi_component")  # the explorer's graph: Graphviz's SVG, a node per stage
    assert len(graph) == 1 and graph[0].proto.json.count('class=\\"node\\"') == 8  # input, 6 stages, head
    assert {b.label for b in at.get("download_button")} >= {"DOT", "CSV", "SVG", "PNG"}
    table = first_table(at)
    assert at.selectbox(key="variant").value == "googlenet"  # the family's first
    assert table["output"].iloc[0] == "64 x 112 x 112"  # shapes as "C x H x W" text
    assert any("multiply-accumulates" in c.value for c in at.caption)
    # the charts along the depth are made only while their expander is open
    assert [e.label for e in at.expander] == ["Charts along the depth: feature maps, receptive field"]
    assert len(at.get("plotly_chart")) == 0
    at.session_state["depth_charts"] = True  # what a click on the expander sets
    assert len(clean(at.run()).get("plotly_chart")) == 2  # feature maps, receptive fields
    at.selectbox(key="variant").set_value("inception_v3")
    assert len(clean(at.run()).get("plotly_chart")) == 2  # open stays open on another variant


def test_changing_the_variant_changes_the_table_and_totals():
    at = clean(app("inspect"))
    before, params_before = first_table(at), metric(at, "parameters")
    at.selectbox(key="variant").set_value("inception_resnet_v2").run()
    clean(at)
    after = first_table(at)
    assert metric(at, "parameters") == "55.84 M" != params_before
    assert metric(at, "MACs") == charts.fmt_count(analyze("inception_resnet_v2").total_macs)
    assert list(after["name"]) != list(before["name"]) and len(after) == 53
    at.radio(key="depth").set_value("stage").run()
    assert list(first_table(clean(at))["name"])[0] == "stem"


def test_the_url_carries_the_config():
    at = clean(app("inspect", variant="inception_resnet_v2", layout="paper", scale="0.3"))
    assert at.title[0].value == "Inception-ResNet-v2"
    expected = analyze("inception_resnet_v2", layout="paper", scale=0.3)
    assert metric(at, "parameters") == charts.fmt_count(expected.total_params)
    assert "residual, + x0.3" in at.get("bidi_component")[0].proto.json


def test_options_appear_only_where_they_apply():
    at = clean(app("inspect", variant="googlenet"))
    keys = {n.key for n in at.number_input}
    assert "scale" not in keys and "rep_1" not in keys
    at.selectbox(key="variant").set_value("inception_v4").run()
    keys = {n.key for n in clean(at).number_input}
    assert {"rep_1", "rep_2", "rep_3"} <= keys and "scale" not in keys
    assert at.checkbox(key="aux").disabled  # v4 has no auxiliary head
    at.number_input(key="rep_2").set_value(2).run()
    assert metric(clean(at), "MACs") == charts.fmt_count(
        analyze("inception_v4", repeats=(4, 2, 3)).total_macs)
    device = at.radio(key="device")
    assert device.options == ["CPU", "GPU (cuda)"]
    assert device.disabled == (not torch.cuda.is_available())


def test_a_bad_config_is_an_error_message_not_an_exception():
    at = clean(app("inspect"))
    at.selectbox(key="variant").set_value("inception_v3").run()
    at.number_input(key="size").set_value(32).run()
    clean(at)
    assert len(at.error) == 1
    assert "below inception_v3's minimum of 75x75" in at.error[0].value
    assert not at.get("bidi_component") and not at.dataframe
    at.number_input(key="size").set_value(None).run()
    assert not clean(at).error


def test_compare_table_and_charts():
    at = clean(app("compare"))
    table = first_table(at)
    assert list(table["variant"]) == ["inception_v3", "inception_v4", "inception_resnet_v2",
                                      "resnet50"]
    assert list(table["top-1 %"]) == [77.294, 80.156, 80.462, 80.858]
    sources = next(c.value for c in at.caption if c.value.startswith("Accuracy sources: "))
    for variant in table["variant"]:  # each row's source, under the table (too wide inside it)
        assert f"{variant}: {compare_rows([variant])[0]['accuracy_source']}" in sources
    assert len(at.get("plotly_chart")) == 3
    assert at.button[0].label == "Measure on CPU"  # latency on request: tests/test_latency.py


def test_compare_reports_sizes_a_variant_cannot_take():
    at = clean(app("compare"))
    at.multiselect(key="variants").set_value(["googlenet", "inception_v3"]).run()
    at.number_input(key="compare_size").set_value(64).run()
    clean(at)
    assert len(at.error) == 1 and at.error[0].value.startswith("inception_v3:")
    assert list(first_table(at)["variant"]) == ["googlenet"]


def test_learn_computes_its_numbers():
    at = clean(app("learn"))
    assert metric(at, "saving") == "28.0 %"
    at.slider(key="f_n").set_value(3).run()
    assert [m.value for m in clean(at).metric if m.label == "saving"][1] == "33.3 %"
    assert len(at.latex) == 2
    ladder = next(t.value for t in at.table if "our GMACs" in t.value)
    assert list(ladder["our GMACs"])[:3] == ["1.58", "1.50", "2.03"]


# -- the pure code behind the pages ----------------------------------------------------------

def test_factorization_savings():
    assert lessons.factorize_5x5(64, 17)["saving"] == pytest.approx(1 - 18 / 25)
    assert lessons.factorize_asymmetric(3, 64, 17)["saving"] == pytest.approx(1 / 3)
    assert lessons.conv_macs(17, 64, 32, 1, 7) == 17 * 17 * 32 * 64 * 7


def test_grid_reduction_costs_and_bottleneck():
    conv_pool, pool_conv, parallel = lessons.grid_reduction(320, 35)
    assert conv_pool["MACs"] == 35 * 35 * 640 * 320 * 9
    assert pool_conv["MACs"] == 17 * 17 * 640 * 320 * 9
    assert parallel["MACs"] == pool_conv["MACs"] // 2
    assert [w["bottleneck"] for w in (conv_pool, pool_conv, parallel)] == [False, True, False]
    assert {w["output"] for w in (conv_pool, pool_conv, parallel)} == {"640 x 17 x 17"}


def test_residual_scales_and_label_smoothing():
    from explorer import build
    scales = lessons.residual_blocks(build("inception_resnet_v2", device="meta"))
    assert len(scales) == 40 and scales[0]["scale"] == pytest.approx(0.17)
    assert scales[-1] == {"block": "inception_resnet_c.9", "scale": 1.0, "relu": False}
    assert lessons.std_growth([1.0] * 4) == pytest.approx(4.0)
    q = lessons.label_smoothing(10, 0.1, true_class=3)
    assert sum(q) == pytest.approx(1.0) and q[3] == pytest.approx(0.91)


def test_charts_build_from_analysis_dicts():
    result = analyze("inception_v3").to_dict()
    stages = {v: analyze(v, depth="stage").to_dict() for v in ("inception_v3", "googlenet")}
    row = {"variant": "inception_v3", "total_params": 1e7, "total_macs": 5e9, "top1": 77.3,
           "accuracy_source": "x"}
    figs = [charts.feature_maps(result), charts.params_macs_bars([row]),
            charts.accuracy_vs_macs([row, {**row, "variant": "v2", "top1": None}]),
            charts.stage_macs(stages),
            charts.timeline([{"title": "Inception-v3", "arxiv": "1512.00567", "top1": None,
                              "total_macs": 5e9, "total_params": 2e7}])]
    assert all(f.data for f in figs)
    assert len(figs[2].data) == 1  # no published accuracy: not plotted
    stacked = figs[3]
    assert {t.legendgroup for t in stacked.data} == {"stem", "A", "reduction", "B", "C", "head"}
    v3 = [t for t in stacked.data if t.x[0] == "inception_v3"]
    assert sum(t.y[0] for t in v3) == pytest.approx(result["total_macs"] / 1e9)
    assert charts.arxiv_month("1409.4842").isoformat() == "2014-09-01"
    assert charts.short_title("BN-Inception (the v4 paper's Inception-v2)") == "BN-Inception"
    assert charts.table_records(result)[0]["input"] == "3 x 299 x 299"


def test_inspect_times_a_forward_pass_on_request():
    at = clean(app("inspect"))
    assert not at.success
    at.button[0].click().run()
    assert clean(at).success[0].value.startswith("median ")
    assert "on CPU with" in at.success[0].value


def test_without_graphviz_the_svg_download_becomes_a_note(monkeypatch):
    monkeypatch.setattr("explorer.analysis.graph.shutil.which", lambda name: None)
    at = clean(app("inspect", width="0.75"))  # a config whose SVG is not cached yet
    assert not {"SVG", "PNG"} & {b.label for b in at.get("download_button")}
    assert any("Graphviz's `dot` program is not installed" in i.value for i in at.info)
    assert len(at.get("graphviz_chart")) == 1  # the browser draws it without `dot`
