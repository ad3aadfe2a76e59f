"""The Lab page: in AppTest (widgets, a short race through the queue, bad input) and in Chromium."""

import time

import pytest
from apptest_helpers import APP, clean  # tests/ on sys.path
from serving import IDLE, PLOT, launch_chromium, settle, streamlit_server
from streamlit.testing.v1 import AppTest

from explorer.lab.present import measured_result

EXCEPTION = "[data-testid='stException']"


@pytest.fixture(scope="module")
def lab_cache(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    folder = tmp_path_factory.mktemp("labcache")
    mp.setenv("INCEPTION_EXPLORER_CACHE", str(folder))
    yield folder
    mp.undo()


def lab_app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    at.switch_page("../pages/lab.py")
    return at.run()



def start(at, **values):
    for key, value in values.items():
        at.session_state[key] = value
    next(b for b in at.button if b.label == "Start race").click()
    return clean(at.run())


def test_lab_page_shows_signal_race_form_and_the_finding(lab_cache):
    at = clean(lab_app())
    assert at.title[0].value == "Lab"
    assert [h.value for h in at.header] == ["1. Signal through the network at initialisation",
                                            "2. A training race", "3. What it found"]
    assert at.multiselect(key="lab_networks").value == ["inception_v4", "inception_resnet_v2"]
    chart = at.get("plotly_chart")[0].proto.spec
    assert "Inception-v4" in chart and "Inception-ResNet-v2" in chart
    text = " ".join(m.value for m in [*at.markdown, *at.caption])
    assert "arxiv.org/abs/1602.07261" in text and "mlxtend" in text
    # the measured default race, in words and as a table, from assets/lab/default_race.json
    measured = measured_result()
    assert len(measured["runs"]) >= 6 and {r["seed"] for r in measured["runs"]} >= {0, 1, 2}
    finding = next(m.value for m in at.markdown if "validation accuracy" in m.value)
    for s in measured["summary"]:
        assert s["label"] in finding and f"{100 * s['final_val_acc']['mean']:.1f} ±" in finding
    assert list(at.dataframe[-1].value["network"]) == [s["label"] for s in measured["summary"]]
    at.segmented_control(key="lab_compare").set_value("scale 1.0 / 0.3 / 0.1")
    at.selectbox(key="lab_sig_width").set_value(0.1)
    spec = clean(at.run()).get("plotly_chart")[0].proto.spec
    assert all(f"scale {s}" in spec for s in ("1", "0.3", "0.1"))


def test_lab_page_runs_a_short_race_and_refuses_a_bad_one(lab_cache):
    at = clean(lab_app())
    at = start(at, lab_networks=[], lab_steps=2)
    assert any("1 to 4 networks" in e.value for e in at.error)
    at = start(at, lab_networks=["inception_v4", "inception_resnet_v2@0.1"], lab_width=0.1,
               lab_steps=2)
    deadline = time.monotonic() + 240
    while not at.success and time.monotonic() < deadline:
        time.sleep(1)
        clean(at.run())
    assert at.success and "Done: 2 runs" in at.success[0].value
    rows = at.dataframe[0].value
    assert list(rows["network"]) == ["inception_v4", "inception_resnet_v2 (scale 0.1)"]
    assert len(list((lab_cache / "lab").glob("*.json"))) == 2
    # the same race again: from the cache, at once
    at = start(at)
    assert at.success and at.dataframe[0].value.equals(rows)


@pytest.fixture(scope="module")
def lab_tab(tmp_path_factory, lab_cache):
    from playwright.sync_api import sync_playwright
    log = tmp_path_factory.mktemp("streamlit") / "server.log"
    # one heavy job at a time (the default is one per core): the race then holds the line, and
    # the places of the timings behind it are certain (behind_the_race)
    with streamlit_server(log, {"INCEPTION_EXPLORER_CACHE": str(lab_cache),
                                "INCEPTION_EXPLORER_HEAVY_JOBS": "1"}) as (url, _):
        with sync_playwright() as p:
            browser = launch_chromium(p)
            tab = browser.new_page(viewport={"width": 1400, "height": 1000})
            tab.set_default_timeout(180_000)
            yield url, tab
            browser.close()


@pytest.mark.browser
def test_lab_page_in_a_browser(lab_tab):
    url, tab = lab_tab
    tab.goto(f"{url}/lab")
    settle(tab)
    tab.wait_for_selector(PLOT)
    assert tab.locator(EXCEPTION).count() == 0
    assert tab.get_by_role("button", name="Start race").count() == 1
    # a race starts, shows its progress, and stops on the stop button (AppTest runs one to the end)
    tab.get_by_role("button", name="Start race").click()
    tab.wait_for_selector("[data-testid='stProgress']")
    waiting = behind_the_race(url, tab.context.browser)
    # once a chunk of steps is done, the progress line gives each network's time per step
    tab.locator("[data-testid='stProgress']").filter(has_text="ms per step").wait_for()
    tab.locator(".st-key-lab_stop button").click()  # not the header's own "Stop"
    tab.wait_for_selector("text=Stopped", timeout=300_000)
    # the race gave the line back: the timing that waited behind it runs now
    waiting.locator("[data-testid='stAlertContentSuccess']").filter(has_text="median ").wait_for()
    assert waiting.locator(EXCEPTION).count() == 0
    waiting.close()
    tab.wait_for_selector(IDLE)
    assert tab.locator(EXCEPTION).count() == 0


TIME = "Time a forward pass on CPU (batch 1, random weights)"
INFO = "[data-testid='stAlertContentInfo']"


def behind_the_race(url: str, browser):
    """While the race trains it holds the server's heavy-work queue (explorer.runtime.jobs): two
    timings asked for on Inspect wait behind it, each told its place and what runs; the first
    leaves the line, the second moves up; that tab, still waiting, is returned. (The race is
    the one job long enough to hold the line for as long as a check takes, so these places are
    certain, not a matter of timing.)"""
    tabs = []
    for _ in range(2):
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(180_000)
        page.goto(f"{url}/inspect?variant=googlenet&size=96&depth=stage")
        settle(page)
        tabs.append(page)
    first, second = tabs
    for n, page in enumerate(tabs, 1):
        page.get_by_role("button", name=TIME).click()
        line = page.locator(INFO).filter(has_text=f"you are number {n} in line")
        line.wait_for()
        assert "running now: a race of 2 network(s)" in line.inner_text()
    first.get_by_role("button", name="Cancel").click()
    first.locator(INFO).filter(has_text="you left the queue").wait_for()
    second.locator(INFO).filter(has_text="you are number 1 in line").wait_for()
    assert first.locator("[data-testid='stAlertContentSuccess']").count() == 0
    assert second.locator("[data-testid='stAlertContentSuccess']").count() == 0  # still waiting
    for page in tabs:
        assert page.locator(EXCEPTION).count() == 0
    first.close()
    return second


def test_lab_page_shows_its_place_in_line_and_leaves_it(lab_cache, monkeypatch):
    """While another race trains on the server, a new one waits and says where it stands; its
    stop button takes it out of the line."""
    import threading

    from explorer.lab import LabConfig, make_request
    from explorer.lab.queue import QUEUED, STOPPED, get_queue

    queue = get_queue()
    release = threading.Event()
    real_runner = queue._runner

    def held(request, on_progress, should_stop):  # the other race, held until we are done
        release.wait(60)
        return {"runs": [], "summary": [], "stopped": True}

    monkeypatch.setattr(queue, "_runner", held)
    other = queue.submit(make_request([LabConfig("inception_v4", width=0.1, repeats=(1, 1, 1))],
                                      steps=3, device="cpu"), who="someone else")
    try:
        at = start(clean(lab_app()), lab_networks=["inception_resnet_v1"], lab_width=0.1, lab_steps=2)
        assert any("yours is number 1 in line" in i.value for i in at.info)
        job = at.session_state["lab_job"]
        assert job.status == QUEUED
        at.button(key="lab_stop").click()
        clean(at.run())
        assert job.status == STOPPED and queue.place(job) == -1
    finally:
        release.set()
        other.wait(60)
        monkeypatch.setattr(queue, "_runner", real_runner)
