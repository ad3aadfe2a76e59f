"""Korean and English in a real browser (one app server, one Chromium for the module): the
browser's language picks the app's, the sidebar switch keeps the page as it was (variant, the
graph's selection and open blocks, an open expander), links carry the language, and a crafted
``?lang=`` gets a note. Fails, never skips (see test_browser)."""

from __future__ import annotations

import re

import pytest
from serving import EXCEPTION, TIMEOUT_MS, settle

GRAPH = "[data-explorer-graph]"
NODES = f"{GRAPH} g.node"
NAV = "[data-testid='stSidebarNav']"
SWITCH = "[class*='st-key-lang']"
HOSTILE = "<img src=x onerror=alert(1)>"

pytestmark = pytest.mark.browser


@pytest.fixture()
def tab_in(browser):
    """A fresh tab (a new Streamlit session) whose browser speaks ``locale``."""
    contexts = []

    def make(locale: str):
        context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale=locale)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.dialogs = []
        page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
        return page

    yield make
    for context in contexts:
        context.close()


def opened(tab, url: str, selector: str = "h1") -> None:
    tab.goto(url)
    settle(tab)
    tab.wait_for_selector(selector)


def sidebar(tab) -> str:
    return tab.locator("[data-testid='stSidebar']").inner_text()


def no_exception(tab) -> None:
    assert tab.locator(EXCEPTION).count() == 0, tab.locator(EXCEPTION).first.inner_text()


def node(tab, name: str):
    title = tab.locator("title", has_text=re.compile(f"^{re.escape(name)}$"))
    return tab.locator(NODES).filter(has=title)


def switch_to(tab, name: str) -> None:
    tab.locator(SWITCH).get_by_role("radio", name=name, exact=True).click()
    settle(tab)


def test_a_korean_browser_gets_korean_unasked(server, tab_in):
    tab = tab_in("ko-KR")
    opened(tab, f"{server}/inspect?variant=inception_v3", NODES)
    nav = tab.locator(NAV).inner_text()
    assert all(t in nav for t in ("개요", "살펴보기", "비교", "예측", "배우기", "실험")), nav
    side = sidebar(tab)
    assert "깊이" in side and "레이아웃" in side and "Depth" not in side
    main = tab.locator("[data-testid='stMain']").inner_text()
    assert "그래프" in main and "선택한 노드" in main
    assert tab.locator(f"{GRAPH} button.expand-all").inner_text() == "모두 펼치기"
    assert "lang=" not in tab.url  # the browser chose, not a link: the URL stays as it was
    no_exception(tab)


def test_an_english_browser_gets_english(server, tab_in):
    tab = tab_in("en-US")
    opened(tab, f"{server}/learn")
    assert tab.locator("h1").first.inner_text() == "Learn"
    nav = tab.locator(NAV).inner_text()
    assert "Overview" in nav and "개요" not in nav
    assert "1. Factorizing convolutions" in tab.locator("[data-testid='stMain']").inner_text()
    no_exception(tab)


def test_switching_keeps_variant_selection_expansion_and_an_open_expander(server, tab_in):
    tab = tab_in("en-US")
    opened(tab, f"{server}/inspect?variant=inception_v4", NODES)
    node(tab, "inception_a").dblclick()
    tab.wait_for_function(f"document.querySelectorAll('{NODES}').length === {8 - 1 + 4}")
    settle(tab)
    node(tab, "reduction_a").click()
    tab.wait_for_selector("[data-explorer-selected='reduction_a']")
    settle(tab)
    tab.get_by_text("Charts along the depth", exact=False).click()  # the expander opens
    settle(tab)
    tab.wait_for_selector("[data-testid='stExpander'] [data-testid='stPlotlyChart']")
    before = tab.locator(NODES).count()

    switch_to(tab, "한국어")
    tab.wait_for_function("document.querySelector('[data-testid=stSidebar]').innerText"
                          ".includes('깊이')")
    settle(tab)
    assert "lang=ko" in tab.url and "variant=inception_v4" in tab.url and "block=reduction_a" in tab.url
    assert tab.locator(NODES).count() == before and node(tab, "inception_a.2").count() == 1
    assert tab.locator("[data-explorer-selected]").first.get_attribute(
        "data-explorer-selected") == "reduction_a"
    assert tab.locator("[data-testid='stExpander'] [data-testid='stPlotlyChart']").count() == 2
    assert "깊이에 따른 차트" in tab.locator("[data-testid='stExpander']").first.inner_text()
    assert "블록별 feature map" in tab.locator("[data-testid='stExpander']").first.inner_text()
    assert tab.locator("h1").first.inner_text().startswith("Inception-v4")  # the same network

    switch_to(tab, "English")
    tab.wait_for_function("document.querySelector('[data-testid=stSidebar]').innerText"
                          ".includes('Depth')")
    settle(tab)
    assert "lang=en" in tab.url and "block=reduction_a" in tab.url
    assert tab.locator(NODES).count() == before
    assert tab.locator("[data-explorer-selected]").first.get_attribute(
        "data-explorer-selected") == "reduction_a"
    assert "Charts along the depth" in tab.locator("[data-testid='stExpander']").first.inner_text()
    no_exception(tab)


def test_links_and_page_changes_carry_the_language(server, tab_in):
    tab = tab_in("en-US")
    opened(tab, f"{server}/?lang=ko")
    assert "Inception 계열" in tab.locator("[data-testid='stMain']").inner_text()
    tab.get_by_role("button", name="살펴보기").nth(2).click()  # a card's link to Inspect
    settle(tab)
    tab.wait_for_selector(NODES)
    assert "/inspect" in tab.url and "lang=ko" in tab.url, tab.url
    tab.wait_for_function("document.querySelector('[data-testid=stSidebar]').innerText"
                          ".includes('깊이')")  # the sidebar redrawn after the page switch
    tab.locator(NAV).get_by_text("비교").click()  # the navigation: the session keeps Korean
    settle(tab)
    tab.wait_for_selector("h1")
    assert tab.locator("h1").first.inner_text() == "비교"
    assert "lang=ko" in tab.url, tab.url
    no_exception(tab)


def test_a_crafted_lang_value_gets_a_note(server, tab_in):
    tab = tab_in("ko-KR")
    opened(tab, f"{server}/compare?lang=" + HOSTILE.replace(" ", "%20"))
    note = tab.locator("[data-testid='stAlert']").filter(has_text="ko: 한국어").first
    assert HOSTILE in note.inner_text()  # shown as text
    assert tab.locator("img[src='x']").count() == 0 and tab.dialogs == []
    assert tab.locator("h1").first.inner_text() == "비교"  # the browser's language still applies
    no_exception(tab)
