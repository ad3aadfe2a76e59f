"""Many users at once: a classroom of browser sessions on one `streamlit run` server.

One server, one Chromium, one browser context (= one Streamlit session) per simulated user, all
driven concurrently with Playwright's async API. Half of them open Inspect with their own variant
and configuration and must see their own title and parameter count; the other half run Predict on
their own photos (uploads or sample pills) and must see, for each photo and network, the top-1
class that ``explorer.runtime.inference.predict`` gives in this process. One of them also uploads broken
files, which must be named in error messages while its good photos still get their charts. The
server's resident memory is sampled throughout and must stay bounded.

Also, without a browser: the shared ``ModelCache`` with real GoogLeNet checkpoints (LRU eviction,
concurrent gets, models left frozen and unchanged by the page's computations).

Fails (never skips) when Chromium or Playwright cannot run, like test_browser.py.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import os
import re
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageOps
from serving import (  # tests/ is on sys.path (rootdir conftest)
    CHROMIUM_LAUNCH,
    IDLE,
    RssMonitor,
    rss_bytes,
    streamlit_server,
)
from tolerances import PROB_ATOL, ulps

from explorer import analyze
from explorer.analysis import charts
from explorer.core.images import sample_images, to_batch
from explorer.runtime.inference import classify, predict
from explorer.runtime.loaded import ModelCache, load_model
from explorer.variants import VARIANTS

ROOT = Path(__file__).resolve().parents[1]
# Sessions at once (half Inspect, half Predict): 8 keeps this test near a minute on 2 cores;
# INCEPTION_EXPLORER_CLASSROOM=30 runs a whole class (the users below, repeated).
CLASSROOM = max(8, int(os.environ.get("INCEPTION_EXPLORER_CLASSROOM", "8")))
TIMEOUT_MS = max(150_000, 15_000 * CLASSROOM)
MAX_RSS = 6 * 2**30
PREDICT_VARIANTS = ("googlenet", "inception_v3")  # the Predict page's defaults
# torchvision checkpoints carry auxiliary heads; the explorer's models are built without them
pytestmark = pytest.mark.filterwarnings("ignore:dropped .* auxiliary-head tensors:UserWarning")
CHECKPOINTS = {"googlenet": ("torchvision_googlenet", "googlenet.IMAGENET1K_V1.pth"),
               "inception_v3": ("torchvision_inception_v3", "inception_v3.IMAGENET1K_V1.pth")}


# -- the server and its memory --------------------------------------------------------------------




@dataclass
class Server:
    url: str
    proc: subprocess.Popen
    log: Path


@pytest.fixture(scope="module")
def server(tmp_path_factory, weights_dir):
    log = tmp_path_factory.mktemp("streamlit") / "server.log"
    with streamlit_server(log, {"INCEPTION_EXPLORER_WEIGHTS": str(weights_dir)}) as (url, proc):
        yield Server(url, proc, log)


# -- what each user does ---------------------------------------------------------------------------


@dataclass
class InspectUser:
    query: str                       # e.g. "variant=inception_v4&width=0.5"
    variant: str
    config: dict                     # for explorer.analyze (layout, input_size, width, ...)

    def expected(self) -> dict:
        """What the page must show, formatted as it formats it."""
        result = analyze(self.variant, **self.config).to_dict()
        return {"title": VARIANTS[self.variant].title,
                "parameters": charts.fmt_count(result["total_params"]),
                "MACs": charts.fmt_count(result["total_macs"]),
                "input": f"{result['input_size']} px"}


@dataclass
class PredictUser:
    name: str
    uploads: list[Path] = field(default_factory=list)
    toggle: list[str] = field(default_factory=list)   # sample pills clicked, in order ("cat" is on)
    bad: list[str] = field(default_factory=list)      # uploads that must be refused, by name
    good: list[str] = field(default_factory=list)     # the chart titles expected, in page order


def photos(folder: Path) -> dict[str, Path]:
    """Real photos that are not the samples as they are: flipped, cropped, grey, other formats."""
    samples = sample_images()
    made = {}

    def save(name, image, **kw):
        made[name] = folder / name
        image.save(made[name], **kw)

    with Image.open(samples["astronaut"]) as im:
        save("astro_flip.png", ImageOps.mirror(im.convert("RGB")))
    with Image.open(samples["coffee"]) as im:
        w, h = im.size
        save("coffee_crop.jpg", im.convert("RGB").crop((w // 8, h // 8, w - w // 8, h - h // 8)),
             quality=90)
    with Image.open(samples["rocket"]) as im:
        save("rocket_grey.webp", ImageOps.grayscale(im), quality=85)
    (folder / "notes.jpg").write_text("these are my lecture notes, not a photo\n")
    made["notes.jpg"] = folder / "notes.jpg"
    buf = io.BytesIO()
    with Image.open(samples["coffee"]) as im:
        im.convert("RGB").save(buf, "JPEG", quality=90)
    (folder / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 3])
    made["truncated.jpg"] = folder / "truncated.jpg"
    return made


INSPECT_USERS = [
    InspectUser("variant=inception_v4&width=0.5", "inception_v4",
                {"layout": "released", "width": 0.5}),
    InspectUser("variant=googlenet&size=160", "googlenet", {"layout": "released", "input_size": 160}),
    InspectUser("variant=inception_resnet_v2&rep_1=2", "inception_resnet_v2",
                {"layout": "released", "repeats": None}),  # repeats filled in below
    InspectUser("variant=bn_inception&layout=paper&classes=10", "bn_inception",
                {"layout": "paper", "num_classes": 10}),
]
_irv2 = VARIANTS["inception_resnet_v2"].layouts["released"].repeats
INSPECT_USERS[2].config["repeats"] = (2, *_irv2[1:])


def predict_users(made: dict[str, Path]) -> list[PredictUser]:
    up = made.__getitem__
    return [
        # uploads come first on the page, then the selected samples in the pills' order
        PredictUser("two uploads", [up("astro_flip.png"), up("coffee_crop.jpg")],
                    good=["astro_flip.png", "coffee_crop.jpg", "cat"]),
        PredictUser("rocket pill", toggle=["rocket"], good=["cat", "rocket"]),
        PredictUser("coffee pill, cat off", toggle=["coffee", "cat"], good=["coffee"]),
        PredictUser("bad files", [up("notes.jpg"), up("truncated.jpg"), up("rocket_grey.webp")],
                    bad=["notes.jpg", "truncated.jpg"], good=["rocket_grey.webp", "cat"]),
    ]


# -- the browser side ------------------------------------------------------------------------------

STATE_JS = """() => {
  const app = document.querySelector("[data-testid='stApp']");
  const all = sel => [...document.querySelectorAll(sel)];
  return {
    idle: app?.getAttribute("data-test-script-state") === "notRunning",
    connected: app?.getAttribute("data-test-connection-state") === "CONNECTED",
    stale: all("[data-stale='true']").length,
    charts: all("[data-testid='stPlotlyChart']").map(e => ({
      column: (e.closest("[data-testid='stColumn']")?.querySelector("h3")?.textContent || "").trim(),
      title: e.querySelector(".gtitle")?.textContent || "",
      ticks: [...e.querySelectorAll(".ytick text")].map(t => t.textContent)})),
    errors: all("[data-testid='stAlertContentError']").map(e => e.innerText),
    warnings: all("[data-testid='stAlertContentWarning']").map(e => e.innerText),
    exceptions: all("[data-testid='stException']").map(e => e.innerText),
    images: all("[data-testid='stImage'] img").length,
    graphs: all("[data-explorer-graph] svg g.node").length,
    h1: document.querySelector("h1")?.textContent || "",
    metrics: Object.fromEntries(all("[data-testid='stMetric']").map(m => [
      m.querySelector("[data-testid='stMetricLabel']")?.innerText.trim(),
      m.querySelector("[data-testid='stMetricValue']")?.innerText.trim()])),
  };
}"""


async def state(tab) -> dict:
    return await tab.evaluate(STATE_JS)


def quiet(s: dict) -> bool:
    return s["idle"] and s["connected"] and not s["stale"]


async def settle(tab) -> None:
    """test_browser.settle, async: connected, the script done, and still done a moment later."""
    await tab.wait_for_selector("[data-testid='stApp'][data-test-connection-state='CONNECTED']")
    await tab.wait_for_selector(IDLE)
    await tab.wait_for_timeout(500)
    await tab.wait_for_selector(IDLE)


async def wait_until(tab, ready, what: str) -> dict:
    """The page's state once the script is idle and ``ready(state)`` holds, twice 300 ms apart
    (no rerun pending); an exception shown on the page fails at once."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while True:
        s = await state(tab)
        if s["exceptions"]:
            raise AssertionError(f"{what}: exception on the page: {s['exceptions']}")
        if quiet(s) and ready(s):
            await tab.wait_for_timeout(300)
            s = await state(tab)
            if quiet(s) and ready(s):
                return s
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not ready after {TIMEOUT_MS / 1000:.0f} s; last state {s}")
        await tab.wait_for_timeout(250)


async def new_tab(browser):
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    tab = await context.new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    return tab


async def inspect_session(browser, url: str, user: InspectUser) -> dict:
    tab = await new_tab(browser)
    await tab.goto(f"{url}/inspect?{user.query}")
    s = await wait_until(tab, lambda s: s["h1"] and "parameters" in s["metrics"] and s["graphs"],
                         user.query)
    return {"tab": tab, "state": s, "done": time.monotonic()}


def shown_images(photos: list[str]) -> int:
    """Each photo as each network crops it, then one Grad-CAM and one feature-map grid."""
    return len(photos) * len(PREDICT_VARIANTS) + 2


async def predict_session(browser, url: str, user: PredictUser) -> dict:
    tab = await new_tab(browser)
    await tab.goto(f"{url}/predict")
    # first, the default: the cat sample through both networks
    await wait_until(tab, lambda s: len(s["charts"]) == len(PREDICT_VARIANTS)
                     and s["images"] == shown_images(["cat"]), f"{user.name} (first run)")
    if user.uploads:
        await tab.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(
            [str(p) for p in user.uploads])
        # every file listed under the uploader (as a "chip"; long names are shortened there)
        await tab.wait_for_function(
            "n => document.querySelectorAll(\"[data-testid='stFileChip']\").length >= n",
            arg=len(user.uploads))
        await settle(tab)
    for pill in user.toggle:
        await tab.locator("[data-testid='stButtonGroup'] button[data-variant='pills']").filter(
            has_text=re.compile(f"^{re.escape(pill)}$")).click()
        await settle(tab)
    # then exactly this user's charts: every network x every good photo, five classes each
    want = sorted((v, t) for v in PREDICT_VARIANTS for t in user.good)
    s = await wait_until(
        tab, lambda s: sorted((c["column"], c["title"]) for c in s["charts"]) == want
        and all(len(c["ticks"]) == 5 for c in s["charts"]) and s["images"] == shown_images(user.good),
        user.name)
    return {"tab": tab, "state": s, "done": time.monotonic()}


async def run_classroom(url: str, inspect_users, predict_users_) -> tuple[list, float]:
    try:
        from playwright.async_api import async_playwright
    except ImportError as err:
        pytest.fail(f"playwright is needed for the browser tests: {err}")
    async with async_playwright() as p:
        try:
            browser = await p.chromium.launch(**CHROMIUM_LAUNCH)
        except Exception as err:  # noqa: BLE001 -- any launch failure must fail the test
            pytest.fail(f"Chromium ({CHROMIUM_LAUNCH['executable_path']}) could not be launched: {err}")
        try:
            start = time.monotonic()
            jobs = [inspect_session(browser, url, u) for u in inspect_users]
            jobs += [predict_session(browser, url, u) for u in predict_users_]
            # interleave the two kinds so that the server has both to do at once
            half = len(inspect_users)
            order = [j for pair in itertools.zip_longest(jobs[:half], jobs[half:]) for j in pair
                     if j is not None]
            results = await asyncio.gather(*order, return_exceptions=True)
            elapsed = time.monotonic() - start
            # back in the original order, then a last look at every page once all are done:
            # a later session's reruns must not have changed an earlier session's page
            by_job = dict(zip(map(id, order), results))
            results = [by_job[id(j)] for j in jobs]
            for r in results:
                if isinstance(r, dict):
                    r["final"] = await state(r.pop("tab"))
                    r["seconds"] = r.pop("done") - start
        finally:
            await browser.close()
    return results, elapsed


def expected_top1(items: dict[str, Path], weights_dir: Path) -> dict[tuple[str, str], dict]:
    """(variant, chart title) -> predict()'s top-1 and the margin to the second class."""
    out = {}
    names, paths = list(items), list(items.values())
    for variant in PREDICT_VARIANTS:
        results = predict(paths, variant, weights_dir / CHECKPOINTS[variant][1], top_k=2)
        for name, r in zip(names, results):
            first, second = r["top"]
            out[variant, name] = {"tick": f"{first['label']} ({first['index']})",
                                  "margin": first["prob"] - second["prob"]}
    return out


@pytest.mark.browser
def test_a_classroom_of_sessions_at_once(server, weights_dir, tmp_path):
    made = photos(tmp_path)
    inspect_users = [INSPECT_USERS[i % len(INSPECT_USERS)] for i in range(CLASSROOM // 2)]
    base = predict_users(made)
    users = [base[i % len(base)] for i in range(CLASSROOM - CLASSROOM // 2)]
    samples = sample_images()
    shown = {t for u in users for t in u.good}
    expected = expected_top1({t: made.get(t) or samples[t] for t in sorted(shown)}, weights_dir)
    inspect_expected = [u.expected() for u in inspect_users]
    assert len(inspect_users) + len(users) >= 8

    idle_rss = rss_bytes(server.proc.pid)
    with RssMonitor(server.proc.pid) as rss:
        results, elapsed = asyncio.run(run_classroom(server.url, inspect_users, users))
    peak_hwm = rss_bytes(server.proc.pid, "VmHWM")
    print(f"\n{len(results)} sessions in {elapsed:.1f} s; server RSS idle {idle_rss / 2**20:.0f} MiB, "
          f"peak {rss.peak / 2**20:.0f} MiB sampled (VmHWM {peak_hwm / 2**20:.0f} MiB)")

    for u, r in zip([*inspect_users, *users], results):
        if isinstance(r, dict):
            print(f"  {r['seconds']:5.1f} s  {u.query if isinstance(u, InspectUser) else u.name}")
    failures = [f"{u.query if isinstance(u, InspectUser) else u.name}: {r!r}"
                for u, r in zip([*inspect_users, *users], results) if isinstance(r, BaseException)]
    assert not failures, "sessions failed:\n" + "\n".join(failures) + "\n" + server.log.read_text()[-3000:]

    for user, want, r in zip(inspect_users, inspect_expected, results):
        for s in (r["state"], r["final"]):
            assert not s["exceptions"], (user.query, s["exceptions"])
            assert not s["errors"] and not s["warnings"], (user.query, s["errors"], s["warnings"])
            assert s["h1"] == want["title"], (user.query, s["h1"], want["title"])
            got = {k: s["metrics"].get(k) for k in ("parameters", "MACs", "input")}
            assert got == {k: want[k] for k in got}, (user.query, got, want)

    margins = []
    for user, r in zip(users, results[len(inspect_users):]):
        for s in (r["state"], r["final"]):
            assert not s["exceptions"], (user.name, s["exceptions"])
            assert not s["warnings"], (user.name, s["warnings"])
            assert len(s["errors"]) == len(user.bad), (user.name, s["errors"])
            for name, error in zip(user.bad, s["errors"]):
                assert name in error, (user.name, name, error)
            titles = {v: [c["title"] for c in s["charts"] if c["column"] == v] for v in PREDICT_VARIANTS}
            assert titles == dict.fromkeys(PREDICT_VARIANTS, user.good), (user.name, titles)
            for chart in s["charts"]:
                want = expected[chart["column"], chart["title"]]
                margins.append(want["margin"])
                # plotly draws the bars bottom-up: the most likely class is the last tick
                assert chart["ticks"][-1] == want["tick"], (user.name, chart, want)
            assert s["images"] == shown_images(user.good), (user.name, "crops, Grad-CAM, feature maps")
    print(f"top-1 checked on {len(margins)} charts; smallest top-1/top-2 margin "
          f"{min(margins):.4f}")
    assert rss.peak < MAX_RSS, f"server peak RSS {rss.peak / 2**30:.2f} GiB"
    assert server.proc.poll() is None, "the server died"


# -- the shared model cache, without a browser ------------------------------------------------------


def _load(path: Path, log: list | None = None):
    def load():
        if log is not None:
            log.append(path.name)
        return load_model("googlenet", path)
    return load


@pytest.fixture(scope="module")
def googlenets(reference_zoo, tmp_path_factory):
    """Three GoogLeNet checkpoints: the reference, and two with its classifier rows permuted
    (reversed, rolled by 1), so that each predicts a known, different class."""
    ref = reference_zoo["torchvision_googlenet"]
    folder = tmp_path_factory.mktemp("googlenets")
    paths = {"a": ref.path}
    for name, perm in (("b", torch.arange(999, -1, -1)), ("c", torch.roll(torch.arange(1000), 1))):
        state = ref.state_dict()
        state["fc.weight"], state["fc.bias"] = state["fc.weight"][perm], state["fc.bias"][perm]
        paths[name] = folder / f"googlenet_{name}.pth"
        torch.save(state, paths[name])
    images = [Image.open(sample_images()[n]).convert("RGB") for n in ("cat", "rocket")]
    # what the torchvision reference itself says, on the preprocessing the loaded model uses
    pre = _load(ref.path)().preprocess
    with torch.no_grad():
        probs = torch.softmax(ref.model(to_batch(images, pre)), dim=1)
    top = probs.argmax(dim=1)
    truth = {"a": top.tolist(), "b": (999 - top).tolist(), "c": ((top + 1) % 1000).tolist()}
    return paths, images, truth, probs.max(dim=1).values


def test_model_cache_evicts_real_models_least_recently_used(googlenets):
    paths, _, _, _ = googlenets
    one = _load(paths["a"])()
    size = one.nbytes
    assert 20e6 < size < 40e6  # ~6.6 M float32 parameters and the batch-norm buffers

    log: list[str] = []
    cache = ModelCache(max_bytes=int(1.5 * size))  # one fits
    a = cache.get(("a",), _load(paths["a"], log))
    assert cache.keys() == [("a",)]
    b = cache.get(("b",), _load(paths["b"], log))
    assert cache.keys() == [("b",)] and cache.total_bytes() <= cache.max_bytes
    assert cache.get(("b",), _load(paths["b"], log)) is b
    assert cache.get(("a",), _load(paths["a"], log)) is not a  # evicted: loaded again
    assert log == [paths["a"].name, "googlenet_b.pth", paths["a"].name]

    log.clear()
    cache = ModelCache(max_bytes=int(2.5 * size))  # two fit
    cache.get(("a",), _load(paths["a"], log))
    cache.get(("b",), _load(paths["b"], log))
    cache.get(("a",), _load(paths["a"], log))  # a is now the most recent: b is the one to go
    cache.get(("c",), _load(paths["c"], log))
    assert cache.keys() == [("a",), ("c",)]
    assert len(log) == 3


@pytest.mark.parametrize("fits", [1, 2], ids=["thrashing", "both-fit"])
def test_model_cache_concurrent_gets_predict_correctly(googlenets, fits):
    """8 threads, two keys, each thread getting and running models in turn. With room for one
    model only, models are evicted while other threads still run them; they must keep working."""
    paths, images, truth, confidence = googlenets
    size = _load(paths["a"])().nbytes
    cache = ModelCache(max_bytes=int((fits + 0.5) * size))
    loads: list[str] = []
    tops: dict[str, list] = {"a": [], "b": []}
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def user(t):
        try:
            barrier.wait()
            for i in range(4):
                key = "ab"[(t + i) % 2]
                loaded = cache.get((key,), _load(paths[key], loads))
                tops[key].append(classify(loaded, images, k=5))
        except BaseException as err:  # noqa: BLE001 -- reported below
            errors.append(err)

    threads = [threading.Thread(target=user, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for key in "ab":
        assert len(tops[key]) == 16  # 8 threads x 4 gets, half of them for each key
        first = tops[key][0]
        assert [[c["index"] for c in row] for row in first] and all(
            [[c["index"] for c in row] for row in other] == [[c["index"] for c in row] for row in first]
            # one model, one batch, one process: only the thread split of a kernel may differ
            and all(abs(x["prob"] - y["prob"]) <= ulps(1.0, 8) for rx, ry in zip(other, first)
                    for x, y in zip(rx, ry))
            for other in tops[key]), f"{key}: the same model and photos gave different answers"
        assert [row[0]["index"] for row in first] == truth[key]
        # against torchvision's own model: logits within 1e-4, so probabilities within PROB_ATOL
        assert [row[0]["prob"] for row in first] == pytest.approx(confidence.tolist(), abs=PROB_ATOL)
    if fits == 2:
        assert sorted(loads) == sorted(p.name for k, p in paths.items() if k in "ab"), loads
    else:
        assert len(loads) >= 2


def test_cached_models_stay_frozen_and_unchanged_by_the_pages_work(googlenets):
    from explorer.runtime.saliency import feature_maps, grad_cam

    paths, images, truth, _ = googlenets
    cache = ModelCache()
    loaded = cache.get(("a",), _load(paths["a"]))
    model = loaded.model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = to_batch(images[:1], loaded.preprocess)
    for _ in range(2):
        classify(loaded, images)
        grad_cam(model, x)
        feature_maps(model, x, channels=16)
    assert cache.get(("a",), _load(paths["a"])) is loaded
    assert not any(m.training for m in model.modules())
    assert not any(p.requires_grad for p in model.parameters())
    assert all(p.grad is None for p in model.parameters())
    assert not any(m._forward_hooks or m._forward_pre_hooks or m._backward_hooks
                   for m in model.modules())
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert [row[0]["index"] for row in classify(loaded, images)] == truth["a"]
