"""Table exports that need no torch (used by the command line, the app and ``Analysis``)."""

from __future__ import annotations

import csv
import io


def csv_text(rows: list[dict]) -> str:
    """Rows (dicts with the same keys) as CSV; shapes (lists) are written as 768x17x17."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if rows:
        writer.writerow(list(rows[0]))
    for row in rows:
        writer.writerow(["x".join(map(str, v)) if isinstance(v, (list, tuple)) else v
                         for v in row.values()])
    return buf.getvalue()
