"""Published ImageNet accuracy of each variant, with where each number comes from.

A view over the variant modules (``explorer.variants``), where each number is declared once:
a "weights" result is the accuracy of the variant's default public checkpoint, "paper" results
are single-model, single-crop results from the papers.
"""

from __future__ import annotations

from explorer.variants import VARIANTS
from explorer.variants.facts import Result

PUBLISHED: dict[str, tuple[Result, ...]] = {name: info.published for name, info in VARIANTS.items()}


def best_published(variant: str) -> Result | None:
    """The public weights' accuracy where there are weights, else the paper's."""
    results = PUBLISHED.get(variant, ())
    return next((r for r in results if r.kind == "weights"), results[0] if results else None)


__all__ = ["PUBLISHED", "Result", "best_published"]
