"""The app in a real browser: `streamlit run` as a subprocess, driven with Playwright + Chromium.

Fails (never skips) when Chromium or Playwright cannot run: a silent skip would hide a broken app.
Writes no file: the README's screenshots come from scripts/screenshots.py, run on purpose.
"""

import pytest
from serving import (  # tests/ is on sys.path (rootdir conftest)
    GRAPH,
    PLOT,
    ROOT,
    TABLE,
    TIMEOUT_MS,
    no_exception,
    settle,
    visit,
)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def page(server, browser):
    tab = browser.new_page(viewport={"width": 1400, "height": 1000})
    tab.set_default_timeout(TIMEOUT_MS)
    yield tab
    tab.close()



def test_overview_opens_a_variant_in_inspect(server, page):
    # A config left on Inspect must not stick to the variant opened from the Overview.
    visit(page, f"{server}/inspect?variant=inception_v4&layout=paper&rep_1=6")
    page.get_by_text("Overview").first.click()
    settle(page)
    page.wait_for_selector(PLOT)
    assert page.locator("h1").first.inner_text() == "Inception Explorer"
    no_exception(page)
    page.locator(".st-key-inspect_inception_resnet_v2 button").first.click()
    settle(page)
    page.wait_for_selector(GRAPH)
    assert page.url.endswith("/inspect?variant=inception_resnet_v2")
    assert page.locator("h1").first.inner_text() == "Inception-ResNet-v2"
    no_exception(page)


def test_inspect_shows_graph_table_and_chart(server, page):
    visit(page, f"{server}/inspect?variant=inception_resnet_v2")
    page.wait_for_selector(GRAPH)
    page.wait_for_selector(TABLE)
    # the charts along the depth: made when their expander is opened (not on every rerun)
    assert page.locator(PLOT).count() == 0
    page.get_by_text("Charts along the depth").click()
    settle(page)
    page.wait_for_selector(PLOT)
    assert page.locator("[data-testid='stPlotlyChart']").count() == 2
    assert page.locator("h1").first.inner_text().startswith("Inception-ResNet-v2")
    assert page.locator(GRAPH).first.locator("g.node").count() == 8  # input, 6 stages, head
    no_exception(page)


def test_inspect_bad_config_is_an_error_not_an_exception(server, page):
    visit(page, f"{server}/inspect?variant=inception_v3&size=32")
    page.wait_for_selector("[data-testid='stAlertContentError']")
    assert "minimum" in page.locator("[data-testid='stAlertContentError']").inner_text()
    no_exception(page)


def test_compare(server, page):
    visit(page, f"{server}/compare")
    page.wait_for_selector(TABLE)
    page.wait_for_function(f"document.querySelectorAll(\"{PLOT}\").length >= 3")
    assert page.get_by_role("button", name="Measure on CPU").count() == 1  # timed in test_app
    no_exception(page)


def test_learn(server, page):
    visit(page, f"{server}/learn")
    page.wait_for_selector("[data-testid='stTable']")  # static tables: drawn with the page
    page.wait_for_selector(PLOT)
    page.wait_for_selector(".katex")
    no_exception(page)


def test_predict(server, page):
    visit(page, f"{server}/predict")
    page.wait_for_function(f"document.querySelectorAll(\"{PLOT}\").length >= 2")
    page.wait_for_selector("[data-testid='stImage'] img")
    # the crop each of the 2 networks sees, then Grad-CAM + feature maps
    assert page.locator("[data-testid='stImage'] img").count() == 4
    text = page.locator("[data-testid='stMain']").inner_text()
    assert "googlenet.IMAGENET1K_V1" in text and "inception_v3.IMAGENET1K_V1" in text
    no_exception(page)


def test_predict_without_weights_and_a_hostile_file_name(server, page):
    """A network without weights here gets one short message and still shows the crop it would
    see; a photo named like HTML is shown as text (no element, no script)."""
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    visit(page, f"{server}/predict?predict_variants=inception_v4")
    hostile = "<img src=x onerror=alert(1)>.jpg"
    photo = (ROOT / "assets" / "samples" / "coffee.jpg").read_bytes()
    page.locator("[data-testid='stFileUploaderDropzoneInput']").first.set_input_files(
        [{"name": hostile, "mimeType": "image/jpeg", "buffer": photo}])
    page.wait_for_function("document.querySelectorAll(\"[data-testid='stImage'] img\").length >= 2")
    settle(page)
    main = page.locator("[data-testid='stMain']").inner_text()
    assert "inception_v4.tf_in1k --to DIR" in main and "Errno" not in main
    assert "the 299 px crop inception_v4 sees" in main and hostile in main
    assert page.locator("img[src='x']").count() == 0 and dialogs == []
    no_exception(page)
