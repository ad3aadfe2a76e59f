"""Tables for people: the analysis's English column names and words (marked with ``N_`` where
they are made) shown in the run's language. Values that are no catalog entry (numbers, names)
pass through unchanged."""

from __future__ import annotations

import re

from explorer.core.i18n import _

# a name made with a number in it (explorer.analysis.lessons.factorization_fields)
_THEN = re.compile(r"1x(\d+) then \1x1")


def word(value):
    if not isinstance(value, str):
        return value
    then = _THEN.fullmatch(value)
    if then:
        return _("1x{n} then {n}x1").format(n=then.group(1))
    return _(value) if value else value


def translated(records: list[dict]) -> list[dict]:
    """``records`` with their column names and text cells in the run's language."""
    return [{word(key): word(value) for key, value in r.items()} for r in records]
