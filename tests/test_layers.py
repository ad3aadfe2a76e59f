"""The package's layers, and the one direction its imports may run (docs/architecture.md, "Code map").

Every import of every module in explorer/ and pages/ is read from the source (``ast``), the
ones inside functions included (a lazy import is still an arrow), and checked against the
layer map below: a module may import its own layer and the layers it lists, nothing else. A
new module must be placed in the map, so that a future wrong arrow fails here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# The layers, lowest first: each is a folder of explorer/ (or the app's own files), and a module
# may import its own layer and the layers listed before it, nothing above. The folders *are* the
# map: a new module is placed by the folder it is put in.
ORDER = (
    ("core", ("explorer.core",)),            # knows no network: files, text, keys, images, cache
    ("spec", ("explorer.spec",)),            # the NetSpec: a network as data, and its one walk
    ("variants", ("explorer.variants",)),    # the papers' networks as specs, their facts
    ("weights", ("explorer.weights",)),      # formats, key maps, downloads, the offline kit
    ("analysis", ("explorer.analysis",)),    # rows, receptive fields, graph DOT, compare, lessons
    ("runtime", ("explorer.runtime",)),      # torch modules: building, inference, timing, memory
    ("lab", ("explorer.lab",)),              # training races and signals
    ("cli", ("explorer.cli", "explorer.__main__")),
    ("ui", ("explorer.ui",)),
    ("pages", ("explorer.app", "pages")),
)
LAYERS = {layer: prefixes for layer, prefixes in ORDER}
_names = [layer for layer, _ in ORDER]
BELOW = {layer: tuple(_names[:i]) for i, layer in enumerate(_names)}
BELOW["ui"] = tuple(n for n in BELOW["ui"] if n != "cli")        # the UI never reads the CLI
BELOW["pages"] = tuple(n for n in BELOW["pages"] if n != "cli")  # nor do the pages
# Streamlit belongs to the app; the command line only starts it (``inception-explorer app``).
STREAMLIT_LAYERS = {"ui", "pages", "cli"}

# Arrows known to be wrong, each to be removed; the test fails once one has gone, so that this
# list only ever shrinks.


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def sources() -> dict[str, Path]:
    files = [*(ROOT / "explorer").rglob("*.py"), *(ROOT / "pages").glob("*.py")]
    return {module_name(p): p for p in sorted(files)}


MODULES = sources()


def is_module(name: str) -> bool:
    return name in MODULES


def imports(name: str, path: Path) -> set[str]:
    """Every module ``name`` imports at run time: top level, in functions and under ``if``
    (not under ``if TYPE_CHECKING:``, which only type checkers run)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(), str(path))
    typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                   and "TYPE_CHECKING" in ast.unparse(block.test)
                   for stmt in block.body for n in ast.walk(stmt)}
    out = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            # "from . import data" / "from explorer import charts" name modules
            subs = {f"{target}.{a.name}" for a in node.names if is_module(f"{target}.{a.name}")}
            out |= subs or {target}
            if subs and len(subs) < len(node.names):
                out.add(target)
    return out


def layer_of(name: str) -> str | None:
    found = [(len(prefix), layer) for layer, prefixes in LAYERS.items() for prefix in prefixes
             if name == prefix or name.startswith(prefix + ".")]
    return max(found)[1] if found else None


def arrows() -> list[tuple[str, str]]:
    return sorted((name, target) for name, path in MODULES.items()
                  for target in imports(name, path))


ARROWS = arrows()


def test_the_import_reader_sees_lazy_and_relative_imports():
    """The reader itself: a lazy import inside a function, ``from . import x``, ``..x`` and
    ``if TYPE_CHECKING:``."""
    seen = {t for n, t in ARROWS if n == "explorer.cli"}
    assert "explorer.runtime.inference" in seen          # inside cmd_predict
    assert {t for n, t in ARROWS if n == "explorer.lab.signal"} >= {
        "explorer.lab.data", "explorer.core.cache", "explorer.variants"}  # "from . import data", "..cache"
    assert ("explorer.ui.graph_panel", "explorer.analysis.charts") in ARROWS  # "from explorer import charts"
    assert ("explorer.variants.facts", "explorer.variants.config") in ARROWS


def test_every_module_has_a_layer():
    loose = [name for name in MODULES if name != "explorer" and layer_of(name) is None]
    assert not loose, (f"place these in LAYERS (tests/test_layers.py) and docs/architecture.md's "
                       f"Code map: {loose}")


def test_the_map_names_only_modules_that_exist():
    stale = [p for prefixes in LAYERS.values() for p in prefixes
             if not any(m == p or m.startswith(p + ".") for m in MODULES)]
    assert not stale, f"remove from LAYERS: {stale}"


def test_imports_run_one_way():
    wrong = []
    for name, target in ARROWS:
        if not target.startswith("explorer") or target == "explorer" or name == "explorer":
            continue
        mine, theirs = layer_of(name), layer_of(target)
        if mine is None or theirs is None:
            continue  # a module without a layer: test_every_module_has_a_layer names it
        if theirs != mine and theirs not in BELOW[mine]:
            wrong.append(f"{name} ({mine}) imports {target} ({theirs})")
    assert not wrong, "\n".join(wrong)


def test_no_module_imports_itself_back():
    """Within a layer too, arrows run one way: no cycle of imports between modules."""
    graph = {}
    for name, target in ARROWS:
        if target in MODULES and target != name:
            graph.setdefault(name, set()).add(target)
    done, path = set(), []

    def cycle_from(name):
        if name in path:
            return path[path.index(name):] + [name]
        if name in done:
            return None
        path.append(name)
        for target in sorted(graph.get(name, ())):
            found = cycle_from(target)
            if found:
                return found
        path.pop()
        done.add(name)
        return None

    for name in sorted(MODULES):
        cycle = cycle_from(name)
        assert not cycle, " -> ".join(cycle)


def test_only_the_app_imports_streamlit():
    wrong = [f"{name} ({layer_of(name)})" for name, target in ARROWS
             if target.split(".")[0] == "streamlit" and layer_of(name) not in STREAMLIT_LAYERS]
    assert not wrong, f"streamlit imported below the UI: {wrong}"


def test_the_package_imports_nothing_at_import_time():
    """``import explorer`` runs before any of its modules: it names its public API as strings
    (loaded on first use), and they all live below the UI and the command line."""
    tree = ast.parse((ROOT / "explorer" / "__init__.py").read_text())
    assert not any(isinstance(n, ast.ImportFrom) and (n.level or (n.module or "").startswith(
        "explorer")) for n in ast.walk(tree))
    api = next(n.value for n in tree.body if isinstance(n, ast.Assign)
               and getattr(n.targets[0], "id", None) == "_API")
    targets = set(ast.literal_eval(api).values())
    assert targets and all(layer_of(t) in ("spec", "variants", "analysis", "runtime")
                           for t in targets), targets


def check(arrows: list[tuple[str, str]]) -> list[str]:
    """The one-way rule on a list of arrows (for the test that proves the rule can fail)."""
    return [f"{a} -> {b}" for a, b in arrows if b.startswith("explorer.")
            and layer_of(b) != layer_of(a) and layer_of(b) not in BELOW[layer_of(a)]]


@pytest.mark.parametrize("arrow", [
    ("explorer.ui.data", "explorer.cli"),          # the UI reading the command line
    ("explorer.cli", "explorer.ui.data"),
    ("explorer.analysis.rows", "explorer.runtime.inference"),   # the library reaching up
    ("explorer.spec.walk", "explorer.variants"),    # the description knows no paper
    ("explorer.variants.googlenet", "explorer.runtime.build"),  # a description reaching torch
    ("explorer.core.images", "explorer.weights.pretrained"),
    ("pages.overview", "explorer.cli"),
])
def test_a_wrong_arrow_is_caught(arrow):
    assert check([arrow]) == [f"{arrow[0]} -> {arrow[1]}"]


def test_one_cache_folder_for_everything_the_explorer_keeps(monkeypatch, tmp_path):
    """Analyses, torchinfo tables, Lab races and uploaded checkpoints share one folder:
    ``$INCEPTION_EXPLORER_CACHE``, else ``$XDG_CACHE_HOME/inception-explorer``, else
    ``~/.cache/inception-explorer``."""
    from explorer.core.cache import cache_dir
    from explorer.weights.checkpoints import store_upload, upload_dir

    monkeypatch.delenv("INCEPTION_EXPLORER_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "inception-explorer"
    assert upload_dir() == cache_dir() / "uploads"
    assert store_upload(b"weights", "mine.pth").is_relative_to(tmp_path / "xdg" / "inception-explorer")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert upload_dir() == tmp_path / "home" / ".cache" / "inception-explorer" / "uploads"
    monkeypatch.setenv("INCEPTION_EXPLORER_CACHE", str(tmp_path / "mine"))
    assert upload_dir() == tmp_path / "mine" / "uploads"


def test_the_code_map_names_every_module():
    """docs/architecture.md's "## Code map" (where a reader looks for the layers) names every
    top-level module and folder of explorer/."""
    page = ROOT / "docs" / "architecture.md"
    assert page.is_file(), "docs/architecture.md (the layers, the NetSpec flow, its ## Code map) is missing"
    text = page.read_text()
    assert "## Code map" in text, "docs/architecture.md needs a '## Code map' section"
    code_map = text[text.index("## Code map"):]
    code_map = code_map[:code_map.find("\n## ", 1) if "\n## " in code_map[1:] else None]
    names = {p.name for p in (ROOT / "explorer").glob("*.py") if p.name != "__init__.py"}
    names |= {f"{p.name}/" for p in (ROOT / "explorer").iterdir() if (p / "__init__.py").is_file()}
    missing = sorted(n for n in names if n not in code_map)
    assert not missing, f"add to docs/architecture.md's Code map: {missing}"
