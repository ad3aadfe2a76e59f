"""The README stays true: its variants table is the code's, its test command is what CI runs."""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import update_readme  # noqa: E402


def test_variants_table_is_generated_from_the_code():
    readme = (ROOT / "README.md").read_text()
    assert update_readme.updated(readme) == readme, "run: python scripts/update_readme.py"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)\n```", readme, re.S)
    test_command = next(b for b in blocks if "pytest" in b)
    ci = (ROOT / ".ci" / "run").read_text()
    for part in test_command.split(" && "):
        assert part.strip() in ci


def test_app_command_names_the_entry_point():
    readme = (ROOT / "README.md").read_text()
    assert "streamlit run explorer/app.py" in readme
    assert (ROOT / "explorer" / "app.py").is_file()
