"""Screenshots of every page in one language, for the README tour (run on purpose, not by tests):

    .venv/bin/python scripts/screenshots_lang.py --lang ko [--out assets/screenshots]

Starts the app on a free port with a weights folder of random GoogLeNet weights (this machine
may not download the real ones: Predict's numbers are then meaningless, its layout is not),
opens each page in headless Chromium (Debian's) whose browser language is the one asked for,
with ``?lang=`` in the link too, and saves the first 1280x720 screen of each page as
``<out>/<lang>_<page>.png``. ``shoot(lang, out)`` does the same for another script.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # serving.py: the server and browser helpers

from serving import TIMEOUT_MS, launch_chromium, settle, streamlit_server  # noqa: E402

LOCALES = {"ko": "ko-KR", "en": "en-US"}
# page -> the query that shows it at its most telling (Predict: the one network with weights)
PAGES = {"overview": "", "inspect": "variant=inception_v4&open=inception_a&block=reduction_a",
         "compare": "", "predict": "predict_variants=googlenet", "learn": "", "lab": ""}


def random_weights(folder: Path) -> Path:
    """googlenet.IMAGENET1K_V1.pth with random weights (torchvision's layout)."""
    import torch
    import torchvision
    model = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=False,
                                         transform_input=False)
    torch.save(model.state_dict(), folder / "googlenet.IMAGENET1K_V1.pth")
    return folder


def shoot(lang: str, out: Path, width: int = 1280, height: int = 720) -> list[Path]:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    saved = []
    with tempfile.TemporaryDirectory() as tmp:
        weights = random_weights(Path(tmp))
        with streamlit_server(Path(tmp) / "server.log", {"INCEPTION_EXPLORER_WEIGHTS": str(weights)}) \
                as (url, _), sync_playwright() as p:
            browser = launch_chromium(p)
            context = browser.new_context(viewport={"width": width, "height": height},
                                          locale=LOCALES[lang])
            tab = context.new_page()
            tab.set_default_timeout(TIMEOUT_MS)
            for page, query in PAGES.items():
                path = "" if page == "overview" else page
                tab.goto(f"{url}/{path}?" + "&".join(q for q in (query, f"lang={lang}") if q))
                settle(tab)
                tab.wait_for_selector("h1")
                if page in ("inspect", "predict"):
                    tab.wait_for_selector("[data-explorer-graph] svg")
                tab.wait_for_timeout(1500)  # charts and fonts drawn
                settle(tab)
                target = out / f"{lang}_{page}.png"
                tab.screenshot(path=target)
                saved.append(target)
            browser.close()
    return saved


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lang", choices=sorted(LOCALES), default="ko")
    ap.add_argument("--out", type=Path, default=ROOT / "assets" / "screenshots")
    args = ap.parse_args()
    for path in shoot(args.lang, args.out):
        print(path)


if __name__ == "__main__":
    main()
