"""Many users predicting at once: answers per second and latency, through the app or the library.

    python benchmarks/load.py [--sessions N] [--seconds T] [--variant googlenet]
                              [--mode browser|library|proxy] [--threads K] [--weights DIR]
                              [--replicas R] [--no-ray]

``--mode browser`` (default) starts ``streamlit run explorer/app.py`` on a free port and opens N
concurrent Chromium sessions (Playwright, one browser context each) on the Predict page with one
network (``?predict_variants=<variant>``). Each session then clicks the "coffee" sample pill on
and off for T seconds; one *answer* is one click followed by the whole page re-rendered: the
top-5 chart of each photo (cat, or cat + coffee), Grad-CAM and the feature maps. Its latency is
from the click to the settled page, as the user sees it. The browsers run on the same machine
and take their share of the CPU.

``--mode proxy`` does the same through the deployment's topology on this machine: ``bash
deploy/local.sh up --replicas R`` (HAProxy with the sticky cookie in front of R replicas, a local
Ray head for heavy work unless ``--no-ray``), the sessions spread over the replicas by the proxy;
CPU is that of every process the deployment started (replicas, Ray, HAProxy), and the replicas
that answered are counted from the ``X-Explorer-Replica`` header. ``down`` afterwards.

``--mode library`` runs ``explorer.runtime.inference.classify`` on one photo from N threads sharing one
loaded model, for T seconds: the same model work without Streamlit, the browsers, Grad-CAM or
the feature maps.

Both print answers per second, p50 / p95 latency (ms), errors and peak RSS (of the server, or of
this process in library mode).

Browser mode also prints the server's **CPU seconds per answer**: the CPU time over the run of the
server and of the worker processes it started (``/proc/<pid>/stat``, all threads; predictions,
Grad-CAM and the feature maps run in those workers) divided by the answers, split into model
forward (classify: preprocessing, forward, top-k), Grad-CAM, feature maps -- measured where they
run with per-thread CPU time (``explorer.core.cost``: server and workers append JSON lines to the
file named by ``INCEPTION_EXPLORER_PROFILE``) -- and the app's own work (the rest: Streamlit, the
page, images, charts, and handing the work to the workers). Hence the capacity of one server in
answers per second per core, and an estimate of how many users one server of 2 or 8 cores answers
with a p95 under ``--target`` seconds (``explorer.core.cost.max_rate``): the wait for a free core
as in an M/M/c queue, plus the service time, which is the measured CPU per answer (one core per
answer); each user asks once every ``--think`` seconds (Poisson arrivals). The server runs with one
torch thread by default (``--threads 1``): one core per answer, and torch's worker threads, which
the per-thread split cannot see, stay idle.

The weights are RANDOM unless ``--weights DIR`` names a folder of real checkpoints (laid out as
``$INCEPTION_EXPLORER_WEIGHTS``): the torchvision (GoogLeNet, Inception-v3) or timm (v4,
Inception-ResNet-v2) model is built with random weights and saved under the registry's name, as
a machine without internet cannot download the real ones. The predictions are meaningless; the
cost is the same. ``--threads K`` sets torch's intra-op threads (OMP_NUM_THREADS for the server).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from serving import CHROMIUM_LAUNCH, RssMonitor, cpu_seconds, rss_bytes, streamlit_server  # noqa: E402

from explorer.core import cost  # noqa: E402

STEP_TIMEOUT_S = 120
# The page is done: the script idle, nothing stale, exactly these chart titles, 5 bars each, and
# the Grad-CAM + feature-map images drawn.
DONE_JS = """titles => {
  const app = document.querySelector("[data-testid='stApp']");
  if (!app || app.getAttribute("data-test-script-state") !== "notRunning") return false;
  if (document.querySelector("[data-stale='true']")) return false;
  if (document.querySelector("[data-testid='stException']")) return true;  // counted as an error
  const charts = [...document.querySelectorAll("[data-testid='stPlotlyChart']")];
  const got = charts.map(c => c.querySelector(".gtitle")?.textContent || "").sort();
  return JSON.stringify(got) === JSON.stringify([...titles].sort())
    && charts.every(c => c.querySelectorAll(".ytick text").length === 5)
    // each photo as the one network crops it, then Grad-CAM and the feature maps
    && document.querySelectorAll("[data-testid='stImage'] img").length === titles.length + 2;
}"""


# -- random-weight checkpoints -----------------------------------------------------------------------


def make_checkpoint(variant: str, folder: Path) -> Path:
    """A checkpoint with random weights under the registry name of ``variant``'s default weights,
    in the layout (torchvision or timm) of the real file; batch-norm statistics measured on a
    random batch so that the activations stay of order one."""
    import torch

    from explorer.variants import VARIANTS
    from explorer.weights.pretrained import default_spec

    spec = default_spec(variant)
    size = VARIANTS[variant].native_input_size
    torch.manual_seed(0)
    if spec is not None and spec.checkpoint_format == "torchvision":
        import torchvision
        model = getattr(torchvision.models, variant)(weights=None, aux_logits=True,
                                                     init_weights=True)
    elif spec is not None and spec.checkpoint_format == "timm":
        try:
            import timm
        except ImportError:
            sys.exit(f"{variant}: making its random checkpoint needs timm (pip install timm)")
        model = timm.create_model(variant, pretrained=False)
    else:
        sys.exit(f"{variant}: no torchvision or timm weights to imitate; pass --weights DIR")
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum = None
    with torch.no_grad():
        model.train()(torch.randn(2, 3, size, size))
    path = folder / f"{spec.name}.pth"
    torch.save(model.state_dict(), path)
    return path


def weights_folder(args, tmp: Path) -> Path:
    if args.weights:
        print(f"weights: real checkpoints from {args.weights}")
        return Path(args.weights)
    path = make_checkpoint(args.variant, tmp)
    print(f"weights: RANDOM, saved as {path.name} -- this machine cannot download the real ones "
          "(predictions are meaningless; the cost is that of the real network)")
    return tmp


def stats(latencies_ms: list[float], seconds: float, errors: int, rss: int, who: str,
          cpu: float) -> None:
    n = len(latencies_ms)
    q = statistics.quantiles(latencies_ms, n=20, method="inclusive") if n >= 2 else latencies_ms * 19
    print(f"answers:        {n} in {seconds:.1f} s = {n / seconds:.2f} answers/s")
    if n:
        print(f"latency p50:    {statistics.median(latencies_ms):.0f} ms")
        print(f"latency p95:    {q[18]:.0f} ms")
        print(f"latency max:    {max(latencies_ms):.0f} ms")
    print(f"errors:         {errors}")
    if rss:
        print(f"peak RSS:       {rss / 2**20:.0f} MiB ({who})")
    print(f"CPU time:       {cpu:.1f} s = {cpu / seconds:.2f} of {os.cpu_count()} cores on average "
          f"({who})")


# -- library mode ------------------------------------------------------------------------------------


def run_library(args) -> None:
    import warnings

    import torch

    from explorer.core.images import load_image, sample_images
    from explorer.runtime.inference import classify
    from explorer.runtime.loaded import load_model
    from explorer.weights.pretrained import default_spec

    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        folder = weights_folder(args, Path(tmp))
        os.environ["INCEPTION_EXPLORER_WEIGHTS"] = str(folder)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # auxiliary-head tensors dropped
            loaded = load_model(args.variant, default_spec(args.variant).tag)
    photos = [load_image(p) for p in sample_images().values()]
    print(f"mode library: {args.sessions} threads x classify(1 photo) on one shared {args.variant} "
          f"model, {args.seconds:g} s, torch threads {torch.get_num_threads()}, "
          f"{os.cpu_count()} CPUs")
    classify(loaded, photos[:1])  # warm-up
    latencies: list[float] = []
    errors = [0]
    stop = time.monotonic() + args.seconds
    start_gate = threading.Barrier(args.sessions)

    def worker(t: int) -> None:
        start_gate.wait()
        i = t
        while time.monotonic() < stop:
            begin = time.perf_counter()
            try:
                classify(loaded, [photos[i % len(photos)]])
            except Exception as err:  # noqa: BLE001 -- counted and shown once
                if not errors[0]:
                    print(f"error: {err!r}")
                errors[0] += 1
                continue
            latencies.append((time.perf_counter() - begin) * 1000)
            i += 1

    with RssMonitor(os.getpid()) as rss:
        cpu0 = cpu_seconds(os.getpid())
        began = time.monotonic()
        threads = [threading.Thread(target=worker, args=(t,)) for t in range(args.sessions)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - began
        cpu = cpu_seconds(os.getpid()) - cpu0
    stats(latencies, elapsed, errors[0], max(rss.peak, rss_bytes(os.getpid(), "VmHWM")), "this process", cpu)


# -- browser mode ------------------------------------------------------------------------------------


async def page_errors(tab) -> list[str]:
    return await tab.evaluate("""() => [...document.querySelectorAll(
        "[data-testid='stException'], [data-testid='stAlertContentError']")].map(e => e.innerText)""")


async def open_predict(browser, url: str, variant: str, replicas: dict | None = None):
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    tab = await context.new_page()
    if replicas is not None:
        def count(response):
            name = response.headers.get("x-explorer-replica")
            if name:
                replicas[name] = replicas.get(name, 0) + 1
        tab.on("response", count)
    tab.set_default_timeout(STEP_TIMEOUT_S * 1000)
    await tab.goto(f"{url}/predict?predict_variants={variant}")
    await tab.wait_for_function(DONE_JS, arg=["cat"], polling=50)
    return tab


async def session(browser, url: str, variant: str, stop_at: list[float], ready: asyncio.Event,
                  opened: list, latencies: list[float], errors: list[str],
                  replicas: dict | None = None) -> None:
    try:
        tab = await open_predict(browser, url, variant, replicas)
    except Exception as err:  # noqa: BLE001 -- a session that never opened is an error
        errors.append(f"open: {err}")
        opened.append(False)
        return
    opened.append(True)
    await ready.wait()
    pill = tab.locator("[data-testid='stButtonGroup'] button[data-variant='pills']").filter(
        has_text="coffee")
    on = False
    while time.monotonic() < stop_at[0]:
        on = not on
        want = ["cat", "coffee"] if on else ["cat"]
        begin = time.perf_counter()
        try:
            await pill.click()
            await tab.wait_for_function(DONE_JS, arg=want, polling=50)
        except Exception as err:  # noqa: BLE001 -- a step that never finished
            errors.append(f"step: {str(err).splitlines()[0]}")
            on = "coffee" in await tab.evaluate(
                "() => [...document.querySelectorAll(\"button[data-variant='pills'][aria-pressed='true']\")]"
                ".map(b => b.innerText).join(' ')")
            continue
        shown = await page_errors(tab)
        if shown:
            errors.append(shown[0][:200])
            continue
        latencies.append((time.perf_counter() - begin) * 1000)


async def drive(url: str, args, server_pid: int | None, window: list, *, cpu_of=None,
                replicas: dict | None = None) -> tuple[list[float], list[str], float, float]:
    """``cpu_of()``: the CPU seconds to count (default: the server process's); ``replicas``
    counts the X-Explorer-Replica header of every page answer (proxy mode)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(**CHROMIUM_LAUNCH)
        try:
            # one session first: it loads the model into the server's shared cache (cold start)
            begin = time.perf_counter()
            first = await open_predict(browser, url, args.variant)
            print(f"first page (cold: model load, first run): {time.perf_counter() - begin:.1f} s")
            await first.context.close()
            latencies: list[float] = []
            errors: list[str] = []
            opened: list[bool] = []
            stop_at = [float("inf")]
            ready = asyncio.Event()
            tasks = [asyncio.create_task(session(browser, url, args.variant, stop_at, ready, opened,
                                                 latencies, errors, replicas))
                     for _ in range(args.sessions)]
            begin = time.perf_counter()
            while len(opened) < args.sessions:
                await asyncio.sleep(0.1)
            print(f"{sum(opened)} sessions open after {time.perf_counter() - begin:.1f} s; "
                  f"clicking for {args.seconds:g} s")
            cpu_of = cpu_of or (lambda: _tree_cpu(server_pid))
            began, cpu0, wall0 = time.monotonic(), cpu_of(), time.time()
            stop_at[0] = began + args.seconds
            ready.set()
            await asyncio.gather(*tasks)
            elapsed = time.monotonic() - began  # the last answers end a little after T
            cpu = cpu_of() - cpu0
            window[:] = [wall0, time.time()]
        finally:
            await browser.close()
    return latencies, errors, elapsed, cpu


PART_NAMES = {"forward": "model forward (classify)", "grad_cam": "Grad-CAM",
              "feature_maps": "feature maps"}


def cpu_split(cpu: float, answers: int, parts: dict, every_call: dict, args) -> None:
    """The server's CPU per answer, by part; capacity; users served at p95 <= target."""
    per = {name: parts.get(name, {}).get("cpu_s", 0.0) / answers for name in PART_NAMES}
    own = cpu / answers - sum(per.values())
    print(f"server CPU per answer: {cpu / answers:.3f} s  (all threads, /proc)")
    for name, label in PART_NAMES.items():
        calls = parts.get(name, {}).get("calls", 0)
        print(f"  {label:<26} {per[name]:.3f} s  ({calls} calls in the run)")
    print(f"  {'the app (the rest)':<26} {own:.3f} s")
    fresh = {n: every_call[n]["cpu_s"] / every_call[n]["calls"] for n in PART_NAMES
             if every_call.get(n, {}).get("calls")}
    if fresh:
        print("  per call, whole run (warm-up included): " + ", ".join(
            f"{PART_NAMES[n]} {v:.3f} s" for n, v in fresh.items()))
    if args.threads not in (None, 1):
        print("  note: with more than one torch thread, torch's worker threads are in 'the app'")
    scenarios = {"this run's answers": cpu / answers}
    if all(n in fresh for n in PART_NAMES):
        # the answers (top-5 per photo set, Grad-CAM and feature maps per photo) are kept by the
        # server (explorer.ui.answers): a new photo computes each part again
        scenarios["a new photo each answer"] = cpu / answers + sum(fresh[n] - per[n]
                                                                   for n in PART_NAMES)
    for what, service in scenarios.items():
        print(f"capacity, {what}: {1 / service:.2f} answers/s per core ({service:.3f} CPU s each)")
        for cores in (2, 8):
            rate = cost.max_rate(service, cores, args.target)
            print(f"  {cores} cores: {rate:.2f} answers/s at p95 <= {args.target:g} s "
                  f"= {rate * args.think:.0f} users asking every {args.think:g} s")
    if own > 0:
        # torch releases the GIL; the app's Python work in one process runs one thread at a time
        print(f"one server process runs the app's share one answer at a time (Python's GIL): at "
              f"most {1 / own:.1f} answers/s per process; above that, more processes (sticky "
              "sessions)")


def run_browser(args) -> None:
    try:
        import playwright  # noqa: F401
    except ImportError:
        sys.exit("browser mode needs playwright (pip install playwright) and Chromium")
    with tempfile.TemporaryDirectory() as tmp:
        folder = weights_folder(args, Path(tmp))
        log, profile = Path(tmp) / "server.log", Path(tmp) / "profile.jsonl"
        env = {"INCEPTION_EXPLORER_WEIGHTS": str(folder), cost.ENV: str(profile),
               "INCEPTION_EXPLORER_CACHE": str(Path(tmp) / "cache")}
        threads = 1 if args.threads is None else args.threads
        if threads:
            env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
        with streamlit_server(log, env) as (url, proc):
            print(f"mode browser: {args.sessions} Chromium sessions on {url}/predict with "
                  f"{args.variant}, {args.seconds:g} s, server torch threads "
                  f"{threads or 'default'}, {os.cpu_count()} CPUs (browsers included)")
            window: list[float] = []
            with RssMonitor(proc.pid) as rss:
                latencies, errors, elapsed, cpu = asyncio.run(drive(url, args, proc.pid, window))
            peak = max(rss.peak, rss_bytes(proc.pid, "VmHWM"))
        stats(latencies, elapsed, len(errors), peak, "the streamlit server", cpu)
        if latencies:
            cpu_split(cpu, len(latencies), cost.read_profile(profile, *window),
                      cost.read_profile(profile), args)
        for error in sorted(set(errors))[:5]:
            print(f"  error: {error}")
        if errors:
            print(log.read_text()[-2000:])


def _tree_cpu(pid: int) -> float:
    """CPU seconds of ``pid`` and of its live child processes (the server's worker processes)."""
    total = cpu_seconds(pid)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(") ", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if parent == pid:
            total += cpu_seconds(int(entry.name))
    return total


# -- proxy mode: deploy/local.sh ---------------------------------------------------------------------


def _sessions_cpu(sids: list[int]) -> float:
    """CPU seconds of the live processes of these sessions (local.sh starts each part in one)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[3]) in sids:
            total += cpu_seconds(int(entry.name))
    return total


class _Deployment:
    def __init__(self, state: Path):
        self.state = state

    def sids(self) -> list[int]:
        return [int(f.read_text()) for f in self.state.glob("*.pid*") if f.read_text().strip()]

    def cpu(self) -> float:
        return _sessions_cpu(self.sids())


def run_proxy(args) -> None:
    import subprocess

    from serving import free_port

    try:
        import playwright  # noqa: F401
    except ImportError:
        sys.exit("proxy mode needs playwright (pip install playwright) and Chromium")
    local = ROOT / "deploy" / "local.sh"
    with tempfile.TemporaryDirectory() as tmp:
        folder = weights_folder(args, Path(tmp))
        state, profile = Path(tempfile.mkdtemp(prefix="explorer-load-")), Path(tmp) / "profile.jsonl"
        threads = 1 if args.threads is None else args.threads
        env = {**os.environ, "INCEPTION_EXPLORER_WEIGHTS": str(folder), cost.ENV: str(profile),
               "INCEPTION_EXPLORER_CACHE": str(Path(tmp) / "cache"),
               "INCEPTION_EXPLORER_LOCAL_STATE": str(state), "PYTHON": sys.executable}
        if threads:
            env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
        if args.no_ray:
            env["INCEPTION_EXPLORER_NO_RAY"] = "1"
        port = free_port()
        up = subprocess.run(["bash", str(local), "up", "--replicas", str(args.replicas),
                             "--port", str(port)], env=env, capture_output=True, text=True)
        try:
            if up.returncode:
                sys.exit(f"deploy/local.sh up failed:\n{up.stdout}{up.stderr}")
            print(up.stdout.strip())
            url = f"http://127.0.0.1:{port}"
            dep = _Deployment(state)
            print(f"mode proxy: {args.sessions} Chromium sessions on {url}/predict with "
                  f"{args.variant}, {args.seconds:g} s, {args.replicas} replica(s), "
                  f"{'no Ray' if args.no_ray else 'Ray head'}, replica torch threads "
                  f"{threads or 'default'}, {os.cpu_count()} CPUs (browsers included)")
            window: list[float] = []
            replicas: dict[str, int] = {}
            latencies, errors, elapsed, cpu = asyncio.run(
                drive(url, args, None, window, cpu_of=dep.cpu, replicas=replicas))
            stats(latencies, elapsed, len(errors), 0, "every process of the deployment", cpu)
            # reruns travel on each tab's WebSocket; the HTTP answers show where each tab is pinned
            print("HTTP answers by replica (X-Explorer-Replica; page loads, assets, media): "
                  + ", ".join(f"{k}: {v}" for k, v in sorted(replicas.items())))
            if latencies:
                cpu_split(cpu, len(latencies), cost.read_profile(profile, *window),
                          cost.read_profile(profile), args)
            for error in sorted(set(errors))[:5]:
                print(f"  error: {error}")
        finally:
            down = subprocess.run(["bash", str(local), "down"], env=env, capture_output=True,
                                  text=True)
            print(down.stdout.strip() or down.stderr.strip())
            if down.returncode == 0:
                import shutil
                shutil.rmtree(state, ignore_errors=True)  # its logs with it


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=4, help="concurrent users (threads in "
                        "library mode)")
    parser.add_argument("--seconds", type=float, default=30, help="how long to keep asking")
    parser.add_argument("--variant", default="googlenet",
                        choices=["googlenet", "inception_v3", "inception_v4", "inception_resnet_v2"])
    parser.add_argument("--mode", choices=["browser", "library", "proxy"], default="browser")
    parser.add_argument("--replicas", type=int, default=2, help="proxy mode: app replicas")
    parser.add_argument("--no-ray", action="store_true",
                        help="proxy mode: heavy work in each replica's worker processes")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (the server's OMP_NUM_THREADS; browser mode: "
                             "1 unless given, 0 = torch's default); library mode: torch's default")
    parser.add_argument("--weights", help="a folder of real checkpoints named like "
                        "$INCEPTION_EXPLORER_WEIGHTS (default: random weights)")
    parser.add_argument("--think", type=float, default=30,
                        help="seconds between one user's answers, for the capacity estimate")
    parser.add_argument("--target", type=float, default=3.0,
                        help="the p95 response time (s) the capacity estimate must keep")
    args = parser.parse_args(argv)
    if args.sessions < 1 or args.seconds <= 0:
        parser.error("--sessions must be >= 1 and --seconds > 0")
    {"library": run_library, "browser": run_browser, "proxy": run_proxy}[args.mode](args)


if __name__ == "__main__":
    main()
