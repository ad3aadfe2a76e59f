"""Analyses answered from the on-disk cache, without importing what computes them."""

from __future__ import annotations

from explorer.core.cache import cached_json


def analysis_dict(variant: str, input_size, depth: str, **config) -> dict:
    """``analyze(...).to_dict()``, answered from the on-disk cache when it can be (then without
    importing torch)."""
    def compute():
        from explorer.analysis.rows import analyze

        return analyze(variant, input_size=input_size, depth=depth, **config).to_dict()

    request = {"variant": variant, "input_size": input_size, "depth": depth, "config": config}
    return cached_json("analysis", request, compute)
