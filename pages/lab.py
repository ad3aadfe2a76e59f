"""Lab: the v4 paper's claims about training, run here (signal at init, a training race)."""

import uuid

import streamlit as st

from explorer.lab import RECIPES, make_request
from explorer.lab.charts import race_figure, signal_figure
from explorer.lab.data import SOURCE
from explorer.lab.present import (
    SECTIONS,
    SIGNAL_COMPARISONS,
    finding_text,
    measured_result,
    network_choices,
    parse_network,
    step_time_text,
    summary_rows,
)
from explorer.lab.queue import DONE, FAILED, STOPPED, get_queue
from explorer.lab.signal import cached_signal
from explorer.lab.training import DEFAULT_STEPS
from explorer.variants import ConfigError


def link(key: str) -> str:
    text, url = SECTIONS[key]
    return f"[{text}]({url})"


@st.cache_data(show_spinner=False, max_entries=64)
def signal_of(variant: str, width: float, scale, repeats) -> dict:
    return cached_signal(variant, width=width, scale=scale, repeats=repeats)


st.title("Lab")
st.caption("The Inception-v4 paper's claims are about training: residual connections make "
           "Inception train faster, and very wide residual networks need their residual branches "
           f"scaled down. Here they run, small enough for a CPU. Data: {SOURCE}.")

# -- 1. signal ---------------------------------------------------------------------------------
st.header("1. Signal through the network at initialisation")
left, right = st.columns([3, 1])
choice = left.segmented_control("Compare", list(SIGNAL_COMPARISONS), default=list(SIGNAL_COMPARISONS)[0],
                                key="lab_compare") or list(SIGNAL_COMPARISONS)[0]
width = right.selectbox("Width multiplier", (0.1, 0.25, 0.5, 1.0), index=1, key="lab_sig_width")
with st.spinner("one forward and backward pass per network..."):
    results = [(label, signal_of(v, width, s, r)) for label, v, s, r in SIGNAL_COMPARISONS[choice]]
st.plotly_chart(signal_figure(results), key="lab_signal_chart")
st.caption(
    "Each network freshly initialised (seed 0), paper layout, 75x75 input, 10 classes; one "
    "batch of 16 training digits, forward and backward in training mode (batch norm on batch "
    "statistics), cross-entropy loss. Left: the standard deviation of each block's output. "
    "Right: the norm of the loss gradient with respect to that output. Every unscaled add "
    "stacks a new branch's variance on the trunk's, so activations grow along an unscaled "
    f"residual stack, the more so the more blocks it has: the argument of {link('scaling')}.")

# -- 2. race -----------------------------------------------------------------------------------
st.header("2. A training race")
who = st.session_state.setdefault("lab_who", uuid.uuid4().hex)
with st.form("race"):
    a, b, c = st.columns([2, 1, 1])
    networks = a.multiselect("Networks (VARIANT@SCALE: residual scale)", network_choices(),
                             default=["inception_v4", "inception_resnet_v2"], key="lab_networks")
    optimizer = a.radio("Optimizer", list(RECIPES), key="lab_optimizer",
                        format_func=lambda k: {"rmsprop": "the papers' recipe (RMSProp)",
                                               "adam": "Adam"}[k])
    race_width = b.selectbox("Width multiplier", (0.1, 0.25, 0.5), index=1, key="lab_width")
    steps = b.number_input("Steps (batch 32)", 1, 2000, DEFAULT_STEPS, key="lab_steps")
    seeds = c.multiselect("Seeds", list(range(5)), default=[0], key="lab_seeds")
    target = c.slider("Target validation accuracy", 0.5, 0.99, 0.9, 0.01, key="lab_target")
    started = st.form_submit_button("Start race", type="primary", icon=":material/sprint:")
st.caption(f"**{RECIPES[optimizer].title}.** Source: {RECIPES[optimizer].source}")

if started:
    try:
        request = make_request([parse_network(n, width=race_width) for n in networks],
                               seeds=tuple(seeds), steps=int(steps), optimizer=optimizer,
                               target=float(target))
        st.session_state["lab_job"] = get_queue().submit(request, who)
    except (ConfigError, OSError) as err:
        st.error(str(err))

job = st.session_state.get("lab_job")


@st.fragment(run_every=None if job is None or job.over else 1.0)
def live():
    if job is None:
        st.info("Pick networks and press *Start race*. A race that was run before (same "
                "networks, seeds, steps and code) is shown at once from the cache.")
        return
    queue = get_queue()
    place = queue.place(job)
    if place > 0:
        st.info(f"Another race is training on this server: yours is number {place} in line.")
    elif not job.over and job.progress.get("waiting"):
        st.info(job.progress["waiting"], icon=":material/hourglass_top:")
    elif not job.over:
        p = job.progress
        st.caption("Training in a worker process, one CPU thread; other users' timings run "
                   "beside it on the machine's other cores.")
        left = (f", about {p['seconds_left']:.0f} s left" if p["seconds_left"] is not None
                else ", estimating the time left...")
        pace = step_time_text(p["runs"])
        st.progress(min(1.0, p["done"] / p["total"]),
                    text=f"training: {p['done']:,} of {p['total']:,} network-steps{left}"
                         + (f" ({pace})" if pace else ""))
    if not job.over and st.button("Stop", icon=":material/stop:", key="lab_stop"):
        queue.leave(job, who)
    runs = (job.result or {}).get("runs") or job.progress["runs"]
    if runs:
        st.plotly_chart(race_figure(runs), key="lab_race_chart")
    if job.status == FAILED:
        st.error(f"The race failed: {job.error}")
    elif job.status == STOPPED:
        st.warning("Stopped: the curves above are as far as it went (nothing was cached).")
    elif job.status == DONE:
        st.success(f"Done: {len(job.result['runs'])} runs.")
        st.dataframe(summary_rows(job.result["summary"]), hide_index=True, key="lab_summary")
    if job.over and st.session_state.get("lab_live_over") != job.number:
        st.session_state["lab_live_over"] = job.number
        st.rerun()  # leave the one-second refresh


live()

# -- 3. what it found ----------------------------------------------------------------------------
st.header("3. What it found")
measured = measured_result()
if measured is None:
    st.info("The default race has not been measured yet (assets/lab/default_race.json).")
else:
    st.markdown(finding_text(measured["summary"]))
    st.dataframe(summary_rows(measured["summary"]), hide_index=True, key="lab_measured")
    st.plotly_chart(race_figure(measured["runs"]), key="lab_measured_chart")
    st.caption(f"Measured: {measured['conditions']} The claims it tests: {link('speed')}; "
               f"{link('scaling')}; the recipe: {link('recipe')}.")
