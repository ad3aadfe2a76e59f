"""ONNX out (explorer/runtime/onnx.py, ``export --format onnx``): every variant exported at a
small width and input, run by ONNX Runtime on a batch of 3 from a file exported at batch 1, its
logits equal ours; node names carry the blocks' qualified names; the opset is stated; a missing
extra and bad options get a message."""

import json
import sys

import pytest
import torch
from networks import distinct_variants
from tolerances import LOGIT_ATOL

from explorer.cli import main
from explorer.runtime import onnx as ox
from explorer.runtime.build import build
from explorer.variants import VARIANTS, ConfigError, resolve

onnx = pytest.importorskip("onnx", reason="the onnx extra is part of the test extra")
ort = pytest.importorskip("onnxruntime", reason="the onnx extra is part of the test extra")

WIDTH = 0.25  # small models: CI stays short


def small_config(variant: str) -> tuple[dict, int]:
    """The cheapest build of ``variant`` that still has every kind of block: width 0.25, one
    block per repeatable stage, at its minimum input size (at least 75 px)."""
    info = VARIANTS[variant]
    layout = info.layouts[info.default_layout]
    config = {"width": WIDTH}
    if layout.repeats:
        config["repeats"] = (1,) * len(layout.repeats)
    for size in range(max(75, layout.min_input_size), info.native_input_size + 1):
        try:
            resolve(variant, input_size=size, **config)
            return config, size
        except ConfigError:  # branches that would not line up at this size
            continue
    raise AssertionError(f"no input size fits {variant}")


def block_names(model) -> set[str]:
    """Qualified names of the model's blocks: its stages' children (``inception_b.0``), but
    those that do nothing in eval mode (dropout) and so make no node."""
    return {f"{stage}.{block}" for stage, module in model.named_children()
            for block, child in module.named_children()
            if not isinstance(child, (torch.nn.Dropout, torch.nn.Identity))}


@pytest.fixture(scope="module", params=distinct_variants())  # a deeper ResNet: same blocks
def exported(request, tmp_path_factory, randomize_batchnorm):
    variant = request.param
    config, size = small_config(variant)
    torch.manual_seed(0)
    model = randomize_batchnorm(build(variant, input_size=size, **config), size, seed=1)
    result = ox.export_model(model, size, metadata={"variant": variant})
    path = result.write(tmp_path_factory.mktemp("onnx") / f"{variant}.onnx")
    return variant, model, size, result, path


def test_onnxruntime_runs_a_batch_of_3_from_a_batch_1_file_with_our_logits(exported):
    variant, model, size, result, path = exported
    proto = onnx.load(str(path))
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and not dims[0].dim_value, "the batch dimension is symbolic"
    assert [d.dim_value for d in dims[1:]] == [3, size, size]
    x = torch.randn(3, 3, size, size, generator=torch.Generator().manual_seed(7))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        expected = model(x)
    assert got.shape == tuple(expected.shape) == (3, 1000)
    # float32 promises 1e-4 on logits of order one; these random networks' reach ~1e4 (BN
    # statistics from one batch do not tame 0.25-wide layers), so 1e-4 of their scale
    scale = max(1.0, float(expected.abs().max()))
    torch.testing.assert_close(torch.from_numpy(got), expected, rtol=0, atol=LOGIT_ATOL * scale)
    # the export's own check measured the same thing on its own batch, and said so
    assert 0 <= result.scaled_diff <= ox.TOLERANCE == LOGIT_ATOL
    assert f"{result.max_abs_diff:.2e}" in result.summary()


def test_the_file_states_its_opset_and_what_it_is(exported):
    variant, _, size, result, path = exported
    proto = onnx.load(str(path))
    opset = next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert opset == result.opset == ox.OPSET
    assert meta["opset"] == str(opset) and f"opset {opset}" in result.summary()
    assert meta["variant"] == variant and meta["input_size"] == str(size)
    assert "onnxruntime vs PyTorch" in meta["check"]


def test_node_names_carry_the_qualified_block_names(exported):
    variant, model, _, result, path = exported
    names = [n.name for n in onnx.load(str(path)).graph.node]
    assert len(set(names)) == len(names), "node names are unique"
    assert result.named_nodes >= 0.9 * len(names)
    # the head's layers may fuse (facenet's bias-free linear into its BatchNorm1d): the head as a
    # whole must show; every block of every other stage by its own name
    blocks = {b for b in block_names(model) if not b.startswith("head.")}
    named = {b for b in blocks if any(n.startswith(b + ".") or n.startswith(b + "/") for n in names)}
    assert blocks and named == blocks, f"blocks without a node: {sorted(blocks - named)}"
    assert any(n.startswith("head.") for n in names)
    convs = [n for n in names if n.endswith("/Conv")]
    conv_bns = {name for name, m in model.named_modules() if type(m).__name__ == "ConvBN"}
    assert {n.rsplit("/", 1)[0] for n in convs} <= conv_bns | {
        name for name, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)}


def test_netron_shows_inception_b_3_in_v4_at_its_reference_depth(tmp_path):
    """The reference seven Inception-B blocks (width 0.25 keeps it small)."""
    torch.manual_seed(0)
    result = ox.export_model(build("inception_v4", input_size=75, width=WIDTH), 75)
    names = [n.name for n in onnx.load_from_string(result.data).graph.node]
    assert any(n.startswith("inception_b.3.branches.7x7.1/Conv") for n in names), names[:20]
    assert any(n.startswith("inception_b.6.") for n in names)


def test_a_check_that_fails_writes_nothing(tmp_path):
    torch.manual_seed(0)
    model = build("googlenet", input_size=32, width=WIDTH)
    with pytest.raises(ox.ExportCheckFailed, match="not written"):
        ox.export_model(model, 32, tolerance=-1.0)  # no difference is below -1
    assert list(tmp_path.iterdir()) == []


def hide_extra(monkeypatch, module="onnxruntime"):
    """As if the extra were not installed: importing ``module`` raises ImportError."""
    for name in list(sys.modules):
        if name == module or name.startswith(module + "."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, module, None)


@pytest.mark.parametrize("module", ["onnx", "onnxscript", "onnxruntime"])
def test_a_missing_extra_says_how_to_install_it(monkeypatch, module, tmp_path, capsys):
    hide_extra(monkeypatch, module)
    assert module in ox.missing()
    with pytest.raises(ox.OnnxMissing, match=r'pip install "inception-explorer\[onnx\]"'):
        ox.export_variant("googlenet", input_size=32, width=WIDTH)
    out = tmp_path / "g.onnx"
    code = main(["export", "googlenet", "--format", "onnx", "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and module in err and "inception-explorer[onnx]" in err
    assert "Traceback" not in err and not out.exists()


def test_cli_exports_with_a_checkpoint_and_prints_the_check(tmp_path, capsys, randomize_batchnorm):
    torch.manual_seed(3)
    model = randomize_batchnorm(build("googlenet", input_size=64, width=WIDTH), 64, seed=3)
    checkpoint = tmp_path / "mine.pth"
    torch.save(model.state_dict(), checkpoint)
    out = tmp_path / "g.onnx"
    code = main(["export", "googlenet", "--width", str(WIDTH), "--input-size", "64",
                 "--weights", str(checkpoint), "--format", "onnx", "-o", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "max |difference|" in printed and f"opset {ox.OPSET}" in printed and str(out) in printed
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(5))
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"image": x.numpy()})
    with torch.no_grad():
        expected = model(x)
    scale = max(1.0, float(expected.abs().max()))
    torch.testing.assert_close(torch.from_numpy(got), expected, rtol=0, atol=LOGIT_ATOL * scale)
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert meta["weights"] == "mine.pth"
    assert json.loads(meta["config"])["width"] == WIDTH


@pytest.mark.parametrize("argv, says", [
    (["export", "googlenet", "-o", "{tmp}/g.onnx"], "--format"),
    (["export", "googlenet", "--format", "pb", "-o", "{tmp}/g.onnx"], "invalid choice"),
    (["export", "googlenet", "--format", "onnx"], "-o"),
    (["export", "googlenet", "--format", "onnx", "-o", "{tmp}/no/such/folder/g.onnx"],
     "existing folder"),
    (["export", "googlenet", "--format", "onnx", "-o", "{tmp}"], "existing folder"),
    (["export", "googlenet", "--weights", "{tmp}/none.pth", "--format", "onnx", "-o",
      "{tmp}/g.onnx"], "no such file"),
    (["export", "googlenet", "--input-size", "10", "--format", "onnx", "-o", "{tmp}/g.onnx"],
     "minimum"),
    (["export", "no_such_net", "--format", "onnx", "-o", "{tmp}/g.onnx"], "unknown variant"),
    (["export", "googlenet", "--width", "zero", "--format", "onnx", "-o", "{tmp}/g.onnx"],
     "--width"),
    (["export", "googlenet", "--opset", "7", "--format", "onnx", "-o", "{tmp}/g.onnx"], "opset"),
    (["export", "googlenet", "--max-memory", "1KB", "--format", "onnx", "-o", "{tmp}/g.onnx"],
     "memory"),
])
def test_cli_bad_options_exit_2_with_one_line(argv, says, tmp_path, capsys):
    code = main([a.replace("{tmp}", str(tmp_path)) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert says in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "g.onnx").exists()


# -- the Inspect page's download ----------------------------------------------------------------

def onnx_button(at):
    return [b for b in at.button if b.label == "Export to ONNX"]


def test_inspect_exports_on_click_and_offers_the_file():
    from apptest_helpers import app, clean

    at = clean(app("inspect", variant="googlenet", width="0.25", size="64"))
    assert not [d for d in at.get("download_button") if d.proto.label == "ONNX file"]
    onnx_button(at)[0].click().run()
    clean(at)
    said = [s.value for s in at.success if "ONNX opset" in s.value]
    assert said and "max |difference|" in said[0] and "[batch, 3, 64, 64]" in said[0]
    assert [d for d in at.get("download_button") if d.proto.label == "ONNX file"]
    held = at.session_state["onnx_export"][1]
    assert onnx.load_from_string(held.data).graph.node[0].name.startswith("stem.")


def test_inspect_without_the_extra_says_how_to_install_it(monkeypatch):
    from apptest_helpers import app, clean

    hide_extra(monkeypatch, "onnxscript")
    at = clean(app("inspect", variant="googlenet", width="0.25", size="64"))
    assert not onnx_button(at)
    assert any('pip install "inception-explorer[onnx]"' in i.value for i in at.info)


# -- ONNX Runtime beside eager PyTorch and for_inference in Compare's latency -------------------

def test_latency_times_each_runtime_in_the_same_run_and_keeps_it():
    from explorer.analysis.compare import compare_rows
    from explorer.runtime import latency

    latency.forget()
    try:
        rows = compare_rows(["googlenet"], 64, width=WIDTH)
        runtimes = latency.available_runtimes("cpu")
        assert runtimes == ("eager", "for_inference", "onnxruntime")
        report = latency.measure(rows, runtimes=runtimes, batches=(1, 2), runs={1: 1, 2: 1})
        (row,) = report["rows"]
        assert set(row["runtimes"]) == {"for_inference", "onnxruntime"}
        for rt, timed in row["runtimes"].items():
            assert [t["batch"] for t in timed] == [1, 2]
            for t, eager in zip(timed, row["latency"]):
                assert t["median_ms"] > 0 and t["of_eager"] == t["median_ms"] / eager["median_ms"]
                assert t == {**t, **{k: v for k, v in latency.cached(latency.latency_key(
                    rows[0], t["batch"], "cpu", rt)).items() if k in ("median_ms", "min_ms")}}
        said = latency.runtime_lessons(report["rows"])
        share = row["runtimes"]["onnxruntime"][0]["of_eager"]
        assert f"At batch 1, ONNX Runtime took {share:.2g} of eager PyTorch's time" in said[2]
        with pytest.raises(ValueError, match="runtimes must include 'eager'"):
            latency.measure(rows, runtimes=("onnxruntime",))
    finally:
        latency.forget()


def test_runtime_lessons_arithmetic():
    from explorer.runtime.latency import runtime_lessons

    def row(variant, eager, ort, fast):
        return {"variant": variant, "latency": [{"batch": 1, "median_ms": eager}],
                "runtimes": {"onnxruntime": [{"batch": 1, "median_ms": ort, "of_eager": ort / eager}],
                             "for_inference": [{"batch": 1, "median_ms": fast,
                                                "of_eager": fast / eager}]}}

    said = runtime_lessons([row("inception_v3", 10.0, 5.0, 8.0), row("googlenet", 4.0, 3.0, 2.0)])
    assert said == [
        "At batch 1, for_inference (BN folded, channels-last) took 0.5 to 0.8 of eager "
        "PyTorch's time (median ms, same machine and threads).",
        "At batch 1, ONNX Runtime took 0.5 to 0.75 of eager PyTorch's time (median ms, same "
        "machine and threads).",
        "Fastest for Inception-v3 at every batch: ONNX Runtime.",
        "Fastest for GoogLeNet at every batch: for_inference (BN folded, channels-last)."]


def test_latency_without_the_extra_offers_no_onnx_runtime(monkeypatch):
    from explorer.runtime import latency

    hide_extra(monkeypatch, "onnxruntime")
    assert latency.available_runtimes("cpu") == ("eager", "for_inference")
    assert "onnxruntime" not in latency.available_runtimes("cuda")


def test_the_memory_estimate_counts_the_other_runtimes_copies():
    from explorer.analysis.compare import compare_rows
    from explorer.runtime import latency

    rows = compare_rows(["inception_v3", "inception_v4"])
    eager = latency.estimate(rows)
    fast = latency.estimate(rows, runtimes=("eager", "for_inference"))
    both = latency.estimate(rows, runtimes=("eager", "for_inference", "onnxruntime"))
    assert fast.weights == 2 * eager.weights
    assert both.weights > fast.weights + eager.weights  # ORT's copies and one export's


def test_cli_compare_latency_runtimes_are_checked_before_any_work(monkeypatch, capsys):
    from explorer.runtime import latency

    timed = []
    monkeypatch.setattr(latency, "measure", lambda *a, **k: timed.append(k))
    code = main(["compare", "googlenet", "--latency", "--runtimes", "eager,tensorrt"])
    err = capsys.readouterr().err
    assert code == 2 and "unknown tensorrt" in err and "onnxruntime" in err
    hide_extra(monkeypatch, "onnxruntime")
    code = main(["compare", "googlenet", "--latency", "--runtimes", "onnxruntime"])
    err = capsys.readouterr().err
    assert code == 2 and 'pip install "inception-explorer[onnx]"' in err and not timed


def test_cli_exports_a_spec_file_and_the_file_carries_the_spec(tmp_path, capsys):
    from explorer.spec.netspec import NetSpec
    from explorer.variants import describe

    spec = describe("googlenet", width=WIDTH, input_size=64)
    source = tmp_path / "mine.json"
    source.write_text(spec.to_json())
    out = tmp_path / "mine.onnx"
    code = main(["export", str(source), "--format", "onnx", "-o", str(out)])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    proto = onnx.load(str(out))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert NetSpec.from_json(meta["netspec"]) == spec and meta["input_size"] == str(spec.input_size)
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims[1:]] == [3, spec.input_size, spec.input_size]
    code = main(["export", str(source), "--width", "0.5", "--format", "onnx", "-o", str(out)])
    assert code == 2 and "states its own configuration" in capsys.readouterr().err
