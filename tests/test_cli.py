"""The command line: every command, its JSON contract, and one-line errors with exit status 2."""

import json
import subprocess
import sys

import pytest

from explorer.cli import main


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Each test computes afresh (and never writes to the user's cache)."""
    monkeypatch.setenv("INCEPTION_EXPLORER_CACHE", str(tmp_path / "cache"))


def run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_variants_json(capsys):
    code, out, _ = run(capsys, "variants", "--json")
    assert code == 0
    names = [v["name"] for v in json.loads(out)]
    assert names == ["googlenet", "bn_inception", "inception_v2", "inception_v3", "inception_v4",
                     "inception_resnet_v1", "inception_resnet_v2", "resnet50", "resnet101",
                     "resnet152", "resnetv2_50", "resnetv2_101"]


def test_summary_json_contract(capsys):
    code, out, _ = run(capsys, "summary", "inception_v4", "--depth", "stage", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["variant"] == "inception_v4" and data["layout"] == "released"
    assert data["input_size"] == 299 and data["total_params"] == 42_679_816
    assert [r["name"] for r in data["rows"]][:2] == ["stem", "inception_a"]
    assert {"name", "kind", "output_shape", "params", "macs"} <= set(data["rows"][0])


def test_summary_options_change_the_network(capsys):
    _, out, _ = run(capsys, "summary", "inception_resnet_v2", "--json", "--width", "0.5",
                    "--repeats", "1,2,1", "--num-classes", "10", "--input-size", "149")
    data = json.loads(out)
    assert data["input_size"] == 149
    assert data["rows"][-1]["output_shape"] == [10]
    assert sum(r["name"].startswith("inception_resnet_b.") for r in data["rows"]) == 2


def test_summary_table_and_csv(capsys):
    code, out, _ = run(capsys, "summary", "googlenet")
    assert code == 0 and "inception_4.inception_4e" in out and "total params 6,624,904" in out
    code, out, _ = run(capsys, "summary", "googlenet", "--aux", "--csv")
    lines = out.splitlines()
    assert code == 0 and lines[0].startswith("# settings: ") and "\naux1," in out
    assert lines[1].startswith("name,kind")


def test_compare_json_has_accuracy_and_source(capsys):
    code, out, _ = run(capsys, "compare", "inception_v3", "inception_v4", "inception_resnet_v2",
                       "--json")
    assert code == 0
    rows = json.loads(out)
    assert [r["variant"] for r in rows] == ["inception_v3", "inception_v4", "inception_resnet_v2"]
    assert rows[2]["top1"] == 80.462 and "timm" in rows[2]["accuracy_source"]
    assert rows[1]["total_macs"] > rows[0]["total_macs"]


def test_graph_dot_and_svg(capsys, tmp_path):
    code, out, _ = run(capsys, "graph", "inception_v3", "--depth", "stage")
    assert code == 0 and out.lstrip().startswith("digraph")
    target = tmp_path / "v3.svg"
    code, _, _ = run(capsys, "graph", "inception_v3", "--format", "svg", "-o", str(target))
    assert code == 0 and b"<svg" in target.read_bytes()


@pytest.mark.parametrize("argv, words", [
    (["summary", "nope"], "unknown variant 'nope'"),
    (["summary", "inception_v3", "--input-size", "40"], "minimum of 75"),
    (["summary", "inception_v3", "--width", "-1"], "width must be"),
    (["summary", "inception_v3", "--layout", "draft"], "offers: released, paper"),
    (["summary", "inception_v4", "--repeats", "1,x"], "comma-separated integers"),
    (["summary", "googlenet", "--scale", "0.2"], "scale applies to residual blocks"),
    (["summary", "googlenet", "--depth", "deep"], "invalid choice"),
    (["compare", "inception_v3", "alexnet"], "unknown variant 'alexnet'"),
    (["graph", "inception_v3", "--format", "png"], "give a file with -o"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_input_gives_one_line_and_exit_2(capsys, argv, words):
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert words in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_module_entry_point_runs_as_a_process():
    done = subprocess.run([sys.executable, "-m", "explorer", "summary", "inception_v3",
                           "--input-size", "10"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.startswith("inception-explorer: error: input_size 10")
    assert "Traceback" not in done.stderr


def test_repeated_summary_comes_from_the_cache(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("INCEPTION_EXPLORER_CACHE", str(tmp_path))
    _, first, _ = run(capsys, "summary", "inception_v3", "--json", "--width", "0.75")
    entries = list((tmp_path / "analysis").glob("*.json"))
    assert len(entries) == 1
    _, second, _ = run(capsys, "summary", "inception_v3", "--json", "--width", "0.75")
    assert json.loads(second) == json.loads(first)
    entries[0].write_text("{truncated")  # a corrupt entry is ignored and rewritten
    _, third, _ = run(capsys, "summary", "inception_v3", "--json", "--width", "0.75")
    assert json.loads(third) == json.loads(first)
    assert json.loads(entries[0].read_text()) == json.loads(first)


def test_summary_graph_and_describe_need_no_torch(tmp_path):
    """Answered from the NetSpec's walk, cached or not: torch is never imported."""
    env = {**__import__("os").environ, "INCEPTION_EXPLORER_CACHE": str(tmp_path)}
    for argv in (["summary", "googlenet", "--depth", "stage"], ["summary", "googlenet", "--depth", "stage"],
                 ["graph", "inception_v4"], ["describe", "inception_resnet_v2"],
                 ["compare", "inception_v3", "inception_v4"]):
        probe = ("import runpy, sys; sys.argv = " + repr(["explorer", *argv]) + "\n"
                 "try:\n    runpy.run_module('explorer', run_name='__main__')\n"
                 "except SystemExit:\n    pass\n"
                 "print('torch' in sys.modules)")
        done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env,
                              timeout=120)
        assert done.stdout.strip().splitlines()[-1] == "False", (argv, done.stderr[-500:])
