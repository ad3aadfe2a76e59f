"""Installed like any Python package: declared dependencies, and a wheel that works on its own.

The wheel is built from this checkout and installed (without dependencies) into a fresh venv
whose only extra path is this environment's site-packages, so torch & co. are reused while
``explorer`` can only come from the wheel. From a folder outside the checkout, with the source
tree off the path, it predicts on a bundled sample with the console script and serves every
page of ``inception-explorer app`` to Chromium.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import tomllib
from serving import EXCEPTION, IDLE, TIMEOUT_MS, launch_chromium, streamlit_server

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def normalise(requirement: str) -> str:
    return re.split(r"[<>=!~ \[;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def imported_modules(folders) -> set[str]:
    names = set()
    for folder in folders:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names |= {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"explorer", "__future__"}


def test_every_package_the_app_imports_is_a_runtime_dependency():
    # e.g. huggingface_hub: it downloads timm's weights, so it cannot live in the test extra
    runtime = {normalise(r) for r in PYPROJECT["project"]["dependencies"]}
    # an optional extra (not the test tools) is imported only where its feature is asked for,
    # behind a message naming the extra (explorer/runtime/onnx.py's require)
    extras = PYPROJECT["project"]["optional-dependencies"]
    runtime |= {normalise(r) for name, reqs in extras.items() if name != "test" for r in reqs}
    dists = importlib.metadata.packages_distributions()
    needed = {}
    for module in imported_modules(["explorer", "pages"]):
        assert module in dists, f"{module} is imported but installed by no distribution"
        needed[module] = {normalise(d) for d in dists[module]}
    missing = {m: d for m, d in needed.items() if not d & runtime}
    assert missing == {}, f"imported at run time but not in [project] dependencies: {missing}"
    assert "huggingface-hub" in runtime and "tqdm" in needed, "what fetch_hub and its bar use"


def test_the_wheel_lists_every_package():
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    found = {".".join(p.relative_to(ROOT).parts[:-1]) for p in (ROOT / "explorer").rglob("*.py")}
    assert found - {"explorer.pages", "explorer.assets"} <= listed, found - listed
    assert {"explorer.pages", "explorer.assets"} <= listed


@pytest.fixture(scope="module")
def weights_dir(reference_zoo, tmp_path_factory):
    """GoogLeNet's random-weights checkpoint under its registry name (conftest's folder also
    builds an Inception-v3, which this module does not need)."""
    import shutil
    folder = tmp_path_factory.mktemp("googlenet_weights")
    shutil.copy(reference_zoo["torchvision_googlenet"].path, folder / "googlenet.IMAGENET1K_V1.pth")
    return folder


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv bin folder, a work folder outside the checkout, env without the source tree)."""
    base = tmp_path_factory.mktemp("wheel")
    dist = base / "dist"
    # built from a copy: setuptools writes build/ and *.egg-info/ into the tree it builds, and a
    # test run must leave the checkout as it found it
    source = base / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis",
        "tests", "benchmarks"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(dist)], check=True, cwd=base, timeout=300)
    wheel = next(dist.glob("inception_explorer-*.whl"))
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site = Path(subprocess.run([venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig."
                                "get_paths()['purelib'])"], capture_output=True, text=True,
                               check=True).stdout.strip())
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
                    "--no-deps", "--ignore-installed", "-q", str(wheel)], check=True, timeout=300)
    # Then this environment's packages, as a path line rather than `import site`: its own .pth
    # files (an editable install of the checkout) are not run, and the venv's site-packages come
    # first, so `explorer` can only come from the wheel. (pip sees this environment's editable
    # install of the checkout: --ignore-installed, which never uninstalls anything.)
    (site / "parent_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    work = base / "elsewhere"
    work.mkdir()
    return venv / "bin", work, env


def test_the_installed_library_uses_its_own_files(installed):
    bin_dir, work, env = installed
    out = subprocess.run([bin_dir / "python", "-c", "import explorer.core.images as i, explorer.ui.nav as n; "
                          "print(i.__file__); print(i.sample_images()['cat']); print(n.PAGES_DIR)"],
                         cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    module, cat, pages = out.stdout.split()
    site = str(Path(module).parents[2])  # site-packages/explorer/core/images.py
    assert ".venv" not in module and str(ROOT) not in module, module
    assert cat == f"{site}/explorer/assets/samples/cat.png" and pages == f"{site}/explorer/pages"


def test_the_console_script_predicts_a_bundled_sample(installed, weights_dir):
    bin_dir, work, env = installed
    cat = subprocess.run([bin_dir / "python", "-c", "from explorer.core.images import sample_images; "
                          "print(sample_images()['cat'])"], cwd=work, env=env, capture_output=True,
                         text=True, timeout=120).stdout.strip()
    out = subprocess.run([bin_dir / "inception-explorer", "predict", cat, "--variant", "googlenet",
                          "--weights", "IMAGENET1K_V1", "--top-k", "3", "--json"], cwd=work,
                         env={**env, "INCEPTION_EXPLORER_WEIGHTS": str(weights_dir)},
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    (result,) = json.loads(out.stdout)
    assert result["image"] == cat and len(result["top"]) == 3
    labels = (ROOT / "assets" / "imagenet_classes.txt").read_text().splitlines()
    assert all(t["label"] == labels[t["index"]] for t in result["top"])  # labels from the wheel


@pytest.mark.browser
def test_the_installed_app_serves_every_page(installed, weights_dir, tmp_path, monkeypatch):
    from playwright.sync_api import sync_playwright

    from explorer.ui.nav import PAGES

    bin_dir, work, _ = installed
    monkeypatch.delenv("PYTHONPATH", raising=False)  # the server must not see the checkout
    heads = {}
    with streamlit_server(tmp_path / "server.log", {"INCEPTION_EXPLORER_WEIGHTS": str(weights_dir)},
                          command=[str(bin_dir / "inception-explorer"), "app"], cwd=work) as (url, _), \
            sync_playwright() as p:
        browser = launch_chromium(p)
        tab = browser.new_page(viewport={"width": 1280, "height": 720})
        tab.set_default_timeout(TIMEOUT_MS)
        for name in PAGES:
            # Predict with the one network whose weights are in the folder
            tab.goto(f"{url}/{name}" + ("?predict_variants=googlenet" if name == "predict" else ""))
            for _ in range(2):  # a rerun triggered by the first run (URL-bound widgets)
                tab.wait_for_selector(IDLE)
                tab.wait_for_timeout(500)
            tab.wait_for_selector("h1")
            assert tab.locator(EXCEPTION).count() == 0, (name, tab.locator(EXCEPTION).first.inner_text())
            assert tab.url.split("?")[0] == f"{url}/{name}", "a page the app does not know"
            if name == "predict":  # the installed app predicts with the weights folder
                tab.wait_for_selector("[data-testid='stPlotlyChart']")
                assert "googlenet.IMAGENET1K_V1 · torchvision checkpoint" in tab.locator(
                    "[data-testid='stMain']").inner_text()
            heads[name] = tab.locator("h1").first.inner_text()
        browser.close()
    assert len(set(heads.values())) == len(PAGES), heads
    assert "Traceback" not in (tmp_path / "server.log").read_text()
