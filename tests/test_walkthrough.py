"""Issue 11, items 4-12: what a lecturer, a student and an engineer ran into (state and pure code;
the drawing is checked in Chromium by test_walkthrough_browser.py)."""

import io
import json
import re

import pandas as pd
import pytest
from apptest_helpers import app, clean, metric  # tests/ on sys.path

from explorer import build
from explorer.analysis import charts, lessons
from explorer.analysis.compare import compare_config
from explorer.analysis.rows import analyze
from explorer.cli import main
from explorer.core.export import analysis_csv, file_stem, read_csv
from explorer.ui.controls import url_problems
from explorer.variants import VARIANTS, ConfigError

HOSTILE = "<img src=x onerror=alert(1)>"


# -- 4. Overview's Inspect opens the reference configuration -----------------------------------

def test_overview_opens_the_reference_configuration_not_the_last_one():
    at = clean(app("inspect", variant="inception_resnet_v2", size="512", width="0.5",
                   depth="stage", rep_1="3"))
    assert metric(at, "input") == "512 px" and at.radio(key="depth").value == "stage"
    at.switch_page("../pages/overview.py").run()
    clean(at).button(key="inspect_inception_v4").click().run()
    clean(at)
    reference = analyze("inception_v4")
    assert at.title[0].value == "Inception-v4"
    assert metric(at, "parameters") == charts.fmt_count(reference.total_params) == "42.68 M"
    assert metric(at, "input") == "299 px"
    assert at.radio(key="depth").value == "block"
    assert at.number_input(key="width").value == 1.0 and at.number_input(key="size").value is None
    assert at.number_input(key="rep_1").value is None


# -- 5. a link's unknown values get a visible note ---------------------------------------------

def test_an_unknown_variant_in_the_link_is_said_not_silently_replaced():
    at = clean(app("inspect", variant="bogus"))
    assert at.title[0].value.startswith("GoogLeNet")
    assert len(at.warning) == 1 and 'variant "bogus"' in at.warning[0].value
    assert "shows googlenet" in at.warning[0].value
    at.run()  # the URL no longer holds it: the note stays on this page
    assert 'variant "bogus"' in clean(at).warning[0].value
    at.selectbox(key="variant").set_value("inception_v3").run()  # a choice of one's own
    assert not clean(at).warning


def test_other_unusable_link_values_are_named_and_escaped():
    at = clean(app("inspect", variant="googlenet", width="99", scale="0.3", colour=HOSTILE))
    text = at.warning[0].value
    assert 'width "99"' in text and "shows 1" in text
    assert "scale" in text and "googlenet has no residual blocks" in text
    assert '"colour" is not a setting of this page' in text
    at = clean(app("inspect", variant="googlenet", width=HOSTILE))
    text = at.warning[0].value  # markdown: every < > ( ) escaped, so no tag and no link
    assert r"\<img src=x onerror=alert\(1\)\>" in text and not re.search(r"(?<!\\)[<>()]", text)
    # a clean link gets no note
    assert not clean(app("inspect", variant="inception_v4", width="0.50")).warning


@pytest.mark.parametrize("page", [None, "learn"])
def test_pages_without_settings_name_a_links_parameters(page):
    at = clean(app(page, variant="inception_v4"))
    assert len(at.warning) == 1 and '"variant" is not a setting of this page' in at.warning[0].value
    assert not clean(app(page)).warning


def test_the_users_own_changes_get_no_note():
    at = clean(app("inspect", variant="inception_resnet_v2", scale="0.3", rep_1="2"))
    assert not at.warning
    # the URL still holds scale and rep_1 as this run starts: they are the page's, not a link's
    at.selectbox(key="variant").set_value("googlenet").run()
    assert not clean(at).warning


def test_url_problems_pure():
    snap = {"variant": ["bogus"], "width": ["0.5"], "x": ["1"]}
    notes = url_problems(snap, {"width": ["0.5"]}, {"variant": "googlenet", "width": 0.5})
    assert len(notes) == 2 and notes[0].startswith('variant "bogus"') and '"x"' in notes[1]
    # a value at its default leaves the URL but was taken
    assert url_problems({"depth": ["block"]}, {}, {"depth": "block"}) == []


def test_compare_names_what_the_link_asked_for_and_did_not_get():
    at = clean(app("compare", variants=["bogus", "inception_v4"], compare_layout="papr"))
    text = at.warning[0].value
    assert 'variants "bogus" is not one it offers, so it shows inception\\_v4' in text
    assert 'compare_layout "papr"' in text
    assert list(at.dataframe[0].value["variant"]) == ["inception_v4"]


# -- 6. BatchNorm inside the parameter counts ---------------------------------------------------

def test_bn_params_are_the_batchnorm_share_of_params():
    rows = {r.name: r for r in analyze("inception_v4", width=0.5, depth="layer").rows}
    conv = rows["stem.conv_1a"]  # the engineer's hand count: 3x3x3x16 = 432 weights
    assert (conv.params, conv.bn_params) == (464, 32) and conv.params - conv.bn_params == 432
    model = build("inception_v4", device="meta")
    bn = sum(p.numel() for m in model.modules() if "BatchNorm" in type(m).__name__
             for p in m.parameters())
    stage = analyze("inception_v4", depth="stage")
    assert stage.total_bn_params == bn == sum(r.bn_params for r in stage.rows)
    data = json.loads(json.dumps(stage.to_dict()))
    assert data["total_bn_params"] == bn and "BatchNorm" in data["params_convention"]
    assert all("bn_params" in r for r in data["rows"])
    _, csv_rows = read_csv(stage.to_csv())
    assert [int(r["bn_params"]) for r in csv_rows] == [r.bn_params for r in stage.rows]
    longest = max(len(r.name) for r in rows.values())  # the name column shows whole names
    assert charts.name_width({"rows": [{"name": n} for n in rows]}) >= min(380, 8 * longest)
    table = charts.table_records(stage.to_dict())
    assert [r["bn_params"] for r in table] == [r.bn_params for r in stage.rows]


def test_inspect_says_params_include_batchnorm():
    at = clean(app("inspect", variant="inception_v4", width="0.5"))
    assert "bn_params" in at.dataframe[0].value.columns
    assert any("BatchNorm's scale and shift" in c.value for c in at.caption)
    assert next(m for m in at.metric if m.label == "parameters").help.startswith("params: every")
    at = clean(app("inspect", variant="inception_v4", width="0.5", block="stem.conv_1a"))
    details = " ".join(m.value for m in at.markdown)  # the selected node's panel
    assert "**params**: 464 (" in details and "32 of them BatchNorm scale and shift" in details


def test_the_cli_shows_bn_params(capsys):
    assert main(["summary", "inception_v4", "--width", "0.5", "--depth", "layer"]) == 0
    out = capsys.readouterr().out
    assert "bn_params" in out.splitlines()[1] and "BatchNorm scale and shift" in out


# -- 7. Compare takes Inspect's build options -------------------------------------------------

def test_compare_config_applies_what_fits():
    config, skipped = compare_config("googlenet", layout="paper", width=0.5, scale=0.2,
                                     repeats=(2, None, None))
    assert config == {"layout": "paper", "width": 0.5}
    assert len(skipped) == 2 and "scale" in skipped[0] and "repeats" in skipped[1]
    config, skipped = compare_config("inception_resnet_v2", scale=0.2, repeats=(2, None, None))
    assert config == {"scale": 0.2, "repeats": (2, 20, 9)} and not skipped
    config, skipped = compare_config("bn_inception", layout="paper")
    assert config == {"layout": "paper"} and not skipped


def test_the_engineers_question_on_the_command_line(capsys):
    code = main(["compare", "inception_v4", "inception_resnet_v2", "--input-size", "512",
                 "--width", "0.5", "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert code == 0 and [r["input_size"] for r in rows] == [512, 512]
    for r in rows:
        expected = analyze(r["variant"], input_size=512, width=0.5)
        assert (r["total_params"], r["total_macs"]) == (expected.total_params, expected.total_macs)
        assert r["config"]["width"] == 0.5
    assert main(["compare", "googlenet", "--scale", "0.2"]) == 0
    assert "note: scale: googlenet has no residual blocks" in capsys.readouterr().out


def test_the_engineers_question_on_the_compare_page():
    at = clean(app("compare", variants=["inception_v4", "inception_resnet_v2"],
                   compare_size="512", compare_width="0.5"))
    assert not at.warning
    table = at.dataframe[0].value
    assert list(table["input"]) == [512, 512]
    for variant, params in zip(table["variant"], table["params (M)"]):
        assert params == pytest.approx(analyze(variant, input_size=512, width=0.5).total_params
                                       / 1e6)
    at.number_input(key="compare_scale").set_value(0.2).run()
    assert any("scale: inception_v4 has no residual blocks" in c.value for c in clean(at).caption)
    irv2 = at.dataframe[0].value.iloc[1]
    assert irv2["GMACs"] == pytest.approx(
        analyze("inception_resnet_v2", input_size=512, width=0.5, scale=0.2).total_macs / 1e9)


# -- 8. exports say what they are ---------------------------------------------------------------

def test_export_names_and_settings():
    ref = analyze("inception_v4").to_dict()
    half = analyze("inception_v4", input_size=512, width=0.5).to_dict()
    quarter = analyze("inception_v4", input_size=512, width=0.25).to_dict()
    assert file_stem(ref) == "inception_v4_released_299px_block"
    assert file_stem(half) == "inception_v4_released_512px_width0.5_block"
    assert file_stem(quarter) != file_stem(half)
    irv2 = analyze("inception_resnet_v2", depth="stage", num_classes=10, repeats=(1, 2, 1),
                   scale=0.2).to_dict()
    assert file_stem(irv2) == ("inception_resnet_v2_released_299px_classes10_scale0.2_"
                               "repeats1-2-1_stage")
    settings, rows = read_csv(analysis_csv(half))
    assert settings["width"] == 0.5 and settings["input_size"] == 512 and len(rows) == 24
    frame = pd.read_csv(io.StringIO(analysis_csv(half)), comment="#")
    assert list(frame["name"]) == [r["name"] for r in half["rows"]]
    assert half["config"]["width"] == 0.5 and half["config"]["variant"] == "inception_v4"


# -- 9. where the MACs go -------------------------------------------------------------------------

def test_stacked_macs_in_network_order_coloured_by_role():
    stages = {v: analyze(v, depth="stage").to_dict() for v in ("googlenet", "inception_resnet_v2")}
    fig = charts.stage_macs(stages)
    irv2 = [t for t in fig.data if t.x[0] == "inception_resnet_v2"]
    roles = [t.legendgroup for t in irv2]
    assert roles == ["stem", "A", "reduction", "B", "reduction", "C", "head"]  # network order
    colours = {}
    for t in fig.data:
        assert colours.setdefault(t.legendgroup, t.marker.color) == t.marker.color
    assert len({t.marker.color for t in fig.data}) == 6
    assert sum(t.showlegend for t in fig.data) == 6  # one legend entry a role
    assert [t.legendgroup for t in fig.data if t.x[0] == "googlenet"][1:4] == ["A", "reduction", "B"]


# -- 10. Learn --------------------------------------------------------------------------------------

def test_learn_numbers_share_one_format():
    assert lessons.fmt_factor(1_048_576.0) == "x1,048,576" and lessons.fmt_factor(2.1467) == "x2.15"
    rows = lessons.formatted([{"a": None, "b": 1234567, "c": 0.5, "d": True, "e": "x"}], {"c": 1})
    assert rows == [{"a": "–", "b": "1,234,567", "c": "0.5", "d": "yes", "e": "x"}]
    fig = charts.kernel_diagram(7)
    assert len(fig.layout.shapes) == 2 * 49
    assert [a.text for a in fig.layout.annotations] == ["7x7: 49 weights", "1x7 + 7x1: 14 weights"]
    assert any("18 weights" in a.text for a in charts.kernel_diagram(5, stacked=True).layout.annotations)


def test_learn_page_field_cost_links_and_no_none():
    at = clean(app("learn"))
    text = " ".join(m.value for m in at.markdown)
    assert "receptive field stays n x n" in text and "from n² to 2n" in text
    assert len(at.get("plotly_chart")) >= 3  # two diagrams + the residual scales
    for table in at.table:
        assert not table.value.isin(["None", "nan"]).any().any()
    at.select_slider(key="s_scale").set_value(1.0).run()
    # the result, as the section's largest text (issue 24, item 12)
    shown = " ".join(h.proto.body for h in clean(at).get("html"))
    assert ">x1,048,576</div>" in shown and "unscaled: x1,048,576" in shown
    at.button(key="link_1xn").click().run()
    clean(at)
    assert at.title[0].value == "Inception-v3" and at.radio(key="depth").value == "layer"
    assert at.session_state["inspect:inception_v3:block"].startswith("inception_b.")  # selected


# -- 11. timeline ------------------------------------------------------------------------------------

def test_timeline_puts_one_paper_on_one_date():
    rows = [{"title": v.title, "arxiv": v.arxiv, "total_macs": analyze(n).total_macs,
             "total_params": analyze(n).total_params, "top1": None, "baseline": v.baseline}
            for n, v in VARIANTS.items()]
    fig = charts.timeline(rows)
    x = {t.name: t.x[0] for t in fig.data}
    assert x["Inception-v2"] == x["Inception-v3"]
    assert x["Inception-v4"] == x["Inception-ResNet-v1"] == x["Inception-ResNet-v2"]
    assert x["GoogLeNet"] != x["Inception-v4"]
    side = {t.name: t.textposition for t in fig.data}  # close costs: one label above the other
    assert (side["Inception-v4"], side["Inception-ResNet-v2"]) == ("bottom right", "top right")
    assert (side["Inception-v3"], side["Inception-v2"]) == ("bottom left", "top left")
    assert side["GoogLeNet"] == side["Inception-ResNet-v1"] == "middle right"
    # the ResNet baselines: small grey squares labelled by depth, at their own papers' dates
    assert side["ResNet-50"] == side["ResNet-v2-50"] == "middle right"
    assert {t.text[0] for t in fig.data if t.name.startswith("ResNet")} == {
        "50", "101", "152", "v2-50", "v2-101"}
    assert x["ResNet-50"] == x["ResNet-152"] == x["Inception-v3"]  # December 2015
    assert {t.marker.symbol for t in fig.data if t.name.startswith("ResNet")} == {"square"}


# -- 12. Inception-v4's one layout ----------------------------------------------------------------

def test_inception_v4_offers_one_layout_and_still_accepts_paper():
    assert list(VARIANTS["inception_v4"].layouts) == ["released"]
    assert build("inception_v4", layout="paper", device="meta").layout == "released"
    assert analyze("inception_v4", layout="paper").total_params == 42_679_816
    with pytest.raises(ConfigError, match="it offers: released"):
        build("inception_v4", layout="papers", device="meta")
    at = clean(app("inspect", variant="inception_v4", layout="paper"))
    assert at.selectbox(key="layout").options == ["released"] and not at.warning
    assert any("one network, so one layout" in c.value for c in at.caption)
