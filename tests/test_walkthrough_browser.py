"""Issue 11 in Chromium, on a projector's 1280x720: every page reads there (controls above the
fold, table names and MACs not cut), the drawing of items 5, 9, 10 and 11, and the downloads'
names. (scripts/screenshots.py takes the projector screenshots of these same views.)
"""

import re

import pytest
from serving import (  # tests/ on sys.path
    PLOT,
    ROOT,
    TABLE,
    no_exception,
)
from serving import visit as open_page

pytestmark = pytest.mark.browser

WIDTH, HEIGHT = 1280, 720
TIMEOUT_MS = 120_000
HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def tab(server, browser):
    page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT}, accept_downloads=True)
    page.set_default_timeout(TIMEOUT_MS)
    page.on("dialog", lambda d: pytest.fail(f"a script ran in the page: {d.message}"))
    yield page
    page.close()


def visit(tab, url: str) -> None:
    open_page(tab, url)
    no_exception(tab)


def let_it_draw(tab) -> None:
    """Plotly and the data grid finish drawing after the script is idle."""
    tab.wait_for_timeout(800)


def box(locator) -> dict:
    b = locator.bounding_box()
    assert b is not None, "not drawn"
    return b


def on_screen(locator) -> bool:
    b = box(locator)
    return b["y"] >= 0 and b["y"] + b["height"] <= HEIGHT and b["x"] + b["width"] <= WIDTH


def test_overview_timeline_labels_do_not_overlap(server, tab):
    visit(tab, server)
    tab.wait_for_selector(PLOT)
    let_it_draw(tab)
    labels = tab.locator("[data-testid='stPlotlyChart'] .textpoint text")
    assert labels.count() == 12  # seven Inception networks, five ResNet baselines
    boxes = [box(labels.nth(i)) for i in range(12)]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            apart = (a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"]
                     or a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"])
            assert apart, (a, b)
    assert min(float(labels.nth(i).evaluate("e => parseFloat(getComputedStyle(e).fontSize)"))
               for i in range(12)) >= 13


def test_inspect_on_a_projector(server, tab):
    visit(tab, f"{server}/inspect?variant=inception_resnet_v2&depth=layer")
    tab.wait_for_selector(TABLE)
    let_it_draw(tab)
    # the depth control is above the fold in the sidebar
    assert on_screen(tab.locator("[data-testid='stSidebar'] .st-key-depth"))
    # the table's first columns are the name, the shape, params and MACs; it fits the screen
    table = tab.locator(TABLE).first
    headers = table.locator("[role='columnheader']")
    names = [headers.nth(i).inner_text().strip() for i in range(4)]
    assert names == ["name", "output", "params", "MACs"], names
    assert box(table)["x"] + box(table)["width"] <= WIDTH

def test_exports_are_named_by_their_settings(server, tab):
    visit(tab, f"{server}/inspect?variant=inception_v4&size=512&width=0.5")
    tab.wait_for_selector(TABLE)
    with tab.expect_download() as download:
        tab.get_by_role("button", name="CSV", exact=True).click()
    assert download.value.suggested_filename == "inception_v4_released_512px_width0.5_block.csv"
    first = open(download.value.path()).readline()
    assert first.startswith("# settings: ") and '"width": 0.5' in first


def test_a_hostile_link_gets_a_note_and_runs_nothing(server, tab):
    from urllib.parse import quote
    visit(tab, f"{server}/inspect?variant={quote(HOSTILE)}&{quote(HOSTILE)}=1")
    note = tab.locator("[data-testid='stAlertContentWarning']").first
    assert 'variant "<img src=x onerror=alert(1)>"' in note.inner_text()
    assert note.locator("img").count() == 0
    assert tab.locator("h1").first.inner_text().startswith("GoogLeNet")


def test_compare_the_engineers_question(server, tab):
    visit(tab, f"{server}/compare?variants=inception_v4&variants=inception_resnet_v2"
               "&compare_size=512&compare_width=0.5")
    tab.wait_for_function(f"document.querySelectorAll(\"{PLOT}\").length >= 3")
    assert on_screen(tab.locator(".st-key-compare_width"))
    assert tab.locator(".st-key-compare_width input").input_value() == "0.50"
    let_it_draw(tab)
    # the stacked bars: one legend entry per role, in the order of the stack
    legend = tab.locator("[data-testid='stPlotlyChart']").nth(2).locator(".legendtext")
    assert [legend.nth(i).text_content() for i in range(legend.count())] == [
        "head", "Inception C (5)", "Inception B (4)", "reduction / pool",
        "Inception A (GoogLeNet: 3)", "stem"]


def test_learn_draws_its_diagrams_and_tables_at_once(server, tab):
    visit(tab, f"{server}/learn")
    main = tab.locator("[data-testid='stMain']")
    # every table is static (no data grid that fills in later), and all of them are there
    # when the script is done: one per call of the page's table() (its st.table, translated
    # headers), none behind a condition
    source = (ROOT / "pages" / "learn.py").read_text()
    calls = len(re.findall(r"^\s*table\(", source, flags=re.M))
    assert calls >= 5 and tab.locator("[data-testid='stDataFrame']").count() == 0
    assert tab.locator("[data-testid='stTable']").count() == calls
    assert tab.locator("[data-testid='stPlotlyChart']").count() >= 3
    text = main.inner_text()
    assert "None" not in text and "x1048576" not in text
    assert "receptive field stays n x n" in text
    assert tab.get_by_role("button", name="Inception-v3's 17x17 blocks (1x7 + 7x1), on Inspect")
    let_it_draw(tab)


def test_predict_on_a_projector(server, tab):
    visit(tab, f"{server}/predict")
    tab.wait_for_function(f"document.querySelectorAll(\"{PLOT}\").length >= 2")
    let_it_draw(tab)


def test_lab_on_a_projector(server, tab):
    visit(tab, f"{server}/lab")
    tab.wait_for_selector(PLOT)
    assert on_screen(tab.locator("h1").first)
    let_it_draw(tab)
