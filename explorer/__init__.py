"""Inception Explorer: the Inception family of CNNs, built, measured, drawn and compared."""

from .analysis import analyze
from .variants import VARIANTS, ConfigError, build, get_variant, list_variants


def to_dot(variant: str, *, depth: str = "block", **config) -> str:
    """Graphviz DOT of a variant's module graph (see ``explorer.graph``)."""
    from .graph import to_dot as _to_dot

    return _to_dot(variant, depth=depth, **config)


__all__ = ["VARIANTS", "ConfigError", "analyze", "build", "get_variant", "list_variants", "to_dot"]
