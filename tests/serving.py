"""Servers, browsers and process readings shared by the tests and the benchmarks.

Not a test module (no tests here): test modules and ``benchmarks/*.py`` import it (tests/ is on
``sys.path`` for both), so nothing imports another test module. A server or browser that cannot
start raises ``ServerError``: the test errors (never skips) and a benchmark stops with the log.
"""

from __future__ import annotations

import hashlib
import http.server
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# Debian's Chromium, never one Playwright downloads: `await p.chromium.launch(**CHROMIUM_LAUNCH)`
CHROMIUM_LAUNCH = {"executable_path": CHROMIUM,
                   "args": ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]}
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
GRAPH = "[data-explorer-graph] svg"
TABLE = "[data-testid='stDataFrame']"
PLOT = "[data-testid='stPlotlyChart'] .main-svg"
EXCEPTION = "[data-testid='stException']"
TIMEOUT_MS = 90_000


class ServerError(RuntimeError):
    """A server or browser that did not start; the message holds its log."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def streamlit_server(log: Path, env: dict, command=None, cwd=ROOT, preexec_fn=None):
    """`streamlit run explorer/app.py` (or ``command``, which takes streamlit's options, e.g. an
    installed `inception-explorer app`) on a free port of 127.0.0.1, ready (health checked);
    yields (url, process) and stops it afterwards. Server output goes to ``log``;
    ``preexec_fn`` runs in the server's process before it starts (e.g. to set rlimits)."""
    port = free_port()
    command = command or [sys.executable, "-m", "streamlit", "run", "explorer/app.py"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*command, "--server.headless", "true",
             "--server.port", str(port), "--server.address", "127.0.0.1",
             "--browser.gatherUsageStats", "false"],
            cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **env},
            preexec_fn=preexec_fn)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.read().strip() == b"ok":
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise ServerError(f"streamlit did not come up:\n{log.read_text()}")
            time.sleep(0.5)
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def launch_chromium(playwright):
    """Debian's Chromium (never a browser Playwright downloads); a failed launch is an error
    (never a skip: a silent skip would hide a broken app)."""
    try:
        return playwright.chromium.launch(**CHROMIUM_LAUNCH)
    except Exception as err:  # noqa: BLE001 -- any launch failure must stop the test
        raise ServerError(f"Chromium ({CHROMIUM}) could not be launched: {err}") from err


# -- pages in the browser --------------------------------------------------------------------------

def settle(tab) -> None:
    """Wait until the script has run and the page is quiet (Streamlit's e2e suite's way)."""
    tab.wait_for_selector("[data-testid='stApp'][data-test-connection-state='CONNECTED']")
    tab.wait_for_selector(IDLE)
    tab.wait_for_timeout(500)  # a rerun triggered by the first run (URL-bound widgets)
    tab.wait_for_selector(IDLE)


def visit(tab, url: str) -> None:
    tab.goto(url)
    settle(tab)
    tab.wait_for_selector("h1")


def no_exception(tab) -> None:
    assert tab.locator(EXCEPTION).count() == 0, tab.locator(EXCEPTION).first.inner_text()


# -- a loopback HTTP file server ------------------------------------------------------------------


class Files(http.server.ThreadingHTTPServer):
    """Serves ``files`` (path -> bytes); ``truncate`` paths send half the body but announce all
    of it. Every request is logged in ``requests``."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.files: dict[str, bytes] = {}
        self.truncate: set[str] = set()
        self.requests: list[tuple[str, str]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _answer(self, with_body: bool):
        server: Files = self.server
        server.requests.append((self.command, self.path))
        data = server.files.get(self.path)
        if data is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
        self.send_header("X-Repo-Commit", "0" * 40)
        self.end_headers()
        if with_body:
            self.wfile.write(data[: len(data) // 2] if self.path in server.truncate else data)
            if self.path in server.truncate:
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)

    def do_GET(self):
        self._answer(True)

    def do_HEAD(self):
        self._answer(False)


# -- process readings -----------------------------------------------------------------------------


def rss_bytes(pid: int, field_name: str = "VmRSS") -> int:
    """A field of /proc/<pid>/status (kB there) in bytes; 0 once the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class RssMonitor:
    """Samples a process's VmRSS every ``interval`` seconds in a thread; keeps the peak."""

    def __init__(self, pid: int, interval: float = 0.1):
        self.pid, self.interval = pid, interval
        self.peak = rss_bytes(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes(self.pid))
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes(self.pid))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) from /proc/<pid>/stat."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0
