"""Heavy work shares the machine: a server-wide queue for real builds, timings and training.

At most ``slots`` jobs run at once (``INCEPTION_EXPLORER_HEAVY_JOBS``; by default one per CPU
core divided by the threads each job uses, ``INCEPTION_EXPLORER_JOB_CPUS``: the jobs run in
worker processes, ``explorer.runtime.workers``, one core each, so a race trains beside a
timing); the others wait in arrival order and can see their place. A job holds its memory
estimate as a reservation while it runs; the next in line starts only when its own
``fits(reserved)`` says the memory the running jobs leave is enough (or when nothing else
runs). Analysis, graphs and tables never enter the queue.

    with HEAVY.enter("time inception_v3", estimate) as ticket:
        while not ticket.wait(0.25):
            show(ticket.place)          # 1 = next
        ...  # the real work
"""

from __future__ import annotations

import itertools
import os
import threading
from collections import deque

JOBS_ENV = "INCEPTION_EXPLORER_HEAVY_JOBS"


class Ticket:
    def __init__(self, queue: JobQueue, label: str, device: str, reserve: int, number: int,
                 fits=None):
        self.queue, self.label, self.device, self.reserve = queue, label, device, reserve
        self.fits = fits
        self.number = number
        self.running = False
        self.done = False

    @property
    def place(self) -> int:
        """1 for the next to run, 2 after it...; 0 while running or once done."""
        return self.queue._place(self)

    def wait(self, timeout: float | None = None) -> bool:
        """True once this job may run (it is then counted as running until ``release``)."""
        return self.queue._wait(self, timeout)

    def release(self) -> None:
        """Leave the queue, whether waiting (a cancel) or running (done); idempotent."""
        self.queue._release(self)

    def __enter__(self) -> Ticket:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


class JobQueue:
    def __init__(self, slots: int = 1):
        if slots < 1:
            raise ValueError(f"at least one heavy job must be allowed to run, got {slots}")
        self.slots = slots
        self._cond = threading.Condition()
        self._waiting: deque[Ticket] = deque()
        self._running: list[Ticket] = []
        self._numbers = itertools.count(1)

    def enter(self, label: str, *, device: str = "cpu", reserve: int = 0, fits=None) -> Ticket:
        """A place at the end of the line. ``fits(reserved_bytes) -> bool``, when given, says
        whether the job can start while others running on ``device`` hold ``reserved_bytes``."""
        with self._cond:
            ticket = Ticket(self, label, device, reserve, next(self._numbers), fits)
            self._waiting.append(ticket)
            self._admit()
            return ticket

    def reserved(self, device: str = "cpu", *, besides: Ticket | None = None) -> int:
        """Bytes the running jobs on ``device`` reserved (not counting ``besides``)."""
        with self._cond:
            return sum(t.reserve for t in self._running
                       if t is not besides and t.device == device)

    def snapshot(self) -> dict:
        with self._cond:
            return {"running": [t.label for t in self._running],
                    "waiting": [t.label for t in self._waiting]}

    def _admit(self) -> None:
        # first come, first served: only the head of the line may start
        while self._waiting and len(self._running) < self.slots:
            head = self._waiting[0]
            held = sum(t.reserve for t in self._running if t.device == head.device)
            if held and head.fits is not None and not head.fits(held):
                break  # it waits for memory, and the others wait behind it
            ticket = self._waiting.popleft()
            ticket.running = True
            self._running.append(ticket)
        self._cond.notify_all()

    def _place(self, ticket: Ticket) -> int:
        with self._cond:
            for i, t in enumerate(self._waiting):
                if t is ticket:
                    return i + 1
            return 0

    def _wait(self, ticket: Ticket, timeout: float | None) -> bool:
        with self._cond:
            if ticket.done:
                raise RuntimeError(f"{ticket.label}: this ticket was released")
            self._cond.wait_for(lambda: ticket.running, timeout)
            return ticket.running

    def _release(self, ticket: Ticket) -> None:
        with self._cond:
            if ticket.done:
                return
            ticket.done = True
            if ticket.running:
                self._running.remove(ticket)
                ticket.running = False
            else:
                self._waiting.remove(ticket)
            self._admit()


def _slots() -> int:
    per_job = os.environ.get("INCEPTION_EXPLORER_JOB_CPUS", "1")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    default = max(1, (cores or 1) // max(1, int(per_job) if per_job.isdigit() else 1))
    text = os.environ.get(JOBS_ENV, str(default))
    try:
        return max(1, int(text))
    except ValueError:
        raise ValueError(f"{JOBS_ENV} must be a whole number of jobs, got {text!r}") from None


HEAVY = JobQueue(_slots())  # one queue per server process, shared by every session
