"""Which networks a costly test needs to run: each distinct kind of network once.

A deeper ResNet (resnet101, resnet152, resnetv2_101) is its shallower sibling with more blocks
per stage: at one block per stage their specs are equal, so a test that checks how blocks are
built, exported or folded learns nothing more from it. Cheap tests (on "meta", or the spec alone)
still run every variant."""

from __future__ import annotations

from dataclasses import replace
from functools import cache

from explorer.variants import VARIANTS, describe


def _blocks(variant: str, layout: str):
    lay = VARIANTS[variant].layouts[layout]
    config = {"repeats": (1,) * len(lay.repeats)} if lay.repeats else {}
    return replace(describe(variant, layout, **config), variant="", layout="", title="")


@cache
def distinct_layouts() -> tuple[tuple[str, str], ...]:
    """(variant, layout) for every layout whose blocks differ from all the ones before it."""
    seen, out = [], []
    for v, info in VARIANTS.items():
        for lay in info.layouts:
            blocks = _blocks(v, lay)
            if blocks not in seen:
                seen.append(blocks)
                out.append((v, lay))
    return tuple(out)


def distinct_variants() -> list[str]:
    return list(dict.fromkeys(v for v, _lay in distinct_layouts()))
