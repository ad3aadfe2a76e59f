"""Inception Explorer: the Inception family of CNNs, built, measured, drawn and compared."""

from .variants import VARIANTS, ConfigError, build, get_variant, list_variants

__all__ = ["VARIANTS", "ConfigError", "build", "get_variant", "list_variants"]
