"""The Design page in Chromium: one kernel changed, the figures and the graph follow, the URL
reopens the same design in a new tab; a hostile ``design=`` value never runs."""

from urllib.parse import quote

import pytest
from serving import GRAPH, TIMEOUT_MS, no_exception, settle, visit

from explorer.analysis import design as d
from explorer.variants import describe

pytestmark = pytest.mark.browser

START = "/design?variant=inception_v3&layout=paper&block=inception_a.0"


@pytest.fixture(scope="module")
def page(server, browser):
    tab = browser.new_page(viewport={"width": 1280, "height": 720})
    tab.set_default_timeout(TIMEOUT_MS)
    yield tab
    tab.close()


def figures(tab) -> tuple[int, int]:
    return (int(tab.get_attribute("[data-design-params]", "data-design-params")),
            int(tab.get_attribute("[data-design-macs]", "data-design-macs")))


def graph_text(tab) -> str:
    return tab.locator(GRAPH).first.text_content()


def test_one_kernel_changed_updates_figures_graph_and_url(server, page, browser):
    visit(page, server + START)
    no_exception(page)
    v3 = describe("inception_v3", "paper")
    original = d.open_block(v3, "inception_a.0")
    side = d.bench(v3, "inception_a.0", original).block["designed"]
    assert figures(page) == (side.params, side.macs)
    assert "3x1 conv, 64" not in graph_text(page)
    box = page.get_by_label("kernel h")
    box.fill("3")
    box.press("Enter")
    page.wait_for_function(f"() => document.querySelector('[data-design-macs]')"
                           f".dataset.designMacs !== '{side.macs}'")
    settle(page)
    no_exception(page)
    designed = d.change_layer(original, "1x1", 0, kernel=(3, 1), padding=(1, 0))
    new = d.bench(v3, "inception_a.0", designed).block["designed"]
    assert figures(page) == (new.params, new.macs)
    page.wait_for_function("() => document.querySelector('[data-explorer-graph] svg')"
                           ".textContent.includes('3x1 conv, 64')")
    assert "design=" in page.url
    other = browser.new_page(viewport={"width": 1280, "height": 720})
    other.set_default_timeout(TIMEOUT_MS)
    try:
        visit(other, page.url)
        other.wait_for_selector("[data-design-macs]")
        assert figures(other) == (new.params, new.macs)
        assert "3x1 conv, 64" in graph_text(other)
    finally:
        other.close()


def test_a_hostile_design_value_never_runs(server, page):
    hostile = "\"><script>window.__pwned=1</script><img src=x onerror=\"window.__pwned=2\">"
    visit(page, server + START + "&design=" + quote(hostile))
    page.wait_for_selector("[data-design-macs]")
    no_exception(page)
    assert page.evaluate("() => window.__pwned === undefined")
    assert page.locator("[data-testid='stAlert']").count() >= 1
    assert "could not be read" in page.inner_text("body")
    v3 = describe("inception_v3", "paper")
    side = d.bench(v3, "inception_a.0", d.open_block(v3, "inception_a.0")).block["designed"]
    assert figures(page) == (side.params, side.macs)
