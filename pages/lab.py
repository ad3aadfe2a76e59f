"""Lab: the v4 paper's claims about training, run here (signal at init, a training race)."""

import uuid

import streamlit as st

from explorer.core.i18n import _
from explorer.lab import RECIPES, make_request
from explorer.lab.charts import race_figure, signal_figure
from explorer.lab.data import SOURCE
from explorer.lab.present import (
    AUX_CHOICES,
    SECTIONS,
    SIGNAL_COMPARISONS,
    finding_text,
    interpret,
    measured_result,
    network_choices,
    progress_text,
    race_networks,
    summary_rows,
)
from explorer.lab.queue import DONE, FAILED, STOPPED, get_queue
from explorer.lab.training import DEFAULT_STEPS
from explorer.runtime import workers
from explorer.ui import answers
from explorer.ui.language import session_language
from explorer.variants import ConfigError


def link(key: str) -> str:
    text, url = SECTIONS[key]
    return f"[{text}]({url})"


st.title(_("Lab"))
st.caption(_("The Inception-v4 paper's claims are about training: residual connections make "
             "Inception train faster, and very wide residual networks need their residual "
             "branches scaled down. Here they run, small enough for a CPU. Data: {source}.").format(
                 source=SOURCE))

# -- 1. signal ---------------------------------------------------------------------------------
st.header(_("1. Signal through the network at initialisation"))
left, right = st.columns([3, 1])
choice = left.segmented_control(_("Compare"), list(SIGNAL_COMPARISONS), default=list(SIGNAL_COMPARISONS)[0],
                                key="lab_compare") or list(SIGNAL_COMPARISONS)[0]
width = right.selectbox(_("Width multiplier"), (0.1, 0.25, 0.5, 1.0), index=1, key="lab_sig_width")
compared = SIGNAL_COMPARISONS[choice]
# measured in a worker process (or read from the cache), never in this server's threads
signals = answers.lab_signals([{"variant": v, "width": width, "scale": s, "repeats": r}
                               for _label, v, s, r in compared], key="lab_signal")
if signals is not None:
    st.plotly_chart(signal_figure([(c[0], m) for c, m in zip(compared, signals)]),
                    key="lab_signal_chart")
st.caption(_(
    "Each network freshly initialised (seed 0), paper layout, 75x75 input, 10 classes; one "
    "batch of 16 training digits, forward and backward in training mode (BatchNorm on batch "
    "statistics), cross-entropy loss. Left: the standard deviation of each block's output. "
    "Right: the norm of the loss gradient with respect to that output. Every unscaled add "
    "stacks a new branch's variance on the trunk's, so activations grow along an unscaled "
    "residual stack, the more so the more blocks it has: the argument of {paper}.").format(
        paper=link("scaling")))

# -- 2. race -----------------------------------------------------------------------------------
st.header(_("2. A training race"))
who = st.session_state.setdefault("lab_who", uuid.uuid4().hex)
with st.form("race"):
    a, b, c = st.columns([2, 1, 1])
    networks = a.multiselect(_("Networks (VARIANT@SCALE: residual scale)"), network_choices(),
                             default=["inception_v4", "inception_resnet_v2"], key="lab_networks")
    optimizer = a.radio(_("Optimizer"), list(RECIPES), key="lab_optimizer",
                        format_func=lambda k: {"rmsprop": _("the papers' recipe (RMSProp)"),
                                               "adam": "Adam"}[k])
    race_width = b.selectbox(_("Width multiplier"), (0.1, 0.25, 0.5), index=1, key="lab_width")
    steps = b.number_input(_("Steps (batch 32)"), 1, 2000, DEFAULT_STEPS, key="lab_steps")
    seeds = c.multiselect(_("Seeds"), list(range(5)), default=[0], key="lab_seeds")
    target = c.slider(_("Target validation accuracy"), 0.5, 0.99, 0.9, 0.01, key="lab_target")
    d, e, f = st.columns([2, 1, 1])
    aux = d.segmented_control(
        _("Auxiliary head"), list(AUX_CHOICES), default="off", key="lab_aux",
        format_func={"off": _("without"), "on": _("with"),
                     "both": _("race with and without")}.get,
        help=_("a small classifier on the 17x17-grid stage, its loss added with weight 0.3 in "
               "training only (a regularizer, say the notes): 'with and without' races each "
               "network twice")) or "off"
    smoothing = e.number_input(_("Label smoothing ε"), 0.0, 0.5, 0.1, 0.05, key="lab_smoothing",
                               help=_("0 = off; the papers use 0.1"))
    unsmoothed = f.checkbox(_("also race with ε = 0"), key="lab_unsmoothed",
                            help=_("each network once more without label smoothing"))
    started = st.form_submit_button(_("Start race"), type="primary", icon=":material/sprint:")
st.caption(_("**{recipe}.** Source: {source}").format(recipe=RECIPES[optimizer].title,
                                                     source=RECIPES[optimizer].source))

if started:
    try:
        eps = float(smoothing)
        # the recipe's own epsilon is no option (labels and cached runs stay the recipe's)
        configs = race_networks(networks, width=race_width, aux=aux,
                                label_smoothing=None if eps == RECIPES[optimizer].label_smoothing
                                else eps, without_smoothing=unsmoothed and eps != 0)
        request = make_request(configs,
                               seeds=tuple(seeds), steps=int(steps), optimizer=optimizer,
                               target=float(target))
        st.session_state["lab_job"] = get_queue().submit(request, who)
    except (ConfigError, OSError) as err:
        st.error(str(err))

job = st.session_state.get("lab_job")


@st.fragment(run_every=None if job is None or job.over else 1.0)
def live():
    with session_language():  # a fragment's rerun runs without the page: say its language
        _live()


def _live():
    if job is None:
        st.info(_("Pick networks and press *Start race*. A race that was run before (same "
                  "networks, seeds, steps and code) is shown at once from the cache."))
        return
    queue = get_queue()
    place = queue.place(job)
    if place > 0:
        st.info(_("Another race is training on this server: yours is number {place} in line.").format(
            place=place))
    elif not job.over and job.progress.get("waiting"):
        state = job.progress.get("waiting_state")  # said in this page's language
        st.info(workers.waiting_text(state) if state else job.progress["waiting"],
                icon=":material/hourglass_top:")
    elif not job.over:
        p = job.progress
        st.caption(_("Training in a worker process: one CPU thread per run (a network and a "
                     "seed), as many runs side by side as the machine has cores."))
        st.progress(min(1.0, p["done"] / p["total"]), text=progress_text(p))
    if not job.over and st.button(_("Stop"), icon=":material/stop:", key="lab_stop"):
        queue.leave(job, who)
    runs = (job.result or {}).get("runs") or job.progress["runs"]
    if runs:
        st.plotly_chart(race_figure(runs), key="lab_race_chart")
    if job.status == FAILED:
        st.error(_("The race failed: {error}").format(error=job.error))
    elif job.status == STOPPED:
        st.warning(_("Stopped: the curves above are as far as it went (nothing was cached)."))
    elif job.status == DONE:
        st.success(_("Done: {n} runs.").format(n=len(job.result["runs"])))
        st.dataframe(summary_rows(job.result["summary"]), hide_index=True, key="lab_summary")
        width_raced = job.result["runs"][0]["config"]["width"] if job.result["runs"] else None
        st.info("  \n".join(interpret(job.result["summary"], width=width_raced)),
                icon=":material/lightbulb:")
    if job.over and st.session_state.get("lab_live_over") != job.number:
        st.session_state["lab_live_over"] = job.number
        st.rerun()  # leave the one-second refresh


live()

# -- 3. what it found ----------------------------------------------------------------------------
st.header(_("3. What it found"))
measured = measured_result()
if measured is None:
    st.info(_("The default race has not been measured yet (assets/lab/default_race.json)."))
else:
    st.markdown(finding_text(measured["summary"]))
    st.dataframe(summary_rows(measured["summary"]), hide_index=True, key="lab_measured")
    st.plotly_chart(race_figure(measured["runs"]), key="lab_measured_chart")
    st.caption(_("Measured: {conditions} The claims it tests: {speed}; {scaling}; the recipe: "
                 "{recipe}.").format(conditions=measured["conditions"], speed=link("speed"),
                                     scaling=link("scaling"), recipe=link("recipe")))
