"""Heavy work on a page: its memory estimate, the budget's refusal and the server-wide queue.

The logic is in ``explorer.runtime.memory`` and ``explorer.runtime.workers``; this only lays it out.
A request is checked against the memory budget, then runs in a worker process or a Ray task
(never in this server's threads); while it waits, the user sees their place and a Cancel
button. Pressing Cancel (or any widget) reruns the script, which leaves the wait at its next
message and cancels the job (its worker is stopped) -- unless another page waits for the same job
(``explorer.ui.answers`` shares identical requests), or the job has started and was asked to keep
running (a prediction: its answer is kept for the next run).
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from explorer.core.i18n import _
from explorer.core.text import md_escape
from explorer.runtime import workers
from explorer.runtime.memory import Estimate, MemoryRefused, check, fmt_bytes

POLL_S = 0.3


def needs(estimate: Estimate, what: str = "") -> None:
    """The caption next to a button: "needs about 1.2 GiB", over budget said at once."""
    workers.warm_up()  # joining Ray takes seconds: begin before the button is pressed
    text = f"{what}{' ' if what else ''}" + _("{needs} of memory ({parts})").format(
        needs=estimate.needs(), parts=estimate.parts())
    try:
        check(estimate)
    except MemoryRefused as err:
        text += " · " + _("over what this server allows now ({available})").format(
            available=fmt_bytes(err.budget.available))
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
        st.info(_("Cancelled: you left the queue."), icon=":material/cancel:")
        return True
    return False


def unavailable() -> bool:
    """True (after saying so on the page) when heavy work cannot run now: the Ray cluster named by
    ``INCEPTION_EXPLORER_RAY`` does not answer. Everything else on the page still works."""
    why = workers.unavailable()
    if why:
        st.warning(_("Heavy work (timings, predictions' extras, the Lab's races) is unavailable "
                     "right now: {why}. Everything else on this page works; try again later.")
                   .format(why=why),
                   icon=":material/cloud_off:")
    return bool(why)


def start(label: str, estimate: Estimate, target: str, kwargs: dict, *, advice: str = "",
          affinity=None, escape: bool = False) -> workers.Job | None:
    """``target(**kwargs)`` submitted to a worker (``explorer.runtime.workers``: a local worker
    process, or a Ray task), or None after showing why not: over the memory budget (the message
    markdown-escaped with ``escape``), or heavy work unavailable."""
    device = estimate.device.split(":")[0]
    try:  # what could never fit is refused at once; what the running jobs crowd out waits
        check(estimate, advice=advice)
    except MemoryRefused as err:
        st.error(md_escape(err) if escape else str(err), icon=":material/memory:")
        return None
    if unavailable():
        return None
    try:
        return workers.submit(target, kwargs, label=label, memory=estimate.total, device=device,
                              fits=lambda reserved: _fits(estimate, reserved), affinity=affinity)
    except workers.HeavyUnavailable as err:
        st.warning(_("Heavy work is unavailable right now: {error}.").format(error=err),
                   icon=":material/cloud_off:")
        return None


def follow(job: workers.Job, estimate: Estimate, *, key: str,
           on_progress: Callable[[object], None] | None = None,
           on_error: Callable[[BaseException], bool] | None = None, keep_running: bool = False):
    """The result of ``job``, or None after showing why not. While it waits the user sees their
    place and a Cancel button; ``on_progress(payload)`` shows what the job sends back;
    ``on_error(exception)`` may say a failure in the page's own words (the exception the job
    raised in its worker; True: said). A rerun (Cancel, any widget) leaves here and cancels the
    job unless another page still waits for it, or, with ``keep_running``, it has started: it
    then finishes for whoever asks again."""
    job.watch()
    try:
        box = st.empty()
        shown = None
        while not job.wait(POLL_S):
            # read once: a job that starts between two reads would be "number 0 in line"
            state = workers.waiting_state(job) if job.state == workers.WAITING else None
            if state is not None and (state["ray"] or state["place"] >= 1):
                with box.container():
                    st.info(workers.waiting_text(state), icon=":material/hourglass_top:")
                    if shown != "waiting":  # one button, drawn once
                        st.button(_("Cancel"), key=f"{key}_cancel", icon=":material/cancel:")
                shown = "waiting"
            else:
                if shown == "waiting":
                    box.empty()
                shown = "running"
                if on_progress is not None and job.progress is not None:
                    on_progress(job.progress)
        box.empty()
        result = job.result()
        where = _("a Ray task") if job.backend == "ray" else _("a worker process")
        st.caption((_("Ran as {where} (pid {pid}): its first worker stopped, so it was retried "
                      "once.") if job.attempts > 1 else _("Ran as {where} (pid {pid}).")).format(
                          where=where, pid=job.pid))
        return result
    except workers.JobCancelled:
        st.info(_("Cancelled."), icon=":material/cancel:")
        return None
    except workers.JobFailed as err:
        if on_error is not None and err.cause is not None and on_error(err.cause):
            return None
        text = str(err)
        if "OutOfMemoryError" in text or "MemoryError" in text or "can't allocate memory" in text:
            text = _("{work} ran out of memory although it was estimated to need about {size}: "
                     "{error}").format(work=job.label, size=fmt_bytes(estimate.total), error=text)
        st.error(text, icon=":material/error:")
        return None
    finally:
        # a rerun (Cancel, any widget) leaves here first: the worker stops too, unless another
        # page waits for the same job or a kept job has started
        if job.unwatch() == 0 and not (keep_running and job.state == workers.RUNNING):
            job.cancel()


def run(label: str, estimate: Estimate, target: str, kwargs: dict, *, key: str,
        advice: str = "", on_progress: Callable[[object], None] | None = None,
        on_error: Callable[[BaseException], bool] | None = None):
    """The result of ``target(**kwargs)`` run in a worker (``start``, then ``follow``), or None
    after showing why not."""
    job = start(label, estimate, target, kwargs, advice=advice)
    if job is None:
        return None
    return follow(job, estimate, key=key, on_progress=on_progress, on_error=on_error)
