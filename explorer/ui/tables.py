"""Tables for people: the analysis's English column names and words (marked with ``N_`` where
they are made) shown in the run's language. Values that are no catalog entry (numbers, names)
pass through unchanged."""

from __future__ import annotations

import re

from explorer.core.i18n import DEFAULT, N_, _, language

# a name made with a number in it (explorer.analysis.lessons.factorization_fields)
_THEN = re.compile(r"1x(\d+) then \1x1")


def word(value):
    if not isinstance(value, str):
        return value
    if value.startswith("\\"):  # a cell's list marker, escaped (lessons.plain_cell): "\+ ..."
        return "\\" + word(value[1:])
    then = _THEN.fullmatch(value)
    if then:
        return _("1x{n} then {n}x1").format(n=then.group(1))
    return _(value) if value else value


def translated(records: list[dict]) -> list[dict]:
    """``records`` with their column names and text cells in the run's language."""
    return [{word(key): word(value) for key, value in r.items()} for r in records]


# The analysis rows' keys as an exported table's headers: in Korean, the Korean word with the
# key beside it (the file stays readable by anyone, and by explorer.core.export.read_csv's users
# who look for the key).
EXPORT_HEADERS = {"name": N_("name"), "kind": N_("kind"), "figure": N_("figure"),
                  "input_shape": N_("input shape"), "output_shape": N_("output shape"),
                  "params": N_("parameters"), "macs": "MACs",
                  "activation_bytes": N_("activation bytes"), "params_share": N_("params share"),
                  "macs_share": N_("MACs share"), "bn_params": "BatchNorm params",
                  "rf": N_("receptive field"), "jump": "jump", "rf_offset": N_("field centre")}


def export_rows(rows: list[dict]) -> list[dict]:
    """``rows`` with headers for a person in the run's language ("출력 shape (output_shape)");
    English keeps the keys themselves."""
    if language() == DEFAULT:
        return rows
    return [{f"{_(EXPORT_HEADERS[k])} ({k})" if k in EXPORT_HEADERS else k: v
             for k, v in r.items()} for r in rows]
