"""Heavy work out of the web process: a local pool of worker processes, or tasks on Ray.

A heavy job is a function named by its import path (``"explorer.runtime.timing:time_variant"``)
and keyword arguments that pickle; it is called in another process as ``fn(**kwargs,
progress=send)``, where ``send(payload)`` brings a picklable progress payload back to the page.

- Without ``INCEPTION_EXPLORER_RAY`` (one classroom, the default): a pool of worker processes
  started with ``spawn``. Each sets its own torch thread count (``INCEPTION_EXPLORER_JOB_CPUS``,
  default 1); the web server's ``torch.get_num_threads()`` is never touched. Jobs take their turn
  in the server-wide queue (``explorer.runtime.jobs.HEAVY``, which also holds their memory
  estimate while they run), so a user's place in line is the queue's. Cancel terminates the
  worker process; a worker that dies mid-job is replaced and the job retried once. A worker
  lives on between jobs and keeps the models they loaded (``explorer.runtime.loaded.
  process_models``): it says what it holds after each job, the memory budget counts it, and a
  job that loads a model is given to the idle worker holding it first (``affinity``). A worker
  started under another environment than the server's now is replaced, not reused.
- An exception a job raises comes back as ``JobFailed`` whose ``cause`` is that exception (its
  type and message), when it pickles: a page says it as it would in its own process.
- With ``INCEPTION_EXPLORER_RAY`` = ``local`` (start a head in this process) or a Ray address
  (``host:port`` of ``ray start --head``): each job is a Ray task declaring ``num_cpus`` and
  ``memory`` (the memory guard's estimate), so Ray's scheduler decides where and when it runs.
  Progress comes back through one small actor per web process; cancel is ``ray.cancel(ref,
  force=True)``; a worker that dies is retried once by Ray (``max_retries=1``), then reported.
  A Ray cluster that does not answer makes ``unavailable()`` say so: heavy work is refused with
  that message, everything else works.
"""

from __future__ import annotations

import importlib
import itertools
import os
import pickle
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

from explorer.core.i18n import DEFAULT, _, language, speaking

RAY_ENV = "INCEPTION_EXPLORER_RAY"
JOB_CPUS_ENV = "INCEPTION_EXPLORER_JOB_CPUS"
OBJECT_STORE_ENV = "INCEPTION_EXPLORER_RAY_OBJECT_STORE"
OBJECT_STORE_BYTES = 200 * 10**6  # a local head's shared-memory store: results here are small
CONNECT_TIMEOUT_S = 3.0
POLL_S = 0.2
SETTINGS_PREFIX = "INCEPTION_EXPLORER_"  # passed to a local worker with each job

WAITING, RUNNING, DONE, FAILED, CANCELLED = "waiting", "running", "done", "failed", "cancelled"


class HeavyUnavailable(RuntimeError):
    """Heavy work cannot run here now (the Ray cluster does not answer); the message says why."""


class JobFailed(RuntimeError):
    """The job raised, or its worker died twice; the message is for the user. ``cause`` is the
    exception the job raised, as raised in the worker (its type and message), when it could be
    brought back: a page that knows it (a checkpoint that does not load, a memory refusal) says
    it as it would have said it in its own process."""

    def __init__(self, message: str, cause: BaseException | None = None):
        super().__init__(message)
        self.cause = cause

    def __reduce__(self):
        return (type(self), (str(self), self.cause))


class JobCancelled(RuntimeError):
    pass


def job_cpus() -> int:
    text = os.environ.get(JOB_CPUS_ENV, "1")
    try:
        return max(1, int(text))
    except ValueError:
        raise ValueError(f"{JOB_CPUS_ENV} must be a whole number of CPUs, got {text!r}") from None


def resolve(target: str) -> Callable:
    module, _colon, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass
class Request:
    target: str
    kwargs: dict
    label: str
    cpus: int
    memory: int      # bytes, the memory guard's estimate
    device: str = "cpu"
    affinity: object = None  # a model the job loads: an idle worker that holds it is taken first
    lang: str = DEFAULT  # the page's language: the job's messages and progress speak it


class Job:
    """One heavy job as the page sees it: its state, last progress, place in line, result."""

    _numbers = itertools.count(1)

    def __init__(self, request: Request):
        self.request = request
        self.number = next(self._numbers)
        self.state = WAITING
        self.progress = None          # the last payload the job sent
        self.pid: int | None = None   # the worker process running it (None while waiting)
        self.attempts = 0
        self.backend = ""
        self._result = None
        self._error: BaseException | None = None
        self._done = threading.Event()
        self._cancel: Callable[[], None] = lambda: None
        self._place: Callable[[], int] = lambda: 0
        self.started: float | None = None
        self._watchers = 0
        self._watch_lock = threading.Lock()

    @property
    def label(self) -> str:
        return self.request.label

    @property
    def over(self) -> bool:
        return self._done.is_set()

    @property
    def place(self) -> int:
        """1 for the next to run, 2 after it...; 0 once running or over."""
        return self._place() if self.state == WAITING else 0

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def result(self, timeout: float | None = None):
        if not self._done.wait(timeout):
            raise TimeoutError(f"{self.label} is still running")
        if self._error is not None:
            raise self._error
        return self._result

    def cancel(self) -> None:
        if not self.over:
            self._cancel()

    def watch(self) -> None:
        """One more page waits for this job (identical requests may share one job)."""
        with self._watch_lock:
            self._watchers += 1

    def unwatch(self) -> int:
        """One page fewer waits for it; returns how many still do."""
        with self._watch_lock:
            self._watchers = max(0, self._watchers - 1)
            return self._watchers

    # -- for the backends --
    def _started(self, pid: int | None) -> None:
        self.state, self.pid = RUNNING, pid
        self.started = self.started or time.time()

    def _finish(self, state: str, result=None, error: BaseException | None = None) -> None:
        if self.over:
            return
        self.state, self._result, self._error = state, result, error
        self._done.set()


def _died_message(label: str, attempts: int) -> str:
    return (_("The worker running {label} stopped (twice, after one retry): nothing else was "
              "disturbed. Press the button again; if it happens again, choose a smaller network "
              "or ask the operator to look at the worker's memory.") if attempts > 1 else
            _("The worker running {label} stopped (once): nothing else was disturbed. Press the "
              "button again; if it happens again, choose a smaller network or ask the operator to "
              "look at the worker's memory.")).format(label=label)


def _cancelled(label: str) -> JobCancelled:
    return JobCancelled(_("{label}: cancelled").format(label=label))


# -- the local pool ---------------------------------------------------------------------------

def portable(err: BaseException) -> BaseException | None:
    """``err`` itself when it survives pickling (its type and message come back as they were),
    else None: the page then gets the message only."""
    try:
        back = pickle.loads(pickle.dumps(err))
    except Exception:  # noqa: BLE001 -- an exception that does not pickle travels as text
        return None
    return back if type(back) is type(err) and str(back) == str(err) else None


def held_here() -> tuple[dict[str, int], list]:
    """What this process holds for the jobs to come: the bytes of its loaded models per device
    type, and their keys (``explorer.runtime.loaded.process_models``); nothing when it has
    loaded none."""
    loaded = sys.modules.get("explorer.runtime.loaded")
    memory = sys.modules.get("explorer.runtime.memory")
    if loaded is None or memory is None:
        return {}, []
    return ({kind: memory.held_bytes(kind) for kind in ("cpu", "cuda")},
            loaded.process_models().keys())


def _worker_main(fd: int, threads: int) -> None:
    """A worker process: its own torch threads, then jobs one at a time until the pipe closes.
    What a job loads into ``explorer.runtime.loaded.process_models`` stays for the next one."""
    from multiprocessing.connection import Connection

    import torch
    torch.set_num_threads(threads)
    conn = Connection(fd)
    while True:
        try:
            target, kwargs, settings, lang = conn.recv()
        except (EOFError, OSError):
            return
        # the server's own settings as they are now (a warm worker outlives a change of them)
        for name in [n for n in os.environ if n.startswith(SETTINGS_PREFIX)]:
            del os.environ[name]
        os.environ.update(settings)
        try:
            with speaking(lang):  # the page's language, for the job's messages and progress
                value = resolve(target)(**kwargs, progress=lambda p: conn.send(("progress", p)))
            conn.send(("result", value, held_here()))
        except BaseException as err:  # noqa: BLE001 -- the page reports it; the worker stays
            conn.send(("error", f"{type(err).__name__}: {err}", traceback.format_exc(),
                       portable(err), held_here()))


def environment_key() -> int:
    """The server's environment as a worker would inherit it, less the settings passed with each
    job (``INCEPTION_EXPLORER_*``) and pytest's per-test marker: a warm worker started under
    another environment (caches read at import: ``$TORCH_HOME``, ``$HF_HUB_CACHE``, proxies,
    ``$PYTHONPATH``) is replaced rather than reused."""
    return hash(tuple(sorted((k, v) for k, v in os.environ.items()
                             if not k.startswith(SETTINGS_PREFIX) and k != "PYTEST_CURRENT_TEST")))


class _Worker:
    """A fresh interpreter (spawned, not forked: the server's threads and torch state stay
    behind; not ``multiprocessing``'s spawn either, which re-runs the server's main script),
    talking over a socket pair with pickled messages."""

    def __init__(self, threads: int):
        ours, theirs = socket.socketpair()
        package_root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, "OMP_NUM_THREADS": str(threads),
               "PYTHONPATH": os.pathsep.join(
                   p for p in (package_root, os.environ.get("PYTHONPATH")) if p)}
        self.process = subprocess.Popen(
            [sys.executable, "-c", "import sys; from explorer.runtime.workers import "
             "_worker_main; _worker_main(int(sys.argv[1]), int(sys.argv[2]))",
             str(theirs.fileno()), str(threads)],
            pass_fds=(theirs.fileno(),), env=env, stdin=subprocess.DEVNULL)
        theirs.close()
        self._socket = ours
        self.conn = Connection(os.dup(ours.fileno()))
        ours.close()
        self.threads = threads
        self.environment = environment_key()
        self.held: dict[str, int] = {}   # bytes of loaded models per device type, as last said
        self.keys: list = []              # the keys of those models

    def alive(self) -> bool:
        return self.process.poll() is None

    def terminate(self) -> None:
        self.process.terminate()

    def stop(self) -> None:
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.conn.close()


class LocalPool:
    """Worker processes on this machine, ordered and admitted by the server-wide queue."""

    backend = "local"

    def __init__(self, queue=None, *, idle: int = 2):
        from explorer.runtime.jobs import HEAVY
        self.queue = queue or HEAVY
        self._idle: list[_Worker] = []
        self._idle_max = idle
        self._lock = threading.Lock()
        self._all: set[_Worker] = set()

    def unavailable(self) -> str | None:
        return None

    def describe(self) -> str:
        return _("worker processes on this server, {slots} job(s) at a time, {threads} CPU "
                 "thread(s) each").format(slots=self.queue.slots, threads=job_cpus())

    def _take(self, threads: int, affinity=None) -> _Worker:
        """An idle worker that fits (same threads, same environment), the one holding
        ``affinity``'s model first, else the last one used; else a new one."""
        environment = environment_key()
        with self._lock:
            for w in [w for w in self._idle if not (w.alive() and w.threads == threads
                                                    and w.environment == environment)]:
                self._idle.remove(w)
                self._all.discard(w)
                w.stop()
            if self._idle:
                holding = [w for w in self._idle if affinity is not None and affinity in w.keys]
                w = holding[-1] if holding else self._idle[-1]
                self._idle.remove(w)
                return w
            w = _Worker(threads)
            self._all.add(w)
            return w

    def warm_up(self) -> None:
        """Start one worker ahead of the first job (a fresh interpreter imports torch: seconds),
        when this pool has none yet."""
        with self._lock:
            if self._all:
                return
            w = _Worker(job_cpus())
            self._all.add(w)
            self._idle.append(w)

    def held(self, kind: str = "cpu") -> int:
        """Bytes of loaded models the live workers hold on ``kind`` (as each said after its last
        job): the memory budget counts them as it counts this process's own."""
        with self._lock:
            return sum(w.held.get(kind, 0) for w in self._all if w.alive())

    def holds(self, key) -> bool:
        """Whether a live worker holds the model ``key`` (``explorer.runtime.loaded``)."""
        with self._lock:
            return any(key in w.keys for w in self._all if w.alive())

    def _give_back(self, w: _Worker) -> None:
        with self._lock:
            if w.alive() and len(self._idle) < self._idle_max:
                self._idle.append(w)
                return
            self._all.discard(w)
        w.stop()

    def _discard(self, w: _Worker) -> None:
        with self._lock:
            self._all.discard(w)
        w.stop()

    def pids(self) -> list[int]:
        with self._lock:
            return [w.process.pid for w in self._all if w.alive()]

    def submit(self, request: Request, fits=None) -> Job:
        job = Job(request)
        job.backend = self.backend
        ticket = self.queue.enter(request.label, device=request.device.split(":")[0],
                                  reserve=request.memory, fits=fits)
        job._place = lambda: ticket.place
        cancelled = threading.Event()
        current: list[_Worker] = []

        def cancel():
            cancelled.set()
            for w in list(current):
                w.terminate()  # the relay sees the pipe close and finishes the job

        job._cancel = cancel
        threading.Thread(target=self._relay, args=(job, ticket, cancelled, current),
                         name=f"heavy-job-{job.number}", daemon=True).start()
        return job

    def _relay(self, job: Job, ticket, cancelled: threading.Event, current: list) -> None:
        with speaking(job.request.lang):  # a thread of its own: its messages in the page's language
            self._relay_job(job, ticket, cancelled, current)

    def _relay_job(self, job: Job, ticket, cancelled: threading.Event, current: list) -> None:
        try:
            while not ticket.wait(POLL_S):
                if cancelled.is_set():
                    job._finish(CANCELLED, error=_cancelled(job.label))
                    return
            while not cancelled.is_set():
                job.attempts += 1
                worker = self._take(job.request.cpus, job.request.affinity)
                current[:] = [worker]
                job._started(worker.process.pid)
                outcome = self._run_on(worker, job, cancelled)
                current.clear()
                if outcome == "died":
                    self._discard(worker)
                    if cancelled.is_set():
                        break
                    if job.attempts < 2:
                        continue  # once more on a fresh worker
                    job._finish(FAILED, error=JobFailed(_died_message(job.label, job.attempts)))
                    return
                self._give_back(worker)
                return
            job._finish(CANCELLED, error=_cancelled(job.label))
        except BaseException as err:  # noqa: BLE001 -- never leave a page waiting forever
            job._finish(FAILED, error=JobFailed(_("{label} could not run: {error}").format(
                label=job.label, error=err)))
        finally:
            ticket.release()

    @staticmethod
    def _run_on(worker: _Worker, job: Job, cancelled: threading.Event) -> str:
        try:
            settings = {k: v for k, v in os.environ.items() if k.startswith(SETTINGS_PREFIX)}
            worker.conn.send((job.request.target, job.request.kwargs, settings, job.request.lang))
            while True:
                message = worker.conn.recv()
                if message[0] == "progress":
                    job.progress = message[1]
                elif message[0] == "result":
                    worker.held, worker.keys = message[2]
                    job._finish(DONE, result=message[1])
                    return "done"
                else:
                    worker.held, worker.keys = message[4]
                    job._finish(FAILED, error=JobFailed(_("{label} failed: {error}").format(
                        label=job.label, error=message[1]), cause=message[3]))
                    return "error"
        except (EOFError, OSError, BrokenPipeError):
            return "died"

    def shutdown(self) -> None:
        with self._lock:
            workers, self._all, self._idle = list(self._all), set(), []
        for w in workers:
            w.stop()


# -- Ray --------------------------------------------------------------------------------------

def _reachable(address: str) -> str | None:
    """None when ``host:port`` accepts a connection, else why not (checked before ray.init, which
    would otherwise retry for a long time)."""
    host, _colon, port = address.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), CONNECT_TIMEOUT_S):
            return None
    except ValueError:
        return _("{setting} is not 'local' or host:port").format(setting=f"{RAY_ENV}={address!r}")
    except OSError as err:
        return _("nothing answers at {address} ({error})").format(address=address,
                                                                  error=err.strerror or err)


def _ray_task(target: str, kwargs: dict, job_id: int, progress_actor, threads: int,
              lang: str = DEFAULT):
    import torch
    torch.set_num_threads(threads)  # Ray sets OMP_NUM_THREADS from num_cpus; torch too
    import ray
    # said before the work starts (and waited for), so that a retry is always counted
    ray.get(progress_actor.put.remote(job_id, {"_pid": os.getpid()}))
    with speaking(lang):  # the page's language, for the job's messages and progress
        return resolve(target)(**kwargs, progress=lambda p: progress_actor.put.remote(job_id, p))


class _ProgressBox:
    """The last progress payload of each job, and its worker's pid (one actor per web process)."""

    def __init__(self):
        self.last: dict[int, object] = {}
        self.pids: dict[int, list[int]] = {}

    def put(self, job_id: int, payload) -> None:
        if isinstance(payload, dict) and "_pid" in payload:
            self.pids.setdefault(job_id, []).append(payload["_pid"])  # one per attempt
        else:
            self.last[job_id] = payload

    def take(self, job_id: int):
        return self.pids.get(job_id, []), self.last.get(job_id)

    def forget(self, job_id: int) -> None:
        self.last.pop(job_id, None)
        self.pids.pop(job_id, None)


class RayPool:
    """Heavy jobs as Ray tasks; ``ray.init`` once per process (``connect``)."""

    backend = "ray"

    def __init__(self, address: str):
        self.address = address
        self._lock = threading.Lock()
        self._error: str | None = None
        self._ready = False
        self._box = None
        self._remote = None
        self._waiting: list[Job] = []

    def connect(self) -> str | None:
        """Start or join Ray once; None when ready, else the reason heavy work is unavailable."""
        with self._lock:
            if self._ready:
                return None
            try:
                import ray
            except ImportError:
                self._error = _('Ray is not installed: pip install "inception-explorer[ray]", or '
                                "unset {setting} to run heavy work in local worker processes"
                                ).format(setting=RAY_ENV)
                return self._error
            if self.address != "local":
                why = _reachable(self.address)
                if why:
                    self._error = _("the Ray cluster does not answer: {why}").format(why=why)
                    return self._error  # asked again at the next job: the cluster may come back
            try:
                if not ray.is_initialized():
                    if self.address == "local":
                        store = int(os.environ.get(OBJECT_STORE_ENV, OBJECT_STORE_BYTES))
                        ray.init(object_store_memory=store, include_dashboard=False,
                                 log_to_driver=False, configure_logging=False)
                    else:
                        ray.init(address=self.address, log_to_driver=False,
                                 configure_logging=False)
                self._box = ray.remote(num_cpus=0)(_ProgressBox).remote()
                self._remote = ray.remote(_ray_task)
            except Exception as err:  # noqa: BLE001 -- any failure to join means "unavailable"
                self._error = _("Ray did not start: {error}").format(
                    error=f"{type(err).__name__}: {err}")
                return self._error
            self._ready, self._error = True, None
            return None

    def unavailable(self) -> str | None:
        return self.connect()

    def describe(self) -> str:
        import ray
        total = ray.cluster_resources().get("CPU", 0)
        return _("Ray tasks ({address}, {cpus} CPUs in the cluster)").format(
            address=self.address, cpus=f"{total:g}")

    def free_cpus(self) -> tuple[float, float]:
        import ray
        return ray.available_resources().get("CPU", 0.0), ray.cluster_resources().get("CPU", 0.0)

    def submit(self, request: Request, fits=None) -> Job:
        why = self.connect()
        if why:
            raise HeavyUnavailable(why)
        import ray
        job = Job(request)
        job.backend = self.backend
        ref = self._remote.options(
            num_cpus=request.cpus, memory=max(1, int(request.memory)), max_retries=1,
            retry_exceptions=False, name=request.label[:60],
        ).remote(request.target, request.kwargs, job.number, self._box, request.cpus, request.lang)
        with self._lock:
            self._waiting.append(job)

        def place() -> int:
            with self._lock:
                return self._waiting.index(job) + 1 if job in self._waiting else 0

        job._place = place
        job._cancel = lambda: ray.cancel(ref, force=True)
        threading.Thread(target=self._relay, args=(job, ref), name=f"ray-job-{job.number}",
                         daemon=True).start()
        return job

    def _relay(self, job: Job, ref) -> None:
        with speaking(job.request.lang):  # a thread of its own: its messages in the page's language
            self._relay_job(job, ref)

    def _relay_job(self, job: Job, ref) -> None:
        import ray
        from ray import exceptions as rx
        pids: list[int] = []
        try:
            while True:
                ready, _pending = ray.wait([ref], timeout=POLL_S)
                attempts, last = ray.get(self._box.take.remote(job.number))
                if len(attempts) > len(pids):
                    pids[:] = attempts
                    job.attempts = len(pids)
                    with self._lock:
                        if job in self._waiting:
                            self._waiting.remove(job)
                    job._started(pids[-1])
                if last is not None:
                    job.progress = last
                if ready:
                    break
            try:
                job._finish(DONE, result=ray.get(ref))
            except rx.TaskCancelledError:
                job._finish(CANCELLED, error=_cancelled(job.label))
            except (rx.WorkerCrashedError, rx.NodeDiedError, rx.ObjectLostError,
                    rx.OutOfMemoryError) as err:
                job._finish(FAILED, error=JobFailed(
                    _died_message(job.label, max(2, len(pids))) + f" ({type(err).__name__})"))
            except rx.RayTaskError as err:
                cause = err.cause if getattr(err, "cause", None) is not None else err
                job._finish(FAILED, error=JobFailed(_("{label} failed: {error}").format(
                    label=job.label, error=f"{type(cause).__name__}: {cause}"),
                    cause=cause if cause is not err else None))
        except Exception as err:  # noqa: BLE001 -- Ray itself went away mid-job
            job._finish(FAILED, error=JobFailed(_(
                "{label}: the Ray cluster stopped answering ({error}); try again in a minute")
                .format(label=job.label, error=f"{type(err).__name__}: {err}")))
        finally:
            with self._lock:
                if job in self._waiting:
                    self._waiting.remove(job)
            try:
                self._box.forget.remote(job.number)
            except Exception:  # noqa: BLE001, S110 -- best effort
                pass

    def shutdown(self) -> None:
        import ray
        if ray.is_initialized():
            ray.shutdown()
        self._ready = False


# -- answers shared by the sessions of one server --------------------------------------------------

class Answers:
    """Finished results by request (plain data, never changed; the least recently used dropped
    past ``size``) and the jobs still computing others: sessions that ask the same question
    share one job, and a rerun finds the answer a job finished after its page had moved on."""

    def __init__(self, size: int = 256):
        self.size = size
        self._done: OrderedDict = OrderedDict()
        self._jobs: dict = {}
        self._lock = threading.Lock()

    def lookup(self, key) -> tuple[object, Job | None]:
        """(the answer, None) when there is one; (None, the job computing it) while one runs;
        (None, None) when it must be asked for."""
        with self._lock:
            if key in self._done:
                self._done.move_to_end(key)
                return self._done[key], None
            job = self._jobs.get(key)
            if job is not None and job.over:
                del self._jobs[key]
                if job.state != DONE:
                    return None, None  # failed or cancelled: asked again
                self._keep(key, job.result())
                return self._done[key], None
            return None, job

    def asked(self, key, job: Job) -> None:
        with self._lock:
            self._jobs[key] = job

    def answered(self, key, value) -> None:
        with self._lock:
            self._jobs.pop(key, None)
            self._keep(key, value)

    def _keep(self, key, value) -> None:
        self._done[key] = value
        self._done.move_to_end(key)
        while len(self._done) > self.size:
            self._done.popitem(last=False)

    def __len__(self) -> int:
        return len(self._done)


# -- the process's pool -------------------------------------------------------------------------

_POOL: LocalPool | RayPool | None = None
_POOL_LOCK = threading.Lock()


def pool() -> LocalPool | RayPool:
    """This process's pool: Ray when ``INCEPTION_EXPLORER_RAY`` is set, else local workers."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            address = os.environ.get(RAY_ENV, "").strip()
            _POOL = RayPool(address) if address else LocalPool()
        return _POOL


def warm_up() -> None:
    """Join Ray in the background (seconds), or start a local worker (its interpreter imports
    torch meanwhile), so that the first job does not wait for either."""
    p = pool()
    if isinstance(p, RayPool):
        if not p._ready and not p._lock.locked():
            threading.Thread(target=p.connect, name="ray-connect", daemon=True).start()
    else:
        p.warm_up()


def held(kind: str = "cpu") -> int:
    """Bytes of models this server's local workers hold loaded on ``kind`` (0 on Ray, whose
    workers are on other machines, and before any pool was made)."""
    p = _POOL
    return p.held(kind) if isinstance(p, LocalPool) else 0


def holds(key) -> bool:
    """Whether one of this server's local workers holds the model ``key`` loaded (on Ray: not
    known, False)."""
    p = _POOL
    return p.holds(key) if isinstance(p, LocalPool) else False


def unavailable() -> str | None:
    """Why heavy work cannot run now (a sentence for the page), or None."""
    return pool().unavailable()


def submit(target: str, kwargs: dict | None = None, *, label: str, memory: int = 0,
           device: str = "cpu", cpus: int | None = None, fits=None, affinity=None) -> Job:
    """Start ``target(**kwargs, progress=...)`` in a worker; raises ``HeavyUnavailable``.
    ``fits(reserved_bytes)`` (local pool only) says whether it may start beside the running jobs;
    Ray decides that itself from the declared ``memory``. ``affinity`` (local pool only): the key
    of the model the job loads, so that a worker already holding it runs it when it is idle. The
    job speaks the run's language (its messages and progress): ``explorer.core.i18n``."""
    request = Request(target, dict(kwargs or {}), label, cpus or job_cpus(), int(memory), device,
                      affinity, language())
    return pool().submit(request, fits=fits)


def waiting_state(job: Job) -> dict:
    """Where ``job`` stands while it waits, as numbers and names (``waiting_text`` says it in the
    run's language: a page shown in another language than the job's can say it too)."""
    p = pool()
    if isinstance(p, RayPool):
        free, total = p.free_cpus()
        return {"ray": True, "free": free, "total": total, "ahead": job.place - 1}
    return {"ray": False, "place": job.place, "running": p.queue.snapshot()["running"]}


def waiting_text(state: dict) -> str:
    """``waiting_state``'s sentence, in the run's language."""
    if state["ray"]:
        free, total, ahead = f"{state['free']:g}", f"{state['total']:g}", state["ahead"]
        if ahead > 0:
            return _("Waiting for the Ray cluster to run it ({free} of {total} CPUs free now; "
                     "{ahead} earlier job(s) from this server also wait): Ray starts it as soon "
                     "as the CPUs and memory it declared are free.").format(
                         free=free, total=total, ahead=ahead)
        return _("Waiting for the Ray cluster to run it ({free} of {total} CPUs free now): Ray "
                 "starts it as soon as the CPUs and memory it declared are free.").format(
                     free=free, total=total)
    return _("Waiting for the machine: you are number {place} in line (running now: "
             "{running}).").format(place=state["place"],
                                   running=", ".join(state["running"]) or _("nothing"))


def waiting_message(job: Job) -> str:
    """The truthful place-in-line sentence while ``job`` waits, in the run's language."""
    return waiting_text(waiting_state(job))
