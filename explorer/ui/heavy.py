"""Heavy work on a page: its memory estimate, the budget's refusal and the server-wide queue.

The logic is in ``explorer.runtime.memory`` and ``explorer.runtime.workers``; this only lays it out.
A request is checked against the memory budget, then runs in a worker process or a Ray task
(never in this server's threads); while it waits, the user sees their place and a Cancel
button. Pressing Cancel (or any widget) reruns the script, which leaves the wait at its next
message and cancels the job (its worker is stopped).
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from explorer.runtime import workers
from explorer.runtime.memory import Estimate, MemoryRefused, check, fmt_bytes

POLL_S = 0.3


def needs(estimate: Estimate, what: str = "") -> None:
    """The caption next to a button: "needs about 1.2 GiB", over budget said at once."""
    workers.warm_up()  # joining Ray takes seconds: begin before the button is pressed
    text = f"{what}{' ' if what else ''}{estimate.needs()} of memory ({estimate.parts()})"
    try:
        check(estimate)
    except MemoryRefused as err:
        text += f" · over what this server allows now ({fmt_bytes(err.budget.available)})"
    st.caption(text)


def _fits(estimate: Estimate, reserved: int) -> bool:
    try:
        check(estimate, reserved=reserved)
    except MemoryRefused:
        return False
    return True


def cancelled(key: str) -> bool:
    """True in the rerun that the queue's Cancel button started (its value lives one run)."""
    if st.session_state.get(f"{key}_cancel"):
        st.info("Cancelled: you left the queue.", icon=":material/cancel:")
        return True
    return False


def unavailable() -> bool:
    """True (after saying so on the page) when heavy work cannot run now: the Ray cluster named by
    ``INCEPTION_EXPLORER_RAY`` does not answer. Everything else on the page still works."""
    why = workers.unavailable()
    if why:
        st.warning(f"Heavy work (timings, predictions' extras, the Lab's races) is unavailable "
                   f"right now: {why}. Everything else on this page works; try again later.",
                   icon=":material/cloud_off:")
    return bool(why)


def run(label: str, estimate: Estimate, target: str, kwargs: dict, *, key: str,
        advice: str = "", on_progress: Callable[[object], None] | None = None):
    """The result of ``target(**kwargs)`` run in a worker (``explorer.runtime.workers``: a local
    worker process, or a Ray task), or None after showing why not. While it waits the user sees
    their place and a Cancel button; ``on_progress(payload)`` shows what the job sends back."""
    device = estimate.device.split(":")[0]
    try:  # what could never fit is refused at once; what the running jobs crowd out waits
        check(estimate, advice=advice)
    except MemoryRefused as err:
        st.error(str(err), icon=":material/memory:")
        return None
    if unavailable():
        return None
    try:
        job = workers.submit(target, kwargs, label=label, memory=estimate.total, device=device,
                             fits=lambda reserved: _fits(estimate, reserved))
    except workers.HeavyUnavailable as err:
        st.warning(f"Heavy work is unavailable right now: {err}.", icon=":material/cloud_off:")
        return None
    try:
        box = st.empty()
        shown = None
        while not job.wait(POLL_S):
            if job.state == workers.WAITING:
                with box.container():
                    st.info(workers.waiting_message(job), icon=":material/hourglass_top:")
                    if shown != "waiting":  # one button, drawn once
                        st.button("Cancel", key=f"{key}_cancel", icon=":material/cancel:")
                shown = "waiting"
            else:
                if shown == "waiting":
                    box.empty()
                shown = "running"
                if on_progress is not None and job.progress is not None:
                    on_progress(job.progress)
        box.empty()
        result = job.result()
        where = "a Ray task" if job.backend == "ray" else "a worker process"
        st.caption(f"Ran as {where} (pid {job.pid})"
                   + (": its first worker stopped, so it was retried once" if job.attempts > 1
                      else "") + ".")
        return result
    except workers.JobCancelled:
        st.info("Cancelled.", icon=":material/cancel:")
        return None
    except workers.JobFailed as err:
        text = str(err)
        if "OutOfMemoryError" in text or "MemoryError" in text or "can't allocate memory" in text:
            text = (f"{label} ran out of memory although it was estimated to need about "
                    f"{fmt_bytes(estimate.total)}: {text}")
        st.error(text, icon=":material/error:")
        return None
    finally:
        job.cancel()  # a rerun (Cancel, any widget) leaves here first: the worker stops too
