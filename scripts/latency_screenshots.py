"""Screenshots of Compare's latency section after a real measurement (docs/performance.md), in Chromium.

    python scripts/latency_screenshots.py [--query "variants=inception_v4&variants=..."]

Starts the app (the tests' server helper, tests/serving.py), opens Compare, presses "Measure on CPU",
waits for the timing table (minutes on a busy 2-core machine: the default three networks at
batch 16), then saves assets/screenshots/compare_latency.png (1400x1000) and
compare_latency_1280x720.png, each scrolled to the section.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from serving import IDLE, ServerError, launch_chromium, streamlit_server  # noqa: E402

SHOTS = ROOT / "assets" / "screenshots"

SECTION = "Measured latency: do MACs predict time?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--query", default="", help="Compare's URL query (default: its defaults)")
    parser.add_argument("--suffix", default="", help="added to the file names")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        try:
            with streamlit_server(Path(tmp) / "server.log", {}) as (url, _), \
                    sync_playwright() as p:
                browser = launch_chromium(p)
                tab = browser.new_page(viewport={"width": 1400, "height": 1000})
                tab.set_default_timeout(900_000)
                tab.goto(f"{url}/compare?{args.query}")
                tab.wait_for_selector(IDLE)
                tab.get_by_role("button", name="Measure on CPU").click()
                tab.wait_for_timeout(1000)
                tab.wait_for_selector(IDLE)
                tab.wait_for_function(  # the timing table under the comparison table
                    "document.querySelectorAll(\"[data-testid='stDataFrame']\").length >= 2")
                tab.wait_for_timeout(1500)  # charts drawn
                SHOTS.mkdir(parents=True, exist_ok=True)
                for (w, h), name in (((1400, 1000), "compare_latency"),
                                     ((1280, 720), "compare_latency_1280x720")):
                    tab.set_viewport_size({"width": w, "height": h})
                    tab.get_by_text(SECTION).scroll_into_view_if_needed()
                    tab.get_by_text(SECTION).evaluate("e => e.scrollIntoView({block: 'start'})")
                    tab.wait_for_timeout(800)
                    path = SHOTS / f"{name}{args.suffix}.png"
                    tab.screenshot(path=path)
                    print(path)
                browser.close()
        except ServerError as err:
            sys.exit(str(err))


if __name__ == "__main__":
    main()
