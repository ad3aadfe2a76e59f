"""How long the worst inputs take: the speed half of checks whose other half is a test.

    python benchmarks/limits.py [--repeat N]

The tests check what these inputs give (tests/test_images.py: a panorama is never resized to a
100-megapixel intermediate, every bad file is an ImageError naming it, an oversize file is
refused from its size without being opened; tests/test_graph.py: the fully expanded
Inception-ResNet-v2 lays out with all its nodes). Wall-clock goals would fail a test on a
loaded machine, so they are measured here, best of ``--repeat`` runs, each against its goal:

- a panorama (6000x7, 7x6000, 40000x2) to a 299 px tensor: goal 2 s;
- each file of the bad-file corpus (tests/image_corpus.py) refused: goal 1 s each;
- a sparse 20 MiB + 1 byte file refused: goal 0.5 s;
- the fully expanded Inception-ResNet-v2 laid out by Graphviz's ``dot`` (SVG): goal 20 s
  (the interactive graph needs far less: docs/benchmarks.md, *Interaction*).

Exits with 1 when a goal is missed. Say what else ran on the machine when you quote it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from image_corpus import bad_files, gradient  # noqa: E402  (tests/image_corpus.py)

from explorer.analysis.graph import expandable, render, to_dot  # noqa: E402
from explorer.core.images import MAX_BYTES, ImageError, Preprocess, load_image, to_tensor  # noqa: E402


def best_of(fn, repeat: int) -> float:
    """The fastest of ``repeat`` calls, in seconds."""
    return min(timeit.repeat(fn, number=1, repeat=repeat))


def refused(source) -> None:
    try:
        load_image(source)
    except ImageError:
        return
    raise SystemExit(f"{source!r} was not refused: run tests/test_images.py")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows: list[tuple[str, float, float]] = []  # (what, seconds, goal)

    pre = Preprocess(299, 342)
    for w, h in [(6000, 7), (7, 6000), (40000, 2)]:
        image = gradient(w, h)
        rows.append((f"panorama {w}x{h} -> 299 px tensor", best_of(lambda: to_tensor(image, pre),
                                                                   args.repeat), 2.0))
    with tempfile.TemporaryDirectory() as tmp:
        for name, (data, _word) in bad_files().items():
            path = Path(tmp) / name
            path.write_bytes(data)
            rows.append((f"bad file {name}", best_of(lambda: refused(path), args.repeat), 1.0))
        sparse = Path(tmp) / "huge.jpg"
        with open(sparse, "wb") as f:
            f.truncate(MAX_BYTES + 1)
        rows.append(("sparse 20 MiB + 1 byte file", best_of(lambda: refused(sparse), args.repeat), 0.5))
    source = to_dot("inception_resnet_v2", expanded=expandable("inception_resnet_v2"))
    rows.append(("IR-v2 fully expanded, dot -> SVG", best_of(lambda: render(source, "svg"), args.repeat),
                 20.0))

    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end; best of {args.repeat}\n")
    print(f"{'input':<46} {'ms':>9} {'goal (s)':>9}")
    missed = 0
    for what, seconds, goal in rows:
        missed += seconds > goal
        print(f"{what:<46} {seconds * 1e3:9.2f} {goal:9.1f}{'  MISSED' if seconds > goal else ''}")
    print(f"\n{len(rows) - missed} of {len(rows)} within their goals")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
