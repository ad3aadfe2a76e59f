"""Issue 24 (the third walkthrough), the items that need no browser: what a lecturer, a student
and an engineer ran into. The browser's items (downloads, projector sizes) are in
test_walkthrough3_browser.py."""

from __future__ import annotations

import csv
import io
import json

import pytest
import torch
from apptest_helpers import app, clean  # tests/ on sys.path

from explorer.analysis import charts, lessons
from explorer.analysis.cached import analysis_dict
from explorer.analysis.compare import TABLE_COLUMNS, compare_csv, compare_rows
from explorer.cli import main
from explorer.core.resources import resource
from explorer.lab import LabConfig, make_request, race
from explorer.lab.charts import log_ticks, signal_figure
from explorer.lab.config import LabAuxHead, build_lab_model
from explorer.lab.present import interpret, parse_network, race_networks, summary_rows
from explorer.runtime import latency
from explorer.runtime.memory import estimate_inference, with_peak_memory
from explorer.spec.netspec import Layer
from explorer.variants import VARIANTS, ConfigError, describe
from explorer.variants.config import MAX_CLASSES, MAX_INPUT_SIZE, MAX_REPEATS, MAX_WIDTH


def run(argv) -> tuple[int, str]:
    out = io.StringIO()
    return main(argv, out=out), out.getvalue()


# -- 2. the 5x5 lesson opens the paper layout at that block ---------------------------------------

def test_learn_links_the_5x5_lesson_to_the_paper_layout_and_names_the_released_5x5():
    at = clean(app("learn"))
    text = " ".join(m.value for m in at.markdown)
    assert "keeps GoogLeNet's 5x5 branch" in text
    # the released network really has it, the paper layout has two 3x3 in its place
    released = [r["name"] for r in analysis_dict("inception_v3", None, "layer")["rows"]]
    paper = analysis_dict("inception_v3", None, "layer", layout="paper")["rows"]
    assert any(".branches.5x5." in n for n in released)
    assert not any(".5x5." in r["name"] for r in paper)
    at.button(key="link_5x5").click().run()
    clean(at)
    assert at.title[0].value == "Inception-v3"
    assert at.selectbox(key="layout").value == "paper"
    assert at.query_params.get("block") == "inception_a.0"
    # the selected block's details list its layers: Figure 5's 3x3dbl branch, no 5x5
    details = " ".join(str(d.value) for d in at.dataframe)
    assert "3x3dbl" in details and "5x5" not in details


# -- 3. the tagline says what Table 3's "factorized 7x7" is -----------------------------------------

def _kernels(items) -> list[tuple]:
    """The conv kernels of spec items (layers, blocks, stages, networks) in order."""
    out = []
    for item in items:
        if isinstance(item, Layer):
            if item.op == "conv":
                k = item.get("kernel", 1)
                out.append((k, k) if isinstance(k, int) else tuple(k))
        elif hasattr(item, "branches"):
            out += _kernels(x for _, branch in item.branches for x in branch)
        else:  # a stage
            out += _kernels(b for _, b in item.blocks)
    return out


def test_v3_tagline_puts_the_factorized_7x7_in_the_stem():
    idea = VARIANTS["inception_v3"].idea
    assert "1x7" not in idea and "stem" in idea
    # what the step changed: v2's stem opens with a 7x7 conv, v3's with 3x3 convs; the 1x7 / 7x1
    # convs are in both
    v2, v3 = describe("inception_v2", layout="paper"), describe("inception_v3", layout="paper")
    assert _kernels([v2.stage("stem")])[0] == (7, 7) and _kernels([v3.stage("stem")])[0] == (3, 3)
    assert (1, 7) in _kernels(v2.stages) and (1, 7) in _kernels(v3.stages)


# -- 4. Rethinking's "42 layers" and "about 2.5x", beside our computation ------------------------

def test_rethinking_depth_counted_as_the_paper_counts_gives_42():
    depth = lessons.network_depth(describe("inception_v3", layout="paper"))
    assert depth["total"] == 42
    assert depth["stages"] == {"stem": 6, "inception_a": 9, "reduction_a": 3, "inception_b": 15,
                               "reduction_b": 3, "inception_c": 6}
    # the same rule, plus the classifier, gives GoogLeNet's own "22 layers"
    assert lessons.network_depth(describe("googlenet", layout="paper"))["total"] + 1 == 22


def test_rethinking_claims_show_the_claim_our_figure_and_the_gap():
    v3 = analysis_dict("inception_v3", None, "block", layout="paper")["total_macs"]
    g = analysis_dict("googlenet", None, "block", layout="paper")["total_macs"]
    rows = lessons.rethinking_claims(describe("inception_v3", layout="paper"), v3, g)
    assert rows[0]["the paper says"].startswith("42") and rows[0]["computed here"] == "42"
    assert rows[1]["computed here"].startswith(f"{v3 / g:.1f}x") and "2.5" in rows[1]["the paper says"]
    assert 3.5 < v3 / g < 4.5  # far from the claimed 2.5x: the gap is shown, not hidden
    at = clean(app("learn"))
    tables = " ".join(" ".join(t.value.astype(str).to_numpy().ravel()) for t in at.table)
    assert "42 (section 6)" in tables and f"{v3 / g:.1f}x" in tables
    assert any("section 6" in c.value and "Table" in c.value for c in at.caption)
    overview = clean(app())
    said = " ".join(c.value for c in overview.caption)
    assert "42 layers" in said and f"{v3 / g:.1f}x" in said


# -- 5. a widget's bounds are the validator's -------------------------------------------------------

@pytest.mark.parametrize("page, keys", [
    ("inspect", {"size": MAX_INPUT_SIZE, "width": MAX_WIDTH, "classes": MAX_CLASSES}),
    ("compare", {"compare_size": MAX_INPUT_SIZE, "compare_width": MAX_WIDTH,
                 "compare_classes": MAX_CLASSES, "compare_rep_1": MAX_REPEATS}),
])
def test_input_fields_take_exactly_what_a_build_takes(page, keys):
    at = clean(app(page, variant="inception_v4"))
    for key, bound in keys.items():
        assert at.number_input(key=key).max == bound, key
    from explorer.variants import resolve
    resolve("inception_v4", input_size=MAX_INPUT_SIZE)  # the field's largest value builds
    with pytest.raises(ConfigError, match=str(MAX_INPUT_SIZE)):
        resolve("inception_v4", input_size=MAX_INPUT_SIZE + 1)


# -- 6. the words about auxiliary heads agree with the totals --------------------------------------

def test_aux_note_says_what_the_totals_hold():
    without = analysis_dict("inception_v3", None, "block")
    built = analysis_dict("inception_v3", None, "block", aux_logits=True)
    aux = next(r for r in built["rows"] if r["kind"] == "aux")
    # the figures: params include the head, MACs do not
    assert built["total_params"] == without["total_params"] + aux["params"]
    assert built["total_macs"] == without["total_macs"] and aux["macs"] > 0
    note = charts.aux_note(built)
    assert f"{aux['params']:,} parameters, counted in the params total" in note
    assert f"{aux['macs']:,} MACs, not in the MACs total" in note
    at = clean(app("inspect", variant="inception_v3", aux="true"))
    captions = " ".join(c.value for c in at.caption)
    assert "not in the totals" not in captions and note in captions


# -- 7. figures state machine, command and conditions -------------------------------------------

CIRCUMSTANCES = ("test suite", "by mistake", "other helpers", "heavily loaded", "second copy")


def test_shipped_figures_state_machine_command_and_conditions():
    conditions = json.loads((resource("assets") / "lab" / "default_race.json").read_text())["conditions"]
    assert "race inception_v4 inception_resnet_v2 --seeds 0,1,2" in conditions  # the command
    assert "2 cores" in conditions and "1 training thread" in conditions      # the machine
    assert "load average" in conditions and "commit" in conditions            # the conditions
    root = resource("assets").parent
    readme = " ".join(f.read_text().lower() for f in [root / "README.md", *root.glob("docs/*.md")])
    assert "quiet machine" not in conditions  # what another machine would do: not measured
    for words in CIRCUMSTANCES:
        assert words not in conditions.lower(), words
        assert words not in readme, words


# -- 8. "+ RMSProp" is text; log ticks say their whole value ----------------------------------------

def test_table_cells_are_not_read_as_lists():
    cells = [r["step"] for r in lessons.formatted([{"step": s} for s, *_ in lessons.ABLATION])]
    assert "\\+ RMSProp" in cells and "BN-GoogLeNet" in cells
    assert lessons.plain_cell("1. x") == "1\\. x" and lessons.plain_cell("x + y") == "x + y"


def test_lab_log_axis_labels_500_and_half_apart():
    vals, text = log_ticks([0.3, 700.0])
    labels = dict(zip(vals, text))
    assert labels[500.0] == "500" and labels[0.5] == "0.5" and labels[5.0] == "5"
    assert len(set(text)) == len(text)
    rows = [{"name": f"b{i}", "activation_std": 1.0, "grad_norm": g}
            for i, g in enumerate((0.4, 3.0, 600.0))]
    axis = signal_figure([("x", {"rows": rows})]).layout.yaxis2
    assert axis.type == "log" and "500" in axis.ticktext and "0.5" in axis.ticktext


# -- 9. the Lab's switches and the sentence after a race --------------------------------------------

def test_lab_network_names_carry_the_switches():
    cfg = parse_network("inception_resnet_v2@0.1:aux:ls=0")
    assert (cfg.scale, cfg.aux, cfg.label_smoothing) == (0.1, True, 0.0)
    with pytest.raises(ConfigError, match=r"VARIANT\[@SCALE\]\[:aux\]\[:ls=EPS\]"):
        parse_network("inception_v3:dropout")
    with pytest.raises(ConfigError, match="epsilon"):
        LabConfig("inception_v3", label_smoothing=1.5).resolved()
    four = race_networks(["inception_v3"], aux="both", label_smoothing=None, without_smoothing=True)
    assert [(c.aux, c.label_smoothing) for c in four] == [(False, None), (False, 0.0),
                                                         (True, None), (True, 0.0)]
    # defaults leave a run's key as it was before the switches existed
    assert "aux" not in LabConfig("inception_v4").resolved().to_dict()


def test_lab_aux_head_trains_beside_the_network_and_leaves_eval_alone():
    cfg = LabConfig("inception_v3", width=0.1, aux=True).resolved()
    model = build_lab_model(cfg, torch.Generator().manual_seed(0))
    assert isinstance(model, LabAuxHead) and model.tap == "inception_b"
    x = torch.randn(2, 3, cfg.input_size, cfg.input_size)
    logits, aux = model.train()(x)
    assert logits.shape == aux.shape == (2, 10)
    assert model.eval()(x).shape == (2, 10)


def test_a_race_with_switches_reports_the_gap_and_says_what_it_shows(tmp_path, monkeypatch):
    monkeypatch.setenv("INCEPTION_EXPLORER_CACHE", str(tmp_path))
    request = make_request([LabConfig("inception_v3", width=0.1, aux=True),
                            LabConfig("inception_v3", width=0.1)], steps=4, points=1)
    result = race(request)
    for run_ in result["runs"]:
        assert 0.0 <= run_["curve"][-1]["train_acc"] <= 1.0
    gaps = [s["final_gap"]["mean"] for s in result["summary"]]
    assert all(g is not None for g in gaps)
    assert "train - val. acc. (points)" in summary_rows(result["summary"])[0]
    said = interpret(result["summary"], width=0.1)
    assert said[0].startswith("The auxiliary head: inception_v3 (aux head) ended at")
    assert "one seed" in said[0]  # no spread to judge by
    assert said[-1].startswith("What it cannot show") and "width 0.1" in said[-1]


def test_interpretation_weighs_a_difference_against_the_seed_spread():
    def net(label, acc, std, **config):
        return {"label": label, "config": {"variant": "inception_v3", **config}, "seeds": [0, 1, 2],
                "final_val_acc": {"mean": acc, "std": std}, "final_gap": {"mean": 0.2}}
    wide = interpret([net("a", 0.90, 0.01), net("b", 0.80, 0.01, label_smoothing=0.0)])
    assert wide[0].startswith("Label smoothing:") and "it shows here" in wide[0]
    close = interpret([net("a", 0.90, 0.05), net("b", 0.88, 0.05, aux=True)])
    assert "does not separate them" in close[0]
    assert "No two networks" in interpret([net("a", 0.9, 0.01),
                                           net("b", 0.9, 0.01, aux=True, scale=0.1)])[0]


def test_cli_race_takes_the_switches(tmp_path, monkeypatch):
    monkeypatch.setenv("INCEPTION_EXPLORER_CACHE", str(tmp_path))
    code, out = run(["race", "inception_v3:ls=0", "inception_v3", "--width", "0.1",
                     "--steps", "2", "--aux"])
    assert code == 0, out
    assert "inception_v3 (aux head, label smoothing 0)" in out
    assert "- Label smoothing:" in out and "- What it cannot show" in out


# -- 10. the four design principles, and Figure 3's stride ------------------------------------------

def test_design_principles_are_computed_on_our_networks():
    rows = analysis_dict("inception_v3", None, "block", layout="paper")["rows"]
    sizes = lessons.representation_sizes(rows)
    assert sizes[0]["values"] == 32 * 149 * 149 and all(not s["block"].startswith("head") for s in sizes)
    low = lessons.sharpest_shrink(sizes)
    assert low["vs the block before"] == min(s["vs the block before"] for s in sizes[1:])
    assert [w["channels"] for w in lessons.widest_per_grid(rows)][-3:] == [288, 768, 2048]
    agg = lessons.reduced_aggregation(describe("inception_v3", layout="paper").block("inception_a.0"),
                                      "3x3", 288, 35)
    assert agg["MACs without"] == 35 * 35 * 288 * 64 * 9
    assert agg["MACs with the 1x1"] == 35 * 35 * (288 * 48 + 48 * 64 * 9)
    at = clean(app("learn"))
    headers = [h.value for h in at.header]
    assert any("Four general design principles" in h for h in headers)
    text = " ".join(m.value for m in at.markdown)
    for principle in ("Avoid representational bottlenecks", "Higher-dimensional representations",
                      "Spatial aggregation", "Balance the width and the depth"):
        assert principle in text


def test_v4_stem_note_on_the_block_that_needs_stride_2():
    rows = analysis_dict("inception_v4", None, "block", layout="paper")["rows"]
    row = next(r for r in rows if r["name"] == "stem.mixed_5a")
    note = lessons.v4_stem_stride_note("inception_v4", row, row["figure"])
    assert "192 V" in note and "71x71 -> 35x35, measured" in note and "69x69" in note
    conv = describe("inception_v4", layout="paper").block("stem.mixed_5a").branch("3x3")[0]
    assert conv["stride"] in (2, (2, 2))
    other = next(r for r in rows if r["name"] == "stem.mixed_4a")
    assert lessons.v4_stem_stride_note("inception_v4", other, other["figure"]) is None
    at = clean(app("inspect", variant="inception_v4", block="stem.mixed_5a"))
    assert any("192 V" in i.value for i in at.info)


# -- 11. Compare: downloads, peak memory, spread, batch and precision ------------------------------

def test_compare_csv_has_the_table_with_peak_memory_per_network():
    rows = with_peak_memory(compare_rows(["googlenet", "inception_v3"], 96, width=0.5))
    records = list(csv.DictReader(io.StringIO(compare_csv(rows))))
    assert tuple(records[0]) == TABLE_COLUMNS
    for rec, row in zip(records, rows):
        need = estimate_inference(row["variant"], input_size=96, **row["build"]).total
        assert int(rec["peak_memory_bytes"]) == need
        assert int(rec["total_macs"]) == row["total_macs"]
    code, out = run(["compare", "googlenet", "inception_v3", "--input-size", "96", "--width",
                     "0.5", "--csv"])
    assert code == 0 and out == compare_csv(rows)
    assert run(["compare", "googlenet", "--csv", "--latency"])[0] == 2


def test_compare_page_offers_csv_and_json_and_shows_peak_memory():
    at = clean(app("compare", variants=["googlenet", "inception_v3"]))
    labels = {b.label for b in at.get("download_button")}
    assert {"CSV", "JSON"} <= labels
    table = at.dataframe[0].value
    assert "peak memory (MiB)" in table.columns and (table["peak memory (MiB)"] > 0).all()
    choices = {b.key: [o.content for o in b.proto.options] for b in at.get("button_group")}
    assert choices["latency_dtype"] == ["float32", "bfloat16"]
    assert choices["latency_batches"] == [str(b) for b in latency.BATCH_CHOICES]


def test_time_takes_batch_and_dtype():
    code, out = run(["time", "googlenet", "--input-size", "64", "--width", "0.25", "--runs", "1",
                     "--batch", "2", "--dtype", "bfloat16", "--json"])
    assert code == 0, out
    t = json.loads(out)
    assert (t["batch"], t["dtype"]) == (2, "bfloat16")
    assert t["min_ms"] <= t["median_ms"] <= t["max_ms"]
    need = estimate_inference("googlenet", input_size=64, width=0.25, batch=2,
                              dtype=torch.bfloat16, num_classes=1000, aux_logits=False,
                              layout=None)
    assert t["estimated_peak_bytes"] == need.total
    assert run(["time", "googlenet", "--batch", "0"])[0] == 2
    assert run(["time", "googlenet", "--dtype", "float8"])[0] == 2


def test_latency_is_kept_per_precision_and_refuses_others():
    row = compare_rows(["googlenet"], 75, width=0.25)[0]
    assert latency.latency_key(row, 1) != latency.latency_key(row, 1, dtype="bfloat16")
    assert latency.peak_key() != latency.peak_key(dtype="bfloat16")
    with pytest.raises(ValueError, match="float32, bfloat16"):
        latency.measure([row], dtype="float16")
    big = compare_rows(["inception_v3"])[0]
    one, many = latency.estimate([big], batches=(1,)), latency.estimate([big], batches=(1, 32))
    assert many.what.endswith("batch 32") and many.total > one.total
