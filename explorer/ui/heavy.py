"""Heavy work on a page: its memory estimate, the budget's refusal and the server-wide queue.

The logic is in ``explorer.runtime.memory`` and ``explorer.runtime.jobs``; this only lays it out. A request is
checked before it queues and again when its turn comes (the caches may have grown meanwhile);
while it waits, the user sees their place and a Cancel button. Pressing Cancel (or any widget)
reruns the script, which interrupts the wait at its next message and leaves the queue.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from explorer.core.i18n import _
from explorer.runtime.jobs import HEAVY
from explorer.runtime.memory import Estimate, MemoryRefused, check, fmt_bytes

POLL_S = 0.3


def needs(estimate: Estimate, what: str = "") -> None:
    """The caption next to a button: "needs about 1.2 GiB", over budget said at once."""
    text = f"{what}{' ' if what else ''}" + _("{needs} of memory ({parts})").format(
        needs=estimate.needs(), parts=estimate.parts())
    try:
        check(estimate)
    except MemoryRefused as err:
        text += " · " + _("over what this server allows now ({available})").format(
            available=fmt_bytes(err.budget.available))
    st.caption(text)


def out_of_memory(err: BaseException) -> bool:
    """An allocation failure (CPU or GPU), as opposed to a bug."""
    import torch
    return isinstance(err, (MemoryError, torch.OutOfMemoryError)) or (
        isinstance(err, RuntimeError) and "can't allocate memory" in str(err))


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


def run(label: str, estimate: Estimate, work: Callable[[], object], *, key: str,
        advice: str = ""):
    """``work()`` 's result once this request's turn comes, or None after showing why not."""
    device = estimate.device.split(":")[0]
    try:  # what could never fit is refused at once; what the running jobs crowd out waits
        check(estimate, advice=advice)
    except MemoryRefused as err:
        st.error(str(err), icon=":material/memory:")
        return None
    ticket = HEAVY.enter(label, device=device, reserve=estimate.total,
                         fits=lambda reserved: _fits(estimate, reserved))
    try:
        if not ticket.wait(0):
            box = st.empty()
            with box.container():
                status = st.empty()
                st.button(_("Cancel"), key=f"{key}_cancel", icon=":material/cancel:")
            while not ticket.wait(POLL_S):
                jobs = HEAVY.snapshot()
                status.info(_("Waiting for the machine: you are number {place} in line (running "
                              "now: {running}).").format(
                                  place=ticket.place, running=", ".join(jobs["running"]) or _("nothing")),
                            icon=":material/hourglass_top:")
            box.empty()
        check(estimate, reserved=HEAVY.reserved(device, besides=ticket), advice=advice)
        return work()
    except MemoryRefused as err:
        st.error(str(err), icon=":material/memory:")
        return None
    except Exception as err:  # an allocation that failed anyway: say so, keep the server
        if not out_of_memory(err):
            raise
        st.error(_("{work} ran out of memory although it was estimated to need about {size}: "
                   "{error}").format(work=label, size=fmt_bytes(estimate.total), error=err),
                 icon=":material/memory:")
        return None
    finally:
        ticket.release()
