"""What the server spends: CPU seconds per part of an answer, and less of the app's own.

**Accounting.** ``measure("forward")`` around a computation adds the CPU time of the thread
that runs it (``time.thread_time``: this thread only, so the sessions a server runs at once do
not count each other's work) to a process-wide total for that part. A part measured inside
another is subtracted from the outer one, so the parts never count a second twice. When
``INCEPTION_EXPLORER_PROFILE`` names a file, each measured call also appends one JSON line to
it -- ``{"part", "cpu_s", "wall_s", "t", "pid"}`` -- which ``benchmarks/load.py`` reads to split
the server's CPU per answer into model forward, Grad-CAM, feature maps and the app's own work
(the rest of the process's CPU). Off by default, and then ``measure`` is a shared null context:
nothing is timed or written.

Only the calling thread is counted: torch's intra-op worker threads (``torch.set_num_threads``
above 1) are not, and their CPU lands in "the rest"; the load benchmark runs the server with one
torch thread for that reason.

**Less of the app's own.** Streamlit collects garbage after every script run
(``runner.postScriptGC``); a full collection walks every object alive, and torch, plotly and
pandas leave ~400,000 of them at import (about 0.2 s per rerun on a quiet 2-core machine,
0.5 s on a busy one). ``freeze_imports()`` moves what is alive into the collector's permanent
generation whenever modules were imported since its last call: those objects live as long as
the process anyway, and later collections only walk what the sessions create. A frozen
object is still freed when its last reference goes (reference counting); only a cycle among
frozen objects would stay. Our models hold no cycles (``tests/test_cost.py`` checks that a frozen
one is freed), so a model the cache drops is freed as before.
"""

from __future__ import annotations

import gc
import json
import math
import os
import sys
import threading
import time
from contextlib import contextmanager, nullcontext

ENV = "INCEPTION_EXPLORER_PROFILE"
PARTS = ("forward", "grad_cam", "feature_maps")  # what load.py splits out; any name works

_lock = threading.Lock()
_totals: dict[str, list[float]] = {}  # part -> [cpu seconds, wall seconds, calls]
_local = threading.local()            # the stack of parts open in this thread
_OFF = nullcontext()


def profile_path() -> str | None:
    return os.environ.get(ENV) or None


def measure(part: str):
    """A context manager that accounts its block's CPU time to ``part`` (exclusive of parts
    measured inside it), when ``INCEPTION_EXPLORER_PROFILE`` is set; else a null context."""
    path = profile_path()
    return _OFF if path is None else _measured(part, path)


@contextmanager
def _measured(part: str, path: str):
    stack = _local.__dict__.setdefault("stack", [])
    frame = [0.0]  # CPU seconds of the parts measured inside this one
    stack.append(frame)
    cpu0, wall0 = time.thread_time(), time.perf_counter()
    try:
        yield
    finally:
        cpu, wall = time.thread_time() - cpu0, time.perf_counter() - wall0
        stack.pop()
        if stack:
            stack[-1][0] += cpu
        record(part, cpu - frame[0], wall, path)


def record(part: str, cpu_s: float, wall_s: float, path: str | None = None) -> None:
    """Add one measured call to ``part``'s totals (and to the profile file, if any)."""
    line = json.dumps({"part": part, "cpu_s": round(cpu_s, 6), "wall_s": round(wall_s, 6),
                       "t": round(time.time(), 3), "pid": os.getpid()})
    with _lock:
        total = _totals.setdefault(part, [0.0, 0.0, 0])
        total[0] += cpu_s
        total[1] += wall_s
        total[2] += 1
        if path:
            with open(path, "a", encoding="utf-8") as f:  # one write per line: appends interleave whole
                f.write(line + "\n")


def totals() -> dict[str, dict]:
    """Process-wide totals so far: part -> {"cpu_s", "wall_s", "calls"}."""
    with _lock:
        return {p: {"cpu_s": c, "wall_s": w, "calls": n} for p, (c, w, n) in _totals.items()}


def reset() -> None:
    with _lock:
        _totals.clear()


def read_profile(path, since: float = 0.0, until: float = float("inf")) -> dict[str, dict]:
    """Sum a profile file's lines whose time ``t`` lies in [since, until]: part -> {"cpu_s",
    "wall_s", "calls"}. Lines cut short (a server killed mid-write) are skipped."""
    out: dict[str, dict] = {}
    try:
        text = open(path, encoding="utf-8").read()
    except FileNotFoundError:
        return out
    for line in text.splitlines():
        try:
            entry = json.loads(line)
            part, cpu, wall, t = entry["part"], float(entry["cpu_s"]), float(entry["wall_s"]), \
                float(entry["t"])
        except (ValueError, KeyError, TypeError):
            continue
        if since <= t <= until:
            total = out.setdefault(part, {"cpu_s": 0.0, "wall_s": 0.0, "calls": 0})
            total["cpu_s"] += cpu
            total["wall_s"] += wall
            total["calls"] += 1
    return out


# -- the garbage collector ------------------------------------------------------------------------

_frozen_at = [0]  # len(sys.modules) at the last freeze


def freeze_imports() -> bool:
    """Collect, then freeze everything alive, when modules were imported since the last call
    (so a few times per process: the first runs of each page). True when it froze."""
    if len(sys.modules) == _frozen_at[0]:
        return False
    with _lock:
        if len(sys.modules) == _frozen_at[0]:
            return False
        gc.collect()  # garbage is freed first, never frozen
        gc.freeze()
        _frozen_at[0] = len(sys.modules)
    return True


# -- capacity: how many users one server answers in time ------------------------------------------

def waiting(rate: float, service_s: float, servers: int) -> tuple[float, float]:
    """(P(an answer waits for a core), the rate of its exponential wait) in an M/M/c queue:
    answers arrive at ``rate`` per second (Poisson), each holds a core for ``service_s`` on
    average, ``servers`` cores (Erlang C). (1.0, 0.0) when the queue is unstable."""
    mu, c = 1.0 / service_s, servers
    a = rate / mu
    if a >= c:
        return 1.0, 0.0
    term, total = 1.0, 1.0
    for k in range(1, c):
        term *= a / k
        total += term
    last = term * a / c / (1 - a / c)
    return last / (total + last), c * mu - rate


def response_quantile(q: float, rate: float, service_s: float, servers: int) -> float:
    """The q-quantile (0.95: p95) of the response time, in seconds: the wait for a core as in
    an M/M/c queue (exponential service times wait longer than steady ones: the estimate errs
    on the safe side), plus the service time itself. inf when the queue is unstable."""
    waits, theta = waiting(rate, service_s, servers)
    if theta <= 0:
        return math.inf
    # P(wait > t) = waits * exp(-theta t)
    return service_s + (math.log(waits / (1 - q)) / theta if waits > 1 - q else 0.0)


def max_rate(service_s: float, servers: int, target_s: float, q: float = 0.95) -> float:
    """The highest arrival rate (answers per second) whose q-quantile response time is at most
    ``target_s``; 0.0 when one answer alone takes longer."""
    if service_s > target_s:
        return 0.0
    lo, hi = 0.0, servers / service_s
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if response_quantile(q, mid, service_s, servers) <= target_s else (lo, mid)
    return lo
