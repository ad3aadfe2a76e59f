"""Take the screenshots that README.md and docs/ show, in headless Chromium. Run it on purpose
(after changing a page), never from the tests: it rewrites assets/screenshots/*.png.

    python scripts/screenshots.py [--only NAME ...] [--out DIR] [--list]

Starts `streamlit run explorer/app.py` on a free port of 127.0.0.1 (tests/serving.py) with an
empty cache and a weights folder of *random* GoogLeNet and Inception-v3 checkpoints (no download
is possible on the machines that take them, and we do not fake predictions: the Predict pictures
say "random weights"), opens every view below in Debian's Chromium and writes NAME.png into
``--out`` (default assets/screenshots). Compare's latency section takes minutes of timing:
scripts/latency_screenshots.py makes those two pictures.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "scripts")]

from serving import (  # noqa: E402  (tests/serving.py: the tests' server and browser helpers)
    PLOT,
    TABLE,
    ServerError,
    launch_chromium,
    settle,
    streamlit_server,
)

SHOTS = ROOT / "assets" / "screenshots"
GRAPH_NODES = "[data-explorer-graph] g.node"
WIDE, PROJECTOR = (1400, 1000), (1280, 720)


def whole_page(tab, path: Path) -> None:
    """The whole page: grow the viewport to the app's scroll height, then shoot."""
    height = tab.evaluate("""() => Math.max(...[...document.querySelectorAll('*')]
        .filter(e => e.scrollHeight > e.clientHeight + 1 && getComputedStyle(e).overflowY !== 'visible')
        .map(e => e.scrollHeight), document.body.scrollHeight)""")
    tab.set_viewport_size({"width": WIDE[0], "height": min(int(height) + 40, 6000)})
    tab.wait_for_timeout(800)
    tab.screenshot(path=path)


def first_screen(tab, path: Path) -> None:
    """What a projector shows: the first screen, nothing scrolled."""
    tab.wait_for_timeout(800)
    tab.screenshot(path=path)


def wait_plots(n: int) -> Callable:
    return lambda tab: tab.wait_for_function(f"document.querySelectorAll(\"{PLOT}\").length >= {n}")


def open_depth_charts(tab) -> None:
    tab.wait_for_selector(TABLE)
    tab.get_by_text("Charts along the depth").click()
    settle(tab)
    tab.wait_for_selector(PLOT)


def upload_coffee(tab) -> None:
    photo = (ROOT / "assets" / "samples" / "coffee.jpg").read_bytes()
    tab.locator("[data-testid='stFileUploaderDropzoneInput']").first.set_input_files(
        [{"name": "coffee.jpg", "mimeType": "image/jpeg", "buffer": photo}])
    tab.wait_for_function("document.querySelectorAll(\"[data-testid='stImage'] img\").length >= 2")
    settle(tab)


def graph_drawn(tab) -> None:
    tab.wait_for_selector(GRAPH_NODES)
    tab.wait_for_timeout(1000)


def graph_canvas_in_view(tab) -> None:
    graph_drawn(tab)
    tab.locator("[data-explorer-graph] .canvas").scroll_into_view_if_needed()


def two_graphs(tab) -> None:
    tab.wait_for_function("document.querySelectorAll('[data-explorer-graph]').length === 2")
    tab.locator("[data-explorer-graph]").first.scroll_into_view_if_needed()
    tab.wait_for_timeout(1000)


COMPARE_512 = "compare?variants=inception_v4&variants=inception_resnet_v2&compare_size=512&compare_width=0.5"
GRAPH_VIEW = ("inspect?variant=inception_resnet_v2&overlay=MACs"
              "&open=inception_resnet_a,inception_resnet_a.1&block=inception_resnet_a.1")

# name -> (path after the server's URL, viewport, what to wait for / do, whole page or first screen)
VIEWS: dict[str, tuple[str, tuple[int, int], Callable, Callable]] = {
    "overview": ("", WIDE, wait_plots(1), whole_page),
    "inspect": ("inspect?variant=inception_resnet_v2", WIDE, open_depth_charts, whole_page),
    "compare": ("compare", WIDE, wait_plots(3), whole_page),
    "learn": ("learn", WIDE, wait_plots(1), whole_page),
    "predict": ("predict", WIDE, wait_plots(2), whole_page),
    "predict_offline": ("predict?predict_variants=inception_v4", WIDE, upload_coffee, whole_page),
    "lab": ("lab", WIDE, wait_plots(1), whole_page),
    "projector_overview": ("", PROJECTOR, wait_plots(1), first_screen),
    "projector_inspect": ("inspect?variant=inception_resnet_v2&depth=layer", PROJECTOR,
                          lambda tab: tab.wait_for_selector(TABLE), first_screen),
    "projector_compare": (COMPARE_512, PROJECTOR, wait_plots(3), first_screen),
    "projector_learn": ("learn", PROJECTOR, wait_plots(1), first_screen),
    "projector_predict": ("predict", PROJECTOR, wait_plots(2), first_screen),
    "projector_lab": ("lab", PROJECTOR, wait_plots(1), first_screen),
    "graph_inspect": (GRAPH_VIEW, WIDE, graph_drawn, first_screen),
    "graph_inspect_1280x720": (GRAPH_VIEW, PROJECTOR, graph_canvas_in_view, first_screen),
    "graph_compare": ("compare", WIDE, two_graphs, first_screen),
    # a ResNet baseline: a pre-activation bottleneck opened (its BN -> ReLU before the convs,
    # its projection shortcut), and the design bench on ResNet-50's first strided block
    "graph_resnet": ("inspect?variant=resnetv2_50&open=conv3_x,conv3_x.0&block=conv3_x.0", WIDE,
                     graph_drawn, first_screen),
    "design_resnet": ("design?variant=resnet50&layout=released&block=conv3_x.0", WIDE,
                      graph_drawn, whole_page),
}


def random_weights(folder: Path) -> None:
    """Random-weight checkpoints under the registry's names (what the tests serve, too)."""
    import torch
    from conftest import _torchvision_googlenet, _torchvision_inception_v3, randomize_batchnorm

    for name, make, size in (("googlenet.IMAGENET1K_V1", _torchvision_googlenet, 224),
                             ("inception_v3.IMAGENET1K_V1", _torchvision_inception_v3, 299)):
        torch.manual_seed(0)
        torch.save(randomize_batchnorm(make(), size).state_dict(), folder / f"{name}.pth")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=sorted(VIEWS), metavar="NAME",
                        help="only these pictures (default: all)")
    parser.add_argument("--out", type=Path, default=SHOTS, help=f"folder (default: {SHOTS})")
    parser.add_argument("--list", action="store_true", help="list the pictures and stop")
    parser.add_argument("--lang", choices=("ko",), help="instead: every page in this language at "
                        "1280x720, as <lang>_<page>.png (scripts/screenshots_lang.py)")
    args = parser.parse_args()
    if args.lang:
        from screenshots_lang import shoot as shoot_language
        for path in shoot_language(args.lang, args.out):
            print(path)
        return
    if args.list:
        for name, (path, size, _, _) in VIEWS.items():
            print(f"{name:<24} {size[0]}x{size[1]}  /{path}")
        return
    if shutil.which("dot") is None:
        sys.exit("Graphviz's `dot` is needed for the graph pictures: apt-get install graphviz")
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "weights").mkdir()
        random_weights(tmp / "weights")
        env = {"INCEPTION_EXPLORER_WEIGHTS": str(tmp / "weights"),
               "INCEPTION_EXPLORER_CACHE": str(tmp / "cache")}
        try:
            with streamlit_server(tmp / "server.log", env) as (url, _), sync_playwright() as p:
                browser = launch_chromium(p)
                for name in args.only or VIEWS:
                    path, (width, height), ready, shoot = VIEWS[name]
                    tab = browser.new_page(viewport={"width": width, "height": height})
                    tab.set_default_timeout(180_000)
                    tab.goto(f"{url}/{path}")
                    settle(tab)
                    tab.wait_for_selector("h1")
                    ready(tab)
                    if tab.locator("[data-testid='stException']").count():
                        sys.exit(f"{name}: the page shows an exception; see {tmp / 'server.log'}")
                    shoot(tab, args.out / f"{name}.png")
                    print(args.out / f"{name}.png")
                    tab.close()
                browser.close()
        except ServerError as err:
            sys.exit(str(err))


if __name__ == "__main__":
    main()
