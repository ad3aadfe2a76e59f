"""What the Lab page and the command line show: network names, summary rows, the measured result."""

from __future__ import annotations

import json

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
        if "resnet" in v:
            names += [f"{v}@{s:g}" for s in RESIDUAL_SCALES]
    return names


def parse_network(name: str, *, width: float = 0.25, repeats=None, input_size=None,
                  scale=None, layout: str = "paper") -> LabConfig:
    """VARIANT or VARIANT@SCALE; a ``scale`` given for all goes to residual networks only."""
    variant, _, text = str(name).partition("@")
    try:
        scale = float(text) if text else scale if "resnet" in variant else None
    except ValueError:
        raise ConfigError(f"expected VARIANT@SCALE such as inception_resnet_v2@0.1, got {name!r}") from None
    return LabConfig(variant, width, repeats, scale, input_size, layout)


def summary_rows(summary: list[dict]) -> list[dict]:
    """One table row per network: mean +- spread over seeds."""
    def fmt(stats, scale=1.0, digits=0):
        if stats["mean"] is None:
            return "not reached"
        if sum(v is not None for v in stats["per_seed"]) == 1:  # one value has no spread
            return f"{scale * stats['mean']:.{digits}f}"
        return f"{scale * stats['mean']:.{digits}f} ± {scale * stats['std']:.{digits}f}"

    return [{"network": s["label"], "seeds": len(s["seeds"]),
             f"reached {100 * s['target_acc']:.0f} %": f"{s['reached']} of {len(s['seeds'])}",
             "steps to it": fmt(s["steps_to_target"]),
             "training seconds to it": fmt(s["seconds_to_target"], digits=1),
             # older saved races lack it: summarize() adds it from the curves
             "ms per step": fmt(s["ms_per_step"]) if "ms_per_step" in s else "-",
             "final val. acc. %": fmt(s["final_val_acc"], 100, 1),
             "best val. acc. %": fmt(s["best_val_acc"], 100, 1),
             "final train loss": fmt(s["final_train_loss"], digits=3)} for s in summary]


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
    return ", ".join(f"{label} {sum(v) / len(v):.0f} ms" for label, v in per.items()) + " per step"


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
