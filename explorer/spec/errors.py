"""The two ways a description can be wrong, and where: the place an error names, in the run's
language (English outside a page)."""

from __future__ import annotations

from explorer.core.i18n import N_, _


class ConfigError(ValueError):
    """A configuration or description outside what can be built; the message says what is
    allowed (and, for a spec, where: stage, block, branch, layer)."""


class ShapeError(ConfigError):
    """A layer that would refuse its input (PyTorch raises a RuntimeError there too): a kernel
    larger than its input, branches that do not line up, a wrong number of features."""


# the parts of a place, ("stage", "inception_a") -> "stage inception_a"
PLACES = {"stage": N_("stage {name}"), "block": N_("block {name}"),
          "branch": N_("branch {name}"), "layer": N_("layer {name}"),
          "aux": N_("aux {name}"), "head": N_("head")}


def place(where) -> str:
    """``where`` (``(kind, name)`` pairs of ``PLACES``, or text already said) as one place:
    "stage inception_a, block 0, branch 3x3, layer 1"."""
    return ", ".join(w if isinstance(w, str) else _(PLACES[w[0]]).format(name=w[1])
                     for w in where)


def placed(where, message: str) -> str:
    """``message`` after its place (when there is one)."""
    at = place(where)
    return f"{at}: {message}" if at else message
