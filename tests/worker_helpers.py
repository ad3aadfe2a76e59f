"""What the worker tests share: is a process alive, wait for a condition, watch this process's
torch thread count."""

from __future__ import annotations

import threading
import time

import torch


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"  # a zombie has ended: only its exit status is left
    except FileNotFoundError:
        return False


def wait_for(predicate, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


class ThreadWatch:
    """Samples this process's torch thread count until stopped: every value it ever saw."""

    def __init__(self):
        self.seen = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            self.seen.add(torch.get_num_threads())
            time.sleep(0.01)

    def stop(self) -> set:
        self._stop.set()
        self._thread.join()
        return self.seen
