"""The deployment's topology on this machine (deploy/local.sh): HAProxy with a sticky cookie in
front of two Streamlit replicas, heavy work on a local Ray head. One `up` for the module.

New browsers spread over the replicas and each sticks to its own (HAProxy's SRV cookie; every
answer names its replica in X-Explorer-Replica); a timing runs as a Ray task (in a process of the
Ray head's session, not the replica's); a Ray worker killed mid-job is retried once or reported;
a killed replica's browser reloads onto the other with its view restored from the URL; `down`
leaves no process of all those `up` started."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from serving import IDLE, free_port, no_exception, settle

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
LOCAL = ROOT / "deploy" / "local.sh"


def _sh(state: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "INCEPTION_EXPLORER_LOCAL_STATE": str(state), "PYTHON": sys.executable}
    return subprocess.run(["bash", str(LOCAL), *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def _session(sid: int) -> set[int]:
    """The live processes of session ``sid`` (local.sh starts each part with setsid)."""
    out = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().split(") ")[1].split()
            except (FileNotFoundError, IndexError, ProcessLookupError):
                continue
            if int(fields[3]) == sid and fields[0] != "Z":
                out.add(int(entry.name))
    return out


class Deployment:
    def __init__(self, state: Path, port: int):
        self.state, self.port = state, port
        self.url = f"http://127.0.0.1:{port}"
        self.replicas = [int(p) for p in (state / "replicas").read_text().split()]
        self.ray_sid = int((state / "ray.pid").read_text())
        self.started = self.processes()

    def pid(self, name: str) -> int:
        return int((self.state / name).read_text())

    def processes(self) -> set[int]:
        """Every live process of the sessions local.sh started."""
        sids = [int(f.read_text()) for f in self.state.glob("*.pid*") if f.read_text().strip()]
        return set().union(*(_session(s) for s in sids))


@pytest.fixture(scope="module")
def deployment():
    # its own temporary folder: pytest's numbered ones are pruned by other runs on a shared
    # machine, and the pid files `down` needs must outlive the module
    state = Path(tempfile.mkdtemp(prefix="explorer-deploy-"))
    port = free_port()
    try:
        done = _sh(state, "up", "--replicas", "2", "--port", str(port))
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"up: http://127.0.0.1:{port} -> replicas on" in done.stdout
        yield Deployment(state, port)
    finally:
        _sh(state, "down")
        shutil.rmtree(state, ignore_errors=True)


def _get(url: str, cookie: str | None = None):
    req = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    with urllib.request.urlopen(req, timeout=10) as r:
        srv = [c for c in r.headers.get_all("Set-Cookie") or [] if c.startswith("SRV=")]
        return r.headers.get("X-Explorer-Replica"), (srv or [None])[0]


def test_every_answer_names_its_replica_and_a_cookie_pins_it(deployment):
    # round robin without a cookie: every replica answers in turn (HAProxy's own health checks
    # may still hold one back for a moment after `up` returned, so ask until both have answered)
    seen = []
    for _ in range(60):
        seen.append(_get(f"{deployment.url}/_stcore/health"))
        if {int(r) for r, _ in seen} == set(deployment.replicas):
            break
        time.sleep(0.5)
    assert {int(r) for r, _ in seen} == set(deployment.replicas)
    replica, cookie = seen[0]
    assert cookie.startswith(f"SRV=r{replica}")
    pinned = cookie.split(";")[0]
    assert {_get(f"{deployment.url}/", pinned)[0] for _ in range(6)} == {replica}


def _open(browser, url: str):
    """A new browser (its own cookies) on ``url``; returns (context, tab, replicas that answered)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(120_000)  # a shared 2-core machine: pages settle slowly
    tab = context.new_page()
    answered = []
    # pages and API calls only: scripts and styles may come from the browser's cache, with the
    # headers of the replica that first sent them
    tab.on("response", lambda r: answered.append(r.headers.get("x-explorer-replica"))
           if r.request.resource_type in ("document", "xhr", "fetch") else None)
    tab.goto(url)
    settle(tab)
    return context, tab, answered


def _cookie(context) -> str:
    return next(c["value"] for c in context.cookies() if c["name"] == "SRV")


def test_chromium_sessions_spread_over_the_replicas_and_stick(deployment, browser):
    opened = [_open(browser, f"{deployment.url}/inspect?variant=googlenet") for _ in range(4)]
    try:
        homes = {}
        for context, tab, answered in opened:
            no_exception(tab)
            home = _cookie(context)
            # reruns, a reload and another page: every HTTP answer from the same replica
            tab.goto(f"{deployment.url}/compare")
            settle(tab)
            tab.reload()
            settle(tab)
            got = {a for a in answered if a is not None}
            assert got == {home.removeprefix("r")}, (home, got)
            homes[id(context)] = home
        assert len(set(homes.values())) == 2  # four new browsers, round robin: both replicas
    finally:
        for context, _, _ in opened:
            context.close()


def _press_timing(tab) -> None:
    tab.get_by_role("button", name=re.compile("Time a forward pass")).click()


def test_a_timing_runs_as_a_ray_task(deployment, browser):
    context, tab, _ = _open(browser, f"{deployment.url}/inspect?variant=googlenet&size=128")
    try:
        _press_timing(tab)
        done = tab.get_by_text(re.compile(r"median [\d.]+ ms"))
        done.wait_for(timeout=180_000)
        settle(tab)
        caption = tab.get_by_text(re.compile(r"Ran as a Ray task \(pid \d+\)")).inner_text()
        pid = int(re.search(r"pid (\d+)", caption).group(1))
        # a process of the Ray head's session: not the replica, not one of its workers
        assert pid in _session(deployment.ray_sid)
        assert pid not in _session(deployment.pid(f"replica-{_cookie(context)[1:]}.pid"))
        no_exception(tab)
    finally:
        context.close()


def _busy_ray_workers(sid: int) -> list[int]:
    out = []
    for pid in _session(sid):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except FileNotFoundError:
            continue
        if cmd.startswith("ray::") and "timing" in cmd:
            out.append(pid)
    return out


def test_a_ray_worker_killed_mid_job_is_retried_or_reported(deployment, browser):
    context, tab, _ = _open(browser, f"{deployment.url}/inspect?variant=inception_resnet_v2")
    try:
        _press_timing(tab)
        tab.get_by_text(re.compile(r"run \d of \d")).wait_for(timeout=180_000)  # it has begun
        deadline = time.monotonic() + 120
        while not (busy := _busy_ray_workers(deployment.ray_sid)):
            assert time.monotonic() < deadline, "no Ray worker took the timing"
            time.sleep(0.1)
        os.kill(busy[0], 9)
        outcome = tab.get_by_text(re.compile(
            r"median [\d.]+ ms|The worker running timing inception_resnet_v2 stopped"))
        outcome.first.wait_for(timeout=240_000)
        settle(tab)
        no_exception(tab)
        if tab.get_by_text(re.compile(r"median [\d.]+ ms")).count():
            assert tab.get_by_text("it was retried once").count() == 1
        # the replica still serves this browser: nothing else was disturbed
        tab.reload()
        settle(tab)
        no_exception(tab)
    finally:
        context.close()


def test_a_killed_replicas_browser_reloads_onto_the_other_with_its_view(deployment, browser):
    # a view away from the defaults (Streamlit drops default values from the URL)
    view = f"{deployment.url}/inspect?variant=inception_v4&rep_1=6"
    context, tab, answered = _open(browser, view)
    try:
        home = _cookie(context)[1:]
        survivor = next(str(p) for p in deployment.replicas if str(p) != home)
        pid = deployment.pid(f"replica-{home}.pid")
        os.kill(pid, 9)
        deadline = time.monotonic() + 10
        while _alive(pid):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        # the browser's next request; its cookie still names the dead replica
        response = tab.goto(view)
        settle(tab)
        assert response.headers.get("x-explorer-replica") == survivor
        assert _cookie(context) == f"r{survivor}"  # re-pinned (option redispatch)
        answered.clear()  # (Playwright delivers events late: older answers may be listed above)
        tab.reload()
        settle(tab)
        assert {a for a in answered if a is not None} == {survivor}
        assert tab.locator(IDLE).count() == 1
        assert "variant=inception_v4" in tab.url and "rep_1=6" in tab.url
        assert tab.get_by_text("Inception-v4").count() > 0
        no_exception(tab)
    finally:
        context.close()


def test_down_leaves_no_process(deployment):
    started = deployment.started | deployment.processes()
    assert len(started) >= 5  # haproxy, two replicas, the Ray head and its daemons
    done = _sh(deployment.state, "down")
    assert done.returncode == 0, done.stderr
    left = [p for p in started if _alive(p)]
    assert not left, left
    assert not list(deployment.state.glob("*.pid*"))
    with pytest.raises(OSError):
        _get(f"{deployment.url}/_stcore/health")
