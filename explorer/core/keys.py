"""Cache keys that keep types apart: ``freeze`` a config into a hashable key, ``thaw`` it back.

``299`` and ``299.0``, ``1`` and ``True`` are equal and hash alike in Python, so a cache keyed
by the plain values would answer one with the other's result although only one of each pair
is a valid option value. Every cache keyed by a configuration (analysis, graph, probe,
memory estimates, torchinfo's text) uses these two functions.
"""

from __future__ import annotations

from collections.abc import Mapping


def freeze(value) -> tuple:
    """A hashable key for ``value`` (mappings, lists, tuples and sets nested), types included.
    Lists and tuples give one key (build takes either). Values that cannot be hashed stay in
    the key as they are: hashing the key then raises TypeError, and the caller computes
    without its cache (the config check names the bad value)."""
    if isinstance(value, Mapping):
        return ("mapping", tuple(sorted((str(k), freeze(v)) for k, v in value.items())))
    if isinstance(value, (list, tuple)):
        return ("tuple", tuple(freeze(v) for v in value))
    if isinstance(value, (set, frozenset)):
        return ("set", frozenset(value))
    return (type(value).__name__, value)


def thaw(key: tuple):
    """The value ``freeze`` made ``key`` from (lists come back as tuples, sets as sets)."""
    kind, value = key
    if kind == "mapping":
        return {k: thaw(v) for k, v in value}
    if kind == "tuple":
        return tuple(thaw(v) for v in value)
    if kind == "set":
        return set(value)
    return value
