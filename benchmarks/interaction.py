"""How fast the explorer's graph answers in a real browser (Chromium + Playwright).

    python benchmarks/interaction.py [--repeats N] [--screenshots DIR]

Starts ``streamlit run explorer/app.py`` on a free port, opens Inspect and measures, as the user
sees them (from the browser event to the page showing the result):

- click -> details: a click on a node until the details panel shows it
  (``[data-explorer-selected="<name>"]``), alternating between stages of Inception-v4;
- expand -> redrawn: a double-click on a collapsed stage until the graph shows its blocks
  (the count of ``g.node`` changes; each expand is undone, untimed, before the next);
- full IR-v2, new tab: a new tab on a link to a fully expanded Inception-ResNet-v2 (every
  stage and block open, about 375 nodes) until all its nodes are drawn: the whole app starts in
  that tab (scripts, websocket, the page's tables and charts). Warm: the server has drawn it once.
- full IR-v2, expand all: on an open Inspect page of Inception-ResNet-v2, "expand all" until
  all its nodes are drawn (the graph's own cost: a rerun, the SVG sent and inserted).

Prints the median (and min / max) of each in seconds. ``--screenshots DIR`` also saves the
pictures used in the README (Inspect with an overlay at 1400x1000 and 1280x720, Compare).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from serving import launch_chromium, settle, streamlit_server  # noqa: E402

from explorer.graph import expandable  # noqa: E402

NODES = "[data-explorer-graph] g.node"
COUNT = f"document.querySelectorAll('{NODES}').length"


def node(tab, name):
    import re
    title = tab.locator("title", has_text=re.compile(f"^{re.escape(name)}$"))
    return tab.locator(NODES).filter(has=title)


def timed(action, until) -> float:
    start = time.perf_counter()
    action()
    until()
    return time.perf_counter() - start


def summary(name: str, times: list[float]) -> str:
    return (f"{name:<22} median {statistics.median(times):.3f} s  (min {min(times):.3f}, "
            f"max {max(times):.3f}, n={len(times)})")


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--screenshots", type=Path)
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    log = Path(os.environ.get("TMPDIR", "/tmp")) / "interaction-server.log"
    results: dict[str, list[float]] = {"click -> details": [], "expand -> redrawn": [],
                                       "full IR-v2, new tab": [], "full IR-v2, expand all": []}
    with streamlit_server(log, {}) as (url, _), sync_playwright() as p:
        browser = launch_chromium(p)
        tab = browser.new_page(viewport={"width": 1400, "height": 1000})
        tab.set_default_timeout(120_000)
        tab.goto(f"{url}/inspect?variant=inception_v4")
        settle(tab)
        tab.wait_for_selector(NODES)
        stages = ["inception_a", "reduction_a", "inception_b", "reduction_b", "inception_c"]
        for i in range(args.repeats + 1):  # the first of each is a warm-up
            name = stages[i % len(stages)]
            t = timed(lambda: node(tab, name).click(),
                      lambda: tab.wait_for_selector(f"[data-explorer-selected='{name}']"))
            settle(tab)
            if i:
                results["click -> details"].append(t)
        for i in range(args.repeats + 1):
            name = ("inception_a", "inception_b", "inception_c")[i % 3]
            before = tab.evaluate(COUNT)
            t = timed(lambda: node(tab, name).dblclick(),
                      lambda: tab.wait_for_function(f"{COUNT} > {before}"))
            settle(tab)
            if i:
                results["expand -> redrawn"].append(t)
            tab.get_by_role("button", name="collapse all").click()
            tab.wait_for_function(f"{COUNT} === {before}")
            settle(tab)
        link = f"{url}/inspect?variant=inception_resnet_v2&open=" + ",".join(
            expandable("inception_resnet_v2"))
        for i in range(args.repeats + 1):
            other = browser.new_page(viewport={"width": 1400, "height": 1000})
            other.set_default_timeout(120_000)
            t = timed(lambda: other.goto(link),
                      lambda: other.wait_for_function(f"{COUNT} > 350"))
            if i:
                results["full IR-v2, new tab"].append(t)
            other.close()
        tab.goto(f"{url}/inspect?variant=inception_resnet_v2")
        settle(tab)
        tab.wait_for_selector(NODES)
        for i in range(args.repeats + 1):
            t = timed(lambda: tab.get_by_role("button", name="expand all").click(),
                      lambda: tab.wait_for_function(f"{COUNT} > 350"))
            settle(tab)
            if i:
                results["full IR-v2, expand all"].append(t)
            tab.get_by_role("button", name="collapse all").click()
            tab.wait_for_function(f"{COUNT} < 20")
            settle(tab)
        if args.screenshots:
            shoot(tab, url, args.screenshots)
        browser.close()
    for name, times in results.items():
        print(summary(name, times))
    return results


def shoot(tab, url: str, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tab.goto(f"{url}/inspect?variant=inception_resnet_v2&overlay=MACs"
             "&open=inception_resnet_a,inception_resnet_a.1&block=inception_resnet_a.1")
    settle(tab)
    tab.wait_for_selector(NODES)
    tab.wait_for_timeout(1000)
    tab.screenshot(path=folder / "graph_inspect.png")
    tab.set_viewport_size({"width": 1280, "height": 720})
    tab.locator("[data-explorer-graph] .canvas").scroll_into_view_if_needed()
    tab.wait_for_timeout(800)
    tab.screenshot(path=folder / "graph_inspect_1280x720.png")
    tab.set_viewport_size({"width": 1400, "height": 1000})
    tab.goto(f"{url}/compare")
    settle(tab)
    tab.wait_for_function("document.querySelectorAll('[data-explorer-graph]').length === 2")
    tab.locator("[data-explorer-graph]").first.scroll_into_view_if_needed()
    tab.wait_for_timeout(1000)
    tab.screenshot(path=folder / "graph_compare.png")


if __name__ == "__main__":
    main()
