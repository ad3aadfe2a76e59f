"""What the Lab page and the command line show: network names, summary rows, the measured result."""

from __future__ import annotations

import json

from explorer.core.i18n import _, number
from explorer.core.resources import resource
from explorer.lab.config import LAB_VARIANTS, LabConfig
from explorer.variants import VARIANTS, ConfigError

MEASURED = resource("assets") / "lab" / "default_race.json"
V4 = "https://arxiv.org/abs/1602.07261"
SECTIONS = {
    "speed": ("Inception-v4 paper, Section 5 and Figures 21-26: residual networks reach a given "
              "accuracy in fewer epochs", f"{V4}"),
    "scaling": ("Inception-v4 paper, Section 3.3 'Scaling of the Residuals' (and Figure 20)", f"{V4}"),
    "recipe": ("Inception-v4 paper, Section 4 'Training Methodology'", f"{V4}"),
}
RESIDUAL_SCALES = (1.0, 0.3, 0.1)


def _signal_comparisons() -> dict[str, list[tuple]]:
    """The Lab's signal comparisons: name -> [(label, variant, residual scale, repeats)], None
    meaning the variant's own (paper layout) value."""
    paper = VARIANTS["inception_resnet_v2"].layouts["paper"]
    scales = "/".join(f"{s:g}" for s in paper.scale)
    return {
        "v4 vs Inception-ResNet-v2": [
            ("Inception-v4", "inception_v4", None, None),
            (f"Inception-ResNet-v2 (scales {scales})", "inception_resnet_v2", None, None)],
        "scale " + " / ".join(f"{s:.1f}" for s in RESIDUAL_SCALES): [
            (f"Inception-ResNet-v2, scale {s:g}", "inception_resnet_v2", s, None)
            for s in RESIDUAL_SCALES],
        "blocks x1 / x2 / x4 (scale 1.0)": [
            (f"Inception-ResNet-v2, {k} x {paper.repeats} blocks", "inception_resnet_v2", 1.0,
             tuple(k * r for r in paper.repeats)) for k in (1, 2, 4)],
    }


SIGNAL_COMPARISONS = _signal_comparisons()


def network_choices() -> list[str]:
    """The names a race can be given: each variant at its reference, residual ones at scales."""
    names = []
    for v in LAB_VARIANTS:
        names.append(v)
        if v.startswith("inception_resnet"):
            names += [f"{v}@{s:g}" for s in RESIDUAL_SCALES]
    # a ResNet as wide as costs what the Inception-ResNet costs (at the race's width)
    return names + ["resnet50:cost=inception_resnet_v1", "resnetv2_50:cost=inception_resnet_v2"]


def parse_network(name: str, *, width: float = 0.25, repeats=None, input_size=None,
                  scale=None, layout: str = "paper", aux: bool = False,
                  label_smoothing: float | None = None) -> LabConfig:
    """VARIANT[@SCALE][:aux][:ls=EPS][:cost=OTHER]: a residual scale, the Lab's auxiliary head, a
    label smoothing epsilon (0 = off), a width that makes its MACs those of OTHER at ``width``.
    A ``scale`` given for all goes to Inception-ResNets only; ``aux`` and ``label_smoothing``
    given for all apply where the name does not say."""
    head, *options = str(name).split(":")
    same_cost = None
    variant, _at, text = head.partition("@")
    try:
        scale = float(text) if text else scale if variant.startswith("inception_resnet") else None
    except ValueError:
        raise ConfigError(f"expected VARIANT@SCALE such as inception_resnet_v2@0.1, got {name!r}") from None
    for option in options:
        key, _eq, value = option.partition("=")
        if option == "aux":
            aux = True
        elif key == "cost" and value:
            same_cost = f"{value}@{width:g}"
        elif key == "ls" and value:
            try:
                label_smoothing = float(value)
            except ValueError:
                raise ConfigError(f"expected :ls=EPS such as :ls=0.1, got {option!r}") from None
        else:
            raise ConfigError(f"unknown option {option!r} in {name!r}; a network is "
                              "VARIANT[@SCALE][:aux][:ls=EPS][:cost=OTHER], e.g. inception_v3:aux:ls=0")
    return LabConfig(variant, width, repeats, scale, input_size, layout, aux=aux,
                     label_smoothing=label_smoothing, same_cost=same_cost)


AUX_CHOICES = {"off": (False,), "on": (True,), "both": (False, True)}


def race_networks(names, *, width: float = 0.25, aux: str = "off",
                  label_smoothing: float | None = None, without_smoothing: bool = False
                  ) -> list[LabConfig]:
    """The Lab page's race: each named network, with the auxiliary head off, on or both (each
    network twice), at ``label_smoothing`` (None: the recipe's) and, with
    ``without_smoothing``, also at epsilon 0: the switches of the course notes' claims."""
    if aux not in AUX_CHOICES:
        raise ConfigError(f"aux must be one of {', '.join(AUX_CHOICES)}, got {aux!r}")
    epsilons = [label_smoothing] + ([0.0] if without_smoothing and label_smoothing != 0 else [])
    return [parse_network(n, width=width, aux=a, label_smoothing=e)
            for n in names for a in AUX_CHOICES[aux] for e in epsilons]


def summary_rows(summary: list[dict]) -> list[dict]:
    """One table row per network: mean +- spread over seeds."""
    def fmt(stats, scale=1.0, digits=0):
        if stats["mean"] is None:
            return _("not reached")
        if sum(v is not None for v in stats["per_seed"]) == 1:  # one value has no spread
            return f"{scale * stats['mean']:.{digits}f}"
        return f"{scale * stats['mean']:.{digits}f} ± {scale * stats['std']:.{digits}f}"

    # the column names in the page's language (English outside a page)
    return [{_("network"): s["label"], _("seeds"): len(s["seeds"]),
             _("reached {percent} %").format(percent=f"{100 * s['target_acc']:.0f}"):
                 _("{reached} of {seeds}").format(reached=s["reached"], seeds=len(s["seeds"])),
             _("steps to it"): fmt(s["steps_to_target"]),
             _("training seconds to it"): fmt(s["seconds_to_target"], digits=1),
             # older saved races lack it: summarize() adds it from the curves
             _("ms per step"): fmt(s["ms_per_step"]) if "ms_per_step" in s else "-",
             _("final val. acc. %"): fmt(s["final_val_acc"], 100, 1),
             _("best val. acc. %"): fmt(s["best_val_acc"], 100, 1),
             _("final train loss"): fmt(s["final_train_loss"], digits=3),
             _("train - val. acc. (points)"): fmt(s["final_gap"], 100, 1)
             if s.get("final_gap", {}).get("mean") is not None else "–"} for s in summary]


def step_time_text(runs: list[dict]) -> str:
    """Training time per step so far, per network (ms, mean over its runs): the live race's
    pace, e.g. "inception_v4 84 ms, inception_resnet_v2 71 ms per step"."""
    per: dict[str, list[float]] = {}
    for run in runs:
        last = run["curve"][-1]
        if last["step"]:
            per.setdefault(run["label"], []).append(1000 * last["seconds"] / last["step"])
    if not per:
        return ""
    return _("{times} per step").format(
        times=", ".join(f"{label} {sum(v) / len(v):.0f} ms" for label, v in per.items()))


def progress_text(progress: dict) -> str:
    """The live race's line under its progress bar: network-steps done of all, the time left
    and, once a chunk of steps is done, each network's training time per step so far
    (``step_time_text``)."""
    left = (_(", about {seconds} s left").format(seconds=f"{progress['seconds_left']:.0f}")
            if progress.get("seconds_left") is not None else _(", estimating the time left..."))
    pace = step_time_text(progress.get("runs") or [])
    return (_("training: {done} of {total} network-steps").format(
        done=number(progress["done"]), total=number(progress["total"])) + left
        + (f" ({pace})" if pace else ""))


def measured_result() -> dict | None:
    """The default race as measured for docs/lab.md (``assets/lab/default_race.json``)."""
    try:
        return json.loads(MEASURED.read_text())
    except (OSError, ValueError):
        return None


def finding_text(summary: list[dict]) -> str:
    """The measured race in words: steps to the target and final accuracy per network."""
    parts = []
    for s in summary:
        n, st, acc = len(s["seeds"]), s["steps_to_target"], s["final_val_acc"]
        spread = f" ± {st['std']:.0f}" if s["reached"] > 1 else ""
        reached = (f"reached {100 * s['target_acc']:.0f} % validation accuracy in "
                   f"{st['mean']:.0f}{spread} steps ({s['reached']} of {n} seeds)"
                   if st["mean"] is not None else
                   f"did not reach {100 * s['target_acc']:.0f} % in {s['steps']} steps (0 of {n} seeds)")
        parts.append(f"**{s['label']}** {reached}; after {s['steps']} steps "
                     f"{100 * acc['mean']:.1f} ± {100 * acc['std']:.1f} %")
    return "; ".join(parts) + " (mean ± sample standard deviation over seeds)."


# -- what a student's own race shows ----------------------------------------------------------

_OPTIONS = {"scale": "the residual scale", "aux": "the auxiliary head",
            "label_smoothing": "label smoothing", "variant": "the network"}


def _differs(a: dict, b: dict) -> list[str]:
    keys = ("variant", "scale", "aux", "label_smoothing")
    return [k for k in keys if a.get(k) != b.get(k)]


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def interpret(summary: list[dict], *, width: float | None = None) -> list[str]:
    """Sentences on a finished race: for each pair of networks that differ in one switch (the
    network, its residual scale, the auxiliary head, label smoothing), what the race shows --
    final validation accuracy and the train / validation gap, against the spread over seeds --
    and what it cannot show at this width and data."""
    out, smallest_gap = [], None
    for i, a in enumerate(summary):
        for b in summary[i + 1:]:
            diff = _differs(a["config"], b["config"])
            if len(diff) != 1:
                continue
            acc_a, acc_b = a["final_val_acc"], b["final_val_acc"]
            d = acc_a["mean"] - acc_b["mean"]
            seeds = min(len(a["seeds"]), len(b["seeds"]))
            spread = max(acc_a["std"] or 0.0, acc_b["std"] or 0.0)
            text = (f"{_OPTIONS[diff[0]].capitalize()}: {a['label']} ended at {_pct(acc_a['mean'])} % "
                    f"validation accuracy, {b['label']} at {_pct(acc_b['mean'])} %")
            gaps = (a.get("final_gap") or {}).get("mean"), (b.get("final_gap") or {}).get("mean")
            if None not in gaps:
                text += (f"; train minus validation accuracy {_pct(gaps[0])} and {_pct(gaps[1])} "
                         "points")
                g = min(abs(gaps[0]), abs(gaps[1]))
                smallest_gap = g if smallest_gap is None else min(smallest_gap, g)
            if seeds < 2:
                text += (f". A difference of {_pct(abs(d))} points, from one seed: no spread to "
                         "judge it by (race 3 seeds or more).")
            elif abs(d) > 2 * spread:
                text += (f". The difference, {_pct(abs(d))} points, is more than twice the spread "
                         f"between seeds ({_pct(spread)}): it shows here.")
            else:
                text += (f". The difference, {_pct(abs(d))} points, is within twice the spread "
                         f"between seeds ({_pct(spread)}): this race does not separate them.")
            out.append(text)
    if not out:
        out.append("No two networks here differ in one switch only, so no single claim is "
                   "tested: race a network against itself with one switch changed.")
    limits = ("What it cannot show: the papers measured on ImageNet (1.28 M images, 1,000 "
              "classes, ~100 epochs, full width); this race trains "
              + (f"width {width:g} " if width else "") + "networks for a few epochs on 4,000 "
              "digits of 10 classes at 75 px.")
    if smallest_gap is not None and smallest_gap < 0.05:
        limits += (f" A gap of {_pct(smallest_gap)} points means little overfitting to "
                   "regularize: the auxiliary head and label smoothing, both regularizers, have "
                   "little to act on here.")
    out.append(limits)
    return out
