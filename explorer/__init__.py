"""Inception Explorer: the Inception family of CNNs, built, measured, drawn and compared.

The public API is loaded lazily so that ``python -m explorer`` can answer cached questions
without importing torch.
"""

from importlib import import_module

_API = {
    "VARIANTS": "explorer.variants", "ConfigError": "explorer.variants", "build": "explorer.runtime.build",
    "get_variant": "explorer.variants", "list_variants": "explorer.variants",
    "describe": "explorer.variants", "NetSpec": "explorer.spec.netspec",
    "analyze": "explorer.analysis.rows", "to_dot": "explorer.analysis.graph",
    "for_inference": "explorer.runtime.fast",
}

__all__ = list(_API)


def __getattr__(name):
    if name in _API:
        return getattr(import_module(_API[name]), name)
    raise AttributeError(f"module 'explorer' has no attribute {name!r}")
