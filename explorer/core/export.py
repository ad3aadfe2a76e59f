"""Table exports that need no torch (used by the command line, the app and ``Analysis``).

An export says what it is: its file name carries every setting that differs from the reference
(``file_stem``) and the file holds all of them (CSV: a ``# settings: {json}`` first line, which
``read_csv`` and ``pandas.read_csv(..., comment="#")`` read; JSON: the "config" key).
"""

from __future__ import annotations

import csv
import io
import json

from explorer.core.text import shape_text

SETTINGS_PREFIX = "# settings: "
# Build options at their reference value leave the file name alone.
REFERENCE = {"num_classes": 1000, "aux_logits": False, "dropout": None, "width": 1.0,
             "scale": None, "repeats": None}
SHORT = {"num_classes": "classes", "aux_logits": "aux", "dropout": "dropout", "width": "width",
         "scale": "scale", "repeats": "repeats"}


def csv_text(rows: list[dict], settings: dict | None = None) -> str:
    """Rows (dicts with the same keys) as CSV; shapes (lists) are written as 768x17x17.
    ``settings``, when given, go first as a ``# settings: {json}`` comment line."""
    buf = io.StringIO()
    if settings is not None:
        buf.write(SETTINGS_PREFIX + json.dumps(settings, sort_keys=False) + "\n")
    writer = csv.writer(buf, lineterminator="\n")
    if rows:
        writer.writerow(list(rows[0]))
    for row in rows:
        writer.writerow([shape_text(v, "x") if isinstance(v, (list, tuple)) else v
                         for v in row.values()])
    return buf.getvalue()


def read_csv(text: str) -> tuple[dict, list[dict]]:
    """(settings, rows as dicts of strings) of a CSV written by ``csv_text``; settings are {}
    for a file without the comment line."""
    lines = text.splitlines()
    settings = {}
    if lines and lines[0].startswith(SETTINGS_PREFIX):
        settings = json.loads(lines[0][len(SETTINGS_PREFIX):])
        lines = lines[1:]
    return settings, list(csv.DictReader(lines))


def settings_of(result: dict) -> dict:
    """Every setting behind an analysis dict (``Analysis.to_dict()``): variant, layout, input
    size, depth and the build options."""
    return {"variant": result["variant"], "layout": result["layout"],
            "input_size": result["input_size"], "depth": result["depth"],
            **{k: v for k, v in result.get("config", {}).items()
               if k not in ("variant", "layout", "input_size", "depth")}}


def _text(value) -> str:
    if isinstance(value, (list, tuple)):
        return "-".join(_text(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def file_stem(result: dict) -> str:
    """A file name (without extension) naming every setting that is not the reference one:
    ``inception_v4_released_512px_width0.5_block``. Variant, layout, size and depth always."""
    s = settings_of(result)
    parts = [s["variant"], s["layout"], f"{s['input_size']}px"]
    for key, ref in REFERENCE.items():
        value = s.get(key, ref)
        if value is None or value == ref or (isinstance(value, list) and tuple(value) == ref):
            continue
        parts.append(SHORT[key] if value is True else f"{SHORT[key]}{_text(value)}")
    parts.append(s["depth"])
    return "_".join(parts)


def analysis_csv(result: dict) -> str:
    """An analysis dict's rows as CSV, its settings on the first line."""
    return csv_text(result["rows"], settings_of(result))
