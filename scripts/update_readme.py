"""Regenerate the README's variants table from the code (run after changing a variant).

    python scripts/update_readme.py          # rewrite README.md in place
    python scripts/update_readme.py --check  # exit 1 if README.md is out of date
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- variants:start -->", "<!-- variants:end -->"


def variants_table() -> str:
    from explorer.analysis.published import best_published
    from explorer.analysis.rows import analyze
    from explorer.variants import VARIANTS

    lines = ["| variant | network | year | input (min) | layouts | params | MACs | top-1 (source) |",
             "|---|---|---|---|---|---|---|---|"]
    for info in VARIANTS.values():
        layout = info.layouts[info.default_layout]
        result = analyze(info.name, layout=info.default_layout)
        pub = best_published(info.name)
        acc = f"{pub.top1:.1f} % ({pub.kind})" if pub and pub.top1 is not None else "-"
        lines.append(
            f"| `{info.name}` | {info.title} | {info.year} | {info.native_input_size} "
            f"({layout.min_input_size}) | {', '.join(info.layouts)} | "
            f"{result.total_params / 1e6:.2f} M | {result.total_macs / 1e9:.2f} G | {acc} |")
    return "\n".join(lines)


def updated(text: str) -> str:
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
    return pattern.sub(f"{START}\n{variants_table()}\n{END}", text)


if __name__ == "__main__":
    current = README.read_text()
    new = updated(current)
    if "--check" in sys.argv:
        sys.exit(0 if new == current else 1)
    README.write_text(new)
