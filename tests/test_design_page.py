"""The Design page (AppTest): opened from a link, edited, an impossible edit refused by name with
the last valid design kept, the design carried by the URL, a crafted ``design=`` kept as text."""

from __future__ import annotations

import re

from apptest_helpers import app, clean

from explorer.analysis import design as d
from explorer.variants import describe

V3 = describe("inception_v3", "paper")


def figures(at) -> dict[str, int]:
    body = next(h.body for h in at.get("html") if "data-design-figures" in h.body)
    return {k: int(v) for k, v in re.findall(r'data-design-(params|macs)="(\d+)"', body)}


def expected(block, name="inception_a.0") -> dict[str, int]:
    side = d.bench(V3, name, block).block["designed"]
    return {"params": side.params, "macs": side.macs}


def test_a_link_opens_the_block_and_an_edit_changes_its_figures_and_the_url():
    at = clean(app("design", variant="inception_v3", layout="paper", block="inception_a.0"))
    original = d.open_block(V3, "inception_a.0")
    assert figures(at) == expected(original)
    # the first branch's first layer: its kernel from 1 to 3 (the grid kept by padding 1)
    kh = next(w for w in at.number_input if w.label == "kernel h")
    kh.set_value(3).run()
    kw = next(w for w in clean(at).number_input if w.label == "kernel w")
    kw.set_value(3).run()
    clean(at)
    designed = d.change_layer(original, "1x1", 0, kernel=3, padding=1)
    assert figures(at) == expected(designed) != expected(original)
    value = at.query_params["design"]
    value = value[0] if isinstance(value, list) else value
    assert d.decode(value) == designed
    again = clean(app("design", variant="inception_v3", layout="paper", block="inception_a.0",
                      design=value))
    assert figures(again) == expected(designed)


def test_an_impossible_edit_is_refused_by_branch_and_layer_and_the_last_design_stays():
    at = clean(app("design", variant="inception_v3", layout="paper", block="inception_a.0"))
    before = figures(at)
    out = next(w for w in at.number_input if w.label == "output channels")
    out.set_value(0).run()
    clean(at)
    assert any("branch 1x1, layer 0" in e.value for e in at.error), [e.value for e in at.error]
    assert figures(at) == before


def test_a_crafted_design_value_stays_text_and_the_block_opens_as_published():
    hostile = '"><script>alert(1)</script><img src=x onerror=alert(2)>'
    at = clean(app("design", variant="inception_v3", layout="paper", block="inception_a.0",
                   design=hostile))
    assert at.warning and figures(at) == expected(d.open_block(V3, "inception_a.0"))
    assert all("<script>" not in h.body for h in at.get("html"))
    at = clean(app("design", variant="<b>x</b>", block="<script>"))
    assert at.warning and figures(at)


def test_a_lesson_link_opens_the_prepared_edit():
    query = d.lesson_query("keep_5x5")
    at = clean(app("design", **query))
    block = d.decode(query["design"])
    assert block.branch("3x3dbl")[1]["kernel"] == 5
    assert figures(at) == expected(block)


def test_learn_and_inspect_link_to_the_bench():
    at = clean(app("learn"))
    links = [p for p in at.get("page_link")]
    labels = [p.proto.label for p in links]
    for key in d.LESSONS:
        assert any(d.LESSONS[key][0] in label for label in labels), (key, labels)
    at = clean(app("inspect", variant="inception_v3", block="inception_a.mixed_5b"))
    link = next(p for p in at.get("page_link") if p.proto.label == "Design from this block")
    assert link.proto.page == "design"
    assert link.proto.query_string == "variant=inception_v3&layout=released&block=inception_a.mixed_5b"


def test_race_against_the_original_sends_both_networks_to_the_lab():
    """The button queues one race of the original and the design (its block encoded, placed
    where it was opened), shown on the Lab page; the race is then left, which stops it."""
    from explorer.lab.config import LabConfig
    from explorer.lab.queue import get_queue

    at = clean(app("design", variant="inception_resnet_v1", layout="paper",
                   block="inception_resnet_a.0"))
    scale = next(w for w in at.number_input if w.label == "Residual scale")
    scale.set_value(0.5).run()
    clean(at)
    designed = d.set_residual(d.open_block(describe("inception_resnet_v1", "paper"),
                                           "inception_resnet_a.0"), True, 0.5)
    next(b for b in at.button if b.label == "Race against the original").click().run()
    job = at.session_state["lab_job"]
    try:
        original, design = job.request.configs
        assert original == LabConfig("inception_resnet_v1", layout="paper").resolved()
        assert (design.variant, design.design_at) == ("inception_resnet_v1", "inception_resnet_a.0")
        assert d.decode(design.design) == designed
        assert at.title[0].value == "Lab"  # the page switched to the race
    finally:
        get_queue().leave(job, at.session_state["lab_who"])
        assert job.wait(120)
