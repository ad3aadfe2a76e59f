"""At most one race trains at a time in a process (a Streamlit server): the others wait in line.
The race itself trains in a worker process or a Ray task (``pooled_race``, through
``explorer.runtime.workers``): the server's threads and torch settings are never used for it,
and it runs beside other users' timings, one CPU thread each, within the machine's cores.

Students who ask for the same race share one job (and a finished race comes from the disk
cache at once). A student's stop button takes that student off the job; the job stops when no
one is left waiting for it.
"""

from __future__ import annotations

import itertools
import threading
import time
import traceback
from collections import deque

from explorer.core.i18n import _, language, speaking
from explorer.lab.training import (
    THREADS,
    RaceRequest,
    cached_race,
    race,
    race_estimate,
    side_by_side,
    summarize,
)
from explorer.runtime import workers

QUEUED, RUNNING, DONE, STOPPED, FAILED = "queued", "running", "done", "stopped", "failed"


class Job:
    def __init__(self, request: RaceRequest, number: int):
        self.request = request
        self.number = number
        self.status = QUEUED
        self.progress: dict = {"runs": [], "done": 0, "total": 1, "seconds_left": None}
        self.result: dict | None = None
        self.error: str | None = None
        self.watchers: set[str] = set()
        self.stop_event = threading.Event()
        self.submitted = time.time()
        self.started: float | None = None
        self.finished: float | None = None
        self.lang = language()  # of the first who asked: the race's labels and messages speak it

    @property
    def over(self) -> bool:
        return self.status in (DONE, STOPPED, FAILED)

    def wait(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.over:
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True


def race_job(request: RaceRequest, *, progress, cores: int | None = None) -> dict:
    """The worker's side of ``pooled_race``: on the ``cores`` it declared."""
    return race(request, on_progress=progress, cores=cores)


def pooled_race(request: RaceRequest, *, on_progress, should_stop) -> dict:
    """``race`` in a worker (``explorer.runtime.workers``), declaring its memory estimate and
    its CPU threads; ``should_stop`` cancels it there (its worker process ends). While it waits
    for the machine, the progress says so (``"waiting"``: the truthful place in line)."""
    need = race_estimate(request.configs, request.batch, request.optimizer, request.device,
                         len(request.seeds))
    # its runs train side by side, one thread each: it declares (and then uses) that many CPUs,
    # so that a Ray cluster or the local pool counts what it takes
    cores = side_by_side(len(request.configs) * len(request.seeds), request.device)
    job = workers.submit("explorer.lab.queue:race_job", {"request": request, "cores": cores},
                         label=_("a race of {n} network(s)").format(n=len(request.configs)),
                         memory=need.total, device=request.device,
                         cpus=cores * THREADS if request.device == "cpu" else None)
    idle = {"runs": [], "done": 0, "total": 1, "seconds_left": None}
    try:
        while not job.wait(0.25):
            if should_stop():
                job.cancel()
                job.wait(30)
                runs = (job.progress or {}).get("runs", []) if isinstance(job.progress, dict) else []
                return {"runs": runs, "summary": summarize(runs, request.target) if runs else [],
                        "stopped": True}
            state = workers.waiting_state(job) if job.state == workers.WAITING else None
            if state is not None and (state["ray"] or state["place"] >= 1):  # not started since
                # the state too: each watcher's page says it in its own language
                on_progress({**idle, "waiting": workers.waiting_text(state), "waiting_state": state})
            elif isinstance(job.progress, dict):
                on_progress({**job.progress, "worker": job.pid})
        return job.result()
    finally:
        job.cancel()


class RaceQueue:
    def __init__(self, runner=pooled_race):
        self._runner = runner
        self._lock = threading.Condition()
        self._waiting: deque[Job] = deque()
        self._running: Job | None = None
        self._by_key: dict[str, Job] = {}
        self._numbers = itertools.count(1)
        self._thread: threading.Thread | None = None

    def submit(self, request: RaceRequest, who: str = "cli") -> Job:
        """The job for ``request``: finished at once when cached, else shared or queued."""
        with self._lock:
            job = self._by_key.get(request.key())
            if job is not None and not job.over:
                job.watchers.add(who)
                return job
            job = Job(request, next(self._numbers))
            job.watchers.add(who)
            hit = cached_race(request)
            if hit is not None:
                job.result, job.progress = hit, {**job.progress, "runs": hit["runs"], "done": 1}
                job.status, job.started, job.finished = DONE, time.time(), time.time()
                return job
            self._by_key[request.key()] = job
            self._waiting.append(job)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="lab-race", daemon=True)
                self._thread.start()
            self._lock.notify_all()
            return job

    def place(self, job: Job) -> int:
        """0: training now; n: n-th in line; -1: over."""
        with self._lock:
            if job is self._running:
                return 0
            try:
                return self._waiting.index(job) + 1
            except ValueError:
                return -1

    def waiting(self) -> int:
        with self._lock:
            return len(self._waiting)

    def leave(self, job: Job, who: str) -> None:
        """``who`` no longer wants ``job`` (their stop button); it stops when no one does."""
        with self._lock:
            job.watchers.discard(who)
            if job.watchers or job.over:
                return
            job.stop_event.set()
            if job in self._waiting:
                self._waiting.remove(job)
                job.status, job.finished = STOPPED, time.time()

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._waiting:
                    self._lock.wait()
                job = self._running = self._waiting.popleft()
                job.status, job.started = RUNNING, time.time()
            try:
                if job.stop_event.is_set():
                    job.result, job.status = None, STOPPED
                    continue
                with speaking(job.lang):
                    result = self._runner(job.request,
                                          on_progress=lambda p: setattr(job, "progress", p),
                                          should_stop=job.stop_event.is_set)
                job.result = result
                job.status = STOPPED if result.get("stopped") else DONE
            except Exception as err:  # noqa: BLE001 -- a failed race must not kill the worker
                job.error = f"{type(err).__name__}: {err}"
                job.status = FAILED
                traceback.print_exc()
            finally:
                with self._lock:
                    job.finished = time.time()
                    self._running = None


_QUEUE: RaceQueue | None = None
_QUEUE_LOCK = threading.Lock()


def get_queue() -> RaceQueue:
    """The process's one race queue."""
    global _QUEUE
    with _QUEUE_LOCK:
        if _QUEUE is None:
            _QUEUE = RaceQueue()
        return _QUEUE
