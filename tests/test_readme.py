"""The README and docs/ stay true: the variants table is the code's, the test command is what CI
runs, the front door stays short, every link leads somewhere, and the tests leave the tracked
screenshots alone."""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import update_readme  # noqa: E402

README = (ROOT / "README.md").read_text()
QUICK = '-m "not browser and not gpu"'


def bash_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)\n```", text, re.S)


def test_variants_table_is_generated_from_the_code():
    assert update_readme.updated(README) == README, "run: python scripts/update_readme.py"


def test_ci_runs_the_readme_test_command():
    test_command = next(b for b in bash_blocks(README) if "install.sh test" in b)
    ci = (ROOT / ".ci" / "run").read_text()
    for part in test_command.split(" && "):
        assert part.strip() in ci


def test_app_command_names_the_entry_point():
    assert "streamlit run explorer/app.py" in README
    assert (ROOT / "explorer" / "app.py").is_file()


def test_the_front_door_is_short_and_starts_with_the_two_commands():
    lines = README.splitlines()
    assert len(lines) <= 300, f"README.md has {len(lines)} lines: move detail to docs/"
    first = "\n".join(lines[:60])
    assert "bash scripts/install.sh && .venv/bin/streamlit run explorer/app.py" in first
    assert "bash scripts/install.sh test && .venv/bin/python -m pytest -q" in first
    assert QUICK in README
    assert README.count("](assets/screenshots/") == 1, "one screenshot on the front door"


def test_the_quick_run_leaves_out_registered_markers():
    pytest_options = (ROOT / "pyproject.toml").read_text().split("[tool.pytest.ini_options]")[1]
    pytest_options = pytest_options.split("\n[")[0]  # tomllib is Python 3.11+, we support 3.10
    registered = set(re.findall(r'^\s*"(\w+): ', pytest_options, re.M))
    assert {"browser", "gpu"} <= registered, registered
    assert "--strict-markers" in pytest_options  # a misspelt marker is an error, not a no-op


def test_every_relative_link_in_the_readme_and_docs_leads_to_a_file():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    assert len(pages) > 5, "docs/ holds one page per topic"
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue  # a URL or an anchor on the same page
            if not (page.parent / target.split("#")[0]).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not broken, broken


def test_docs_index_lists_every_page():
    index = (ROOT / "docs" / "index.md").read_text()
    missing = [p.name for p in (ROOT / "docs").glob("*.md") if p.name != "index.md" and p.name not in index]
    assert not missing, f"list these in docs/index.md: {missing}"


def test_no_test_writes_the_tracked_screenshots():
    """Screenshots are scripts/screenshots.py's job, run on purpose: a test run must leave a
    clean checkout clean."""
    writers = [p.name for p in (ROOT / "tests").glob("*.py")
               if re.search(r"assets[\"'/ ]+/?[ \"']*screenshots", p.read_text())
               and p.name != "test_readme.py"]
    assert not writers, writers
