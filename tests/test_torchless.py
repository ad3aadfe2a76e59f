"""Commands that describe networks run without torch (explorer.torchless) and answer exactly
what torch gives.

One fresh Python process (torch never imported there) runs ``summary`` for every variant at
every depth and for configs that reach every option (width, repeats, scale, aux heads, layout,
input size), ``compare``, ``variants`` and ``graph``, plus requests that must be refused; this
process answers the same requests with real torch. The answers must be equal, field for
field, and the refusals word for word.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest

from explorer.cli import main
from explorer.variants import VARIANTS

SUMMARIES = [["summary", v, "--depth", d] for v in VARIANTS for d in ("stage", "block", "layer")] + [
    ["summary", "inception_resnet_v2", "--width", "0.5", "--repeats", "2,3,1", "--scale", "0.2"],
    ["summary", "inception_resnet_v1", "--scale", "0.1,0.2,0.3", "--depth", "layer"],
    ["summary", "inception_v3", "--aux", "--depth", "layer", "--input-size", "331"],
    ["summary", "googlenet", "--aux", "--layout", "paper", "--depth", "layer"],
    ["summary", "inception_v4", "--width", "0.25", "--input-size", "401"],
    ["summary", "bn_inception", "--input-size", "319", "--depth", "layer"],
    ["summary", "inception_v2", "--layout", "paper", "--width", "2"],
]
CASES = [[*argv, "--json"] for argv in SUMMARIES] + [
    ["compare", *VARIANTS, "--json"],
    ["compare", "inception_v4", "inception_resnet_v1", "--width", "0.5", "--repeats", "1,2,1"],
    ["variants", "--json"],
    ["graph", "inception_resnet_v2", "--depth", "layer", "--format", "dot"],
    ["graph", "inception_v3", "--aux", "--format", "dot"],
    ["graph", "inception_v4", "--width", "0.5", "--format", "svg"],
]
REFUSED = [
    ["summary", "inception_v3", "--input-size", "10"],
    ["summary", "bn_inception", "--input-size", "299"],
    ["summary", "inception_v4", "--repeats", "0,1,1"],
    ["summary", "nope"],
    ["graph", "inception_v3", "--input-size", "10", "--format", "dot"],
    ["compare", "googlenet", "nope"],
]

# the child: every request, in one process that never imports torch
CHILD = """
import io, json, sys
from explorer.cli import main
answers = []
for argv in json.loads(sys.argv[1]):
    out, err = io.StringIO(), io.StringIO()
    stderr, sys.stderr = sys.stderr, err
    sys.argv = ["inception-explorer", *argv]  # as the command line runs it
    try:
        status = main(out=out)
    finally:
        sys.stderr = stderr
    answers.append([status, out.getvalue(), err.getvalue()])
torch = sys.modules.get("torch")
print(json.dumps({"answers": answers, "torchless": getattr(torch, "TORCHLESS", False),
                  "torch_c": "torch._C" in sys.modules}))
"""


@pytest.fixture(autouse=True)
def cold_cache_here(tmp_path, monkeypatch):
    monkeypatch.setenv("INCEPTION_EXPLORER_CACHE", str(tmp_path / "ours"))


def run_child(cases, tmp_path, env=None, code=CHILD):
    env = {**os.environ, "INCEPTION_EXPLORER_CACHE": str(tmp_path / "cache"), **(env or {})}
    done = subprocess.run([sys.executable, "-c", code, json.dumps(cases)], capture_output=True,
                          text=True, env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def with_torch(argv, capsys):
    """The same request in this process, where torch is real (the stand-in is never installed
    where torch is loaded)."""
    out = io.StringIO()
    status = main(argv, out=out)
    return [status, out.getvalue(), capsys.readouterr().err]


def test_a_cold_summary_never_imports_torch_and_answers_as_torch_does(tmp_path, capsys):
    child = json.loads(run_child(CASES + REFUSED, tmp_path).stdout)
    assert child["torchless"] and not child["torch_c"]
    for argv, (status, out, err) in zip(CASES + REFUSED, child["answers"]):
        want = with_torch(argv, capsys)
        if argv in REFUSED:
            assert status == want[0] == 2 and err == want[2] and "error:" in err, argv
            continue
        assert status == 0 and not err, (argv, err)
        if "--json" in argv:
            assert json.loads(out) == json.loads(want[1]), argv
        else:
            assert out == want[1] and len(out) > 500, argv  # a table, DOT or SVG


def test_the_stand_in_is_off_when_asked_or_where_torch_is_loaded(tmp_path):
    child = json.loads(run_child([CASES[0]], tmp_path,
                                 env={"INCEPTION_EXPLORER_TORCHLESS": "0"}).stdout)
    assert not child["torchless"] and child["torch_c"]
    from explorer import torchless
    assert not torchless.install()  # this process has torch: nothing is replaced
    assert sys.modules["torch"] is not torchless
    # main() called from other code leaves torch alone, even where torch is not loaded yet
    code = ("import io, sys; from explorer.cli import main; "
            "main(['summary', 'googlenet', '--json'], out=io.StringIO()); "
            "import torch; print(json.dumps({'answers': [], 'torchless': "
            "getattr(torch, 'TORCHLESS', False), 'torch_c': 'torch._C' in sys.modules}))")
    called = json.loads(run_child([], tmp_path, code="import json; " + code).stdout)
    assert not called["torchless"] and called["torch_c"]


# the child: every variant (aux heads built) described on the stand-in
STRUCTURE = """
import json, sys
from explorer import torchless
assert torchless.install()
from explorer.variants import VARIANTS
print(json.dumps({v: structure(built(v)) for v in VARIANTS}))
"""


def built(variant):
    """The variant on the meta device, with its aux heads where it has them."""
    from explorer.runtime.build import build
    try:
        return build(variant, device="meta", aux_logits=True)
    except ValueError:  # ConfigError: this layout has no aux head
        return build(variant, device="meta")


def structure(model) -> dict:
    """What the analysis and the graph read off a built network: every parameter and buffer
    by name with its shape (the state dict's layout), every module by name with its class, and
    which modules are alike (equal reprs: the graph draws repeated blocks once)."""
    first: dict[str, int] = {}
    alike = [first.setdefault(repr(m), i) for i, (_, m) in enumerate(model.named_modules())]
    return {"tensors": [[n, list(t.shape)] for n, t in
                        [*model.named_parameters(), *model.named_buffers()]],
            "modules": [[n, type(m).__name__] for n, m in model.named_modules()],
            "alike": alike}


def test_the_stand_in_builds_every_variant_as_torch_does(tmp_path):
    import inspect
    code = inspect.getsource(structure) + inspect.getsource(built) + STRUCTURE
    described = json.loads(run_child([], tmp_path, code=code).stdout)
    assert set(described) == set(VARIANTS)
    for variant, got in described.items():
        assert got == structure(built(variant)), variant


@pytest.mark.filterwarnings("ignore")
def test_a_network_the_stand_in_cannot_describe_is_answered_with_torch(tmp_path, capsys):
    """Should the stand-in lack something a request needs, the command runs again with torch
    (the same command line, in place of the process) instead of failing."""
    broken = ("import explorer.torchless as t\n"
              "def refuse(*a, **k): raise TypeError('no such layer here')\n"
              "t.Conv2d.__init__ = refuse\n") + CHILD
    done = run_child([["summary", "googlenet", "--depth", "stage", "--json"]], tmp_path,
                     code=broken)
    child = json.loads(done.stdout)
    assert "the torch-free answer failed (TypeError: no such layer here); answering with torch" \
        in done.stderr
    assert not child["torchless"] and child["torch_c"]
    status, out, _ = child["answers"][0]
    assert status == 0
    want = with_torch(["summary", "googlenet", "--depth", "stage", "--json"], capsys)
    assert json.loads(out) == json.loads(want[1])
