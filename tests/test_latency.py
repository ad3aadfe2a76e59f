"""Latency that teaches (issue 15, goal 5): the matmul peak, GMAC/s arithmetic, the sentences the
measurements support, ``compare --latency`` and the Compare page. No full-size network is timed
here: timings are faked where the arithmetic is checked, and real ones use width 0.25 at 75 px."""

import json
from types import SimpleNamespace

import pytest
import torch
from apptest_helpers import app, clean  # tests/ on sys.path

from explorer.analysis.compare import compare_rows
from explorer.cli import main
from explorer.runtime import latency

SMALL = {"variants": ["googlenet", "inception_v3"], "compare_size": "75", "compare_width": "0.25"}


@pytest.fixture(autouse=True)
def fresh_cache():
    latency.forget()
    yield
    latency.forget()


def fake_clock(monkeypatch, stamps):
    """``time.perf_counter`` in explorer.runtime.latency answers ``stamps`` in turn (seconds, chosen
    exact in binary so that the arithmetic can be checked exactly)."""
    it = iter(stamps)
    monkeypatch.setattr(latency, "time", SimpleNamespace(perf_counter=lambda: next(it)))


# -- arithmetic -----------------------------------------------------------------------------------

def test_gmacs_per_s_is_macs_times_batch_over_time():
    assert latency.gmacs_per_s(2e9, 16, 400.0) == 80.0        # 32 GMACs in 0.4 s
    assert latency.gmacs_per_s(12_254_000_000, 1, 1000.0) == 12.254
    with pytest.raises(ValueError, match="positive"):
        latency.gmacs_per_s(1e9, 1, 0.0)


def test_matmul_peak_is_the_fastest_run_of_size_cubed_macs(monkeypatch):
    # torch.mm: three runs of 3.90625, 1.953125 and 7.8125 ms; the 1x1 conv: 7.8125 ms each.
    # The best is torch.mm's 1.953125 ms.
    fake_clock(monkeypatch, [0.0, 0.00390625, 1.0, 1.001953125, 2.0, 2.0078125,
                             3.0, 3.0078125, 4.0, 4.0078125, 5.0, 5.0078125])
    top = latency.matmul_peak(250, runs=3)
    assert top["macs"] == 250 ** 3 == 15_625_000
    assert top["best_ms"] == 1.953125 and top["median_ms"] == 3.90625
    assert top["gmacs_per_s"] == 8.0                            # 15.625 MMACs in 1.953125 ms
    assert top["kernel"] == "torch.mm"
    assert top["kernels_best_ms"] == {"torch.mm": 1.953125, "1x1 conv": 7.8125}
    assert top["threads"] == torch.get_num_threads() and top["dtype"] == "float32"
    assert top["device_name"] == "CPU" and top["size"] == 250 and top["runs"] == 3


def test_the_peak_counts_whichever_kernel_was_faster(monkeypatch):
    # torch.mm 7.8125 ms each; the 1x1 conv 3.90625, then 1.953125 ms: the conv is the limit
    fake_clock(monkeypatch, [0.0, 0.0078125, 1.0, 1.0078125,
                             2.0, 2.00390625, 3.0, 3.001953125])
    top = latency.matmul_peak(250, runs=2)
    assert top["kernel"] == "1x1 conv" and top["best_ms"] == 1.953125
    assert top["gmacs_per_s"] == 8.0


def test_the_1x1_conv_computes_the_matmul():
    a, b = torch.randn(48, 32), torch.randn(32, 40)
    product = latency.matmul_as_conv(a, b)()
    assert product.shape == (1, 40, 48, 1)
    # float32 sums of 32 products in another order: equal to a few ulps of values near 10
    torch.testing.assert_close(product[0, :, :, 0].t(), a @ b, rtol=1e-4, atol=1e-4)


def test_matmul_peak_really_runs():
    top = latency.matmul_peak(256, runs=2)
    assert 0 < top["best_ms"] <= top["median_ms"]
    assert top["gmacs_per_s"] == 256 ** 3 / (top["best_ms"] * 1e6)
    assert top["math"] == "float32"  # a CPU has no TF32


def test_a_gpu_peak_says_when_tf32_tensor_cores_did_the_float32_work():
    """PyTorch lets cuDNN's float32 convolutions use TF32 by default (10 mantissa bits): the peak
    says so rather than passing it off as float32 arithmetic."""
    cuda, f32 = torch.device("cuda"), torch.float32
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = True, False
        assert latency._math(cuda, f32, "1x1 conv") == "float32 on TF32 tensor cores"
        assert latency._math(cuda, f32, "torch.mm") == "float32"
        assert latency._math(torch.device("cpu"), f32, "1x1 conv") == "float32"
        assert latency._math(cuda, torch.bfloat16, "1x1 conv") == "bfloat16"
        torch.backends.cudnn.allow_tf32 = False
        assert latency._math(cuda, f32, "1x1 conv") == "float32"
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


# -- the sentences, from synthetic measurements ---------------------------------------------------

def measured(variant, gmacs, b1, b16, spread=0.02):
    """A ``report`` row: median ms at batch 1 and 16, runs within +-``spread`` of it."""
    rows = []
    for batch, ms in ((1, b1), (16, b16)):
        rate = latency.gmacs_per_s(gmacs * 1e9, batch, ms)
        rows.append({"batch": batch, "median_ms": ms, "min_ms": ms * (1 - spread),
                     "max_ms": ms * (1 + spread), "runs": 3, "gmacs_per_s": rate,
                     "peak_fraction": rate / 100.0, "device_name": "CPU", "threads": 2})
    return {"variant": variant, "input_size": 299, "macs": gmacs * 1e9, "latency": rows}


PEAK = {"gmacs_per_s": 100.0, "size": 2048, "dtype": "float32", "math": "float32", "threads": 2,
        "device_name": "CPU"}


def test_more_macs_but_faster_is_said_with_its_numbers():
    v4 = measured("inception_v4", 12.25, 300.0, 4800.0)
    irv2 = measured("inception_resnet_v2", 13.16, 380.0, 4000.0)  # more MACs, faster at 16
    said = latency.lessons([v4, irv2], PEAK)
    assert ("Inception-ResNet-v2 has 7 % more MACs than Inception-v4 (13.2 vs 12.2 GMACs) but "
            "ran 17 % faster at batch 16 (median 4000.0 vs 4800.0 ms): MACs do not predict "
            "latency.") in said
    # at batch 1 the order held: said so, with the ratios (1.07x the MACs, 1.27x the time)
    assert ("At batch 1 more MACs meant more time here, but not in proportion: "
            "Inception-ResNet-v2 has 1.07x the MACs of Inception-v4 and took 1.27x as long."
            ) in said
    assert not any("faster at batch 1 (" in s for s in said)
    assert ("At batch 16 the networks did 40.8 (Inception-v4) to 52.6 GMAC/s "
            "(Inception-ResNet-v2): a MAC does not cost the same time in every network.") in said
    assert said[-1] == ("The best, Inception-ResNet-v2 at batch 16, reached 53 % of this "
                        "machine's matmul peak (100.0 GMAC/s, 2048x2048 float32 on 2 threads).")


def test_when_macs_order_the_times_no_surprise_is_claimed():
    v3 = measured("inception_v3", 5.71, 150.0, 2400.0)
    v4 = measured("inception_v4", 12.25, 320.0, 5000.0)           # 2.15x MACs, 2.08x time
    said = latency.lessons([v3, v4], PEAK)
    assert not any("do not predict" in s for s in said)
    assert ("At batch 16 more MACs meant more time here, roughly in proportion: Inception-v4 "
            "has 2.15x the MACs of Inception-v3 and took 2.08x as long.") in said
    assert ("At batch 16 the networks did 38.1 (Inception-v3) to 39.2 GMAC/s (Inception-v4): "
            "about the same rate in every network.") in said


def test_in_order_names_the_pair_furthest_from_proportion():
    v3 = measured("inception_v3", 5.71, 150.0, 2400.0)
    v4 = measured("inception_v4", 12.25, 320.0, 5000.0)
    irv2 = measured("inception_resnet_v2", 13.16, 640.0, 5200.0)  # 1.07x v4's MACs, 2x its time
    said = latency.lessons([v3, v4, irv2], PEAK)
    assert ("At batch 1 more MACs meant more time here, but not in proportion: "
            "Inception-ResNet-v2 has 1.07x the MACs of Inception-v4 and took 2.00x as long."
            ) in said


def test_overlapping_runs_are_no_slower_not_faster():
    v4 = measured("inception_v4", 12.25, 300.0, 4100.0, spread=0.1)
    irv2 = measured("inception_resnet_v2", 13.16, 380.0, 4000.0, spread=0.1)
    said = latency.lessons([v4, irv2], PEAK)
    assert any("has 7 % more MACs than Inception-v4" in s and "ran no slower (the runs overlap)"
               " at batch 16" in s for s in said)
    assert not any("faster" in s for s in said)


def test_charts_put_time_per_image_against_macs_under_the_peak():
    from explorer.analysis import charts
    report = {"rows": [measured("inception_v4", 12.25, 300.0, 4800.0),
                       measured("inception_resnet_v2", 13.16, 380.0, 4000.0)], "peak": PEAK}
    fig = charts.latency_vs_macs(report)
    b1, b16, limit = fig.data
    assert list(b16.x) == [12.25, 13.16] and list(b16.y) == [300.0, 250.0]  # ms per image
    assert list(b1.text) == ["v4", "IR-v2"]
    assert limit.y[1] == 1000 * limit.x[1] / 100.0    # ms per image at the peak's 100 GMAC/s
    bars = charts.gmacs_vs_peak(report)
    assert list(bars.data[1].y) == [t["gmacs_per_s"] for r in report["rows"]
                                    for t in r["latency"] if t["batch"] == 16]
    assert bars.layout.shapes[0].y0 == 100.0          # the peak's line


# -- measuring, cached per (network, config, size, batch, device, threads) ------------------------

def fake_timing(calls):
    def forward_latency(model, size, *, batch, repeats, warmup):
        assert (repeats, warmup) == (1, 0)  # one run at a time: the networks take turns
        calls.append((model.variant, size, batch))
        ms = 10.0 * batch
        return {"median_ms": ms, "min_ms": ms, "max_ms": ms, "repeats": repeats,
                "device_name": "CPU", "threads": torch.get_num_threads()}
    return forward_latency


@pytest.fixture
def faked(monkeypatch):
    calls = []
    monkeypatch.setattr("explorer.runtime.timing.forward_latency", fake_timing(calls))
    monkeypatch.setattr(latency, "matmul_peak", lambda size, device: {
        "gmacs_per_s": 50.0, "size": size, "macs": size ** 3, "best_ms": 1.0, "median_ms": 1.0,
        "runs": 5, "kernel": "1x1 conv", "dtype": "float32", "math": "float32", "device": device,
        "device_name": "CPU", "threads": torch.get_num_threads()})
    return calls


def test_measure_times_each_batch_once_and_caches(faked, monkeypatch):
    rows = compare_rows(["googlenet", "inception_v3"], 75, width=0.25)
    seen = []
    report = latency.measure(rows, progress=lambda frac, text: seen.append(frac))
    # in turns: a warm-up and 5 runs at batch 1, a warm-up and 3 at 16, each network in turn
    nets = ["googlenet", "inception_v3"]
    assert [c[0] for c in faked] == nets * 6 + nets * 4, faked
    assert [c[1:] for c in faked] == [(75, 1)] * 12 + [(75, 16)] * 8
    assert seen == sorted(seen) and seen[-1] == 1.0
    v3 = report["rows"][1]
    assert v3["macs"] == rows[1]["total_macs"]
    assert [t["gmacs_per_s"] for t in v3["latency"]] == [
        rows[1]["total_macs"] / 10e6, rows[1]["total_macs"] * 16 / 160e6]
    assert v3["latency"][0]["peak_fraction"] == v3["latency"][0]["gmacs_per_s"] / 50.0
    # asked again: from the cache, nothing timed; with refresh: timed again
    assert latency.measure(rows) == report and len(faked) == 20
    latency.measure(rows[:1], refresh=True)
    assert len(faked) == 30
    # other options or another thread count are another measurement
    assert latency.report(compare_rows(["googlenet"], 75, width=0.5)) is None
    monkeypatch.setattr(torch, "get_num_threads", lambda: 99)
    assert latency.report(rows) is None


def test_cli_compare_latency_json_contract(capsys, faked, tmp_path, monkeypatch):
    monkeypatch.setenv("INCEPTION_EXPLORER_CACHE", str(tmp_path))
    code = main(["compare", "googlenet", "--input-size", "75", "--width", "0.25", "--latency",
                 "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and set(data) == {"rows", "peak", "lessons"}
    row = data["rows"][0]
    assert row["variant"] == "googlenet" and row["top1"] == 69.778  # the compare row, kept
    assert [t["batch"] for t in row["latency"]] == [1, 16]
    assert set(row["latency"][0]) == {"batch", "median_ms", "min_ms", "max_ms", "runs",
                                      "gmacs_per_s", "peak_fraction", "device_name", "threads"}
    assert row["latency"][1]["gmacs_per_s"] == row["total_macs"] * 16 / 160e6
    assert data["peak"]["gmacs_per_s"] == 50.0 and data["peak"]["size"] == latency.PEAK_SIZE
    assert data["lessons"][-1].startswith("The best, GoogLeNet at batch ")


def test_cli_compare_latency_table_and_refusal(capsys, faked, tmp_path, monkeypatch):
    monkeypatch.setenv("INCEPTION_EXPLORER_CACHE", str(tmp_path))
    code = main(["compare", "googlenet", "inception_v3", "--input-size", "75", "--width", "0.25",
                 "--latency"])
    out = capsys.readouterr().out
    assert code == 0 and "GMAC/s @16" in out and "matmul peak: 50.0 GMAC/s" in out
    assert "- At batch 16 the networks did" in out
    code = main(["compare", "inception_v4", "--latency", "--max-memory", "10MB"])
    err = capsys.readouterr().err
    assert code == 2 and "batch 16" in err and "--max-memory=10MB" in err and not faked[20:]


def test_estimate_holds_every_network_at_once_or_the_probe():
    from explorer.runtime.memory import estimate_inference
    rows = compare_rows(["googlenet", "inception_v3"])
    each = [estimate_inference(v, batch=16) for v in ("googlenet", "inception_v3")]
    need = latency.estimate(rows)
    assert need.weights == each[0].weights + each[1].weights
    assert need.activations == max(e.activations for e in each)
    assert need.what == "timing googlenet, inception_v3 in turns, up to batch 16"
    tiny = latency.estimate(compare_rows(["googlenet"], 75, width=0.25))
    assert tiny.what.startswith("the matmul peak probe") and tiny.activations == 3 * 2048**2 * 4


# -- the page ------------------------------------------------------------------------------------

def test_page_shows_kept_measurements_and_what_they_say(faked):
    """Measurements already kept on the server (here: synthetic, v3 faster than GoogLeNet at
    batch 16 with more MACs) are shown without pressing anything, with the sentence."""
    from explorer.runtime.workers import job_cpus

    # kept as a worker measures them (explorer.runtime.workers): with the worker's thread count
    rows = compare_rows(SMALL["variants"], 75, layout="released", width=0.25)
    for row, ms16 in zip(rows, (200.0, 100.0)):
        for batch, ms in ((1, 5.0), (16, ms16)):
            latency.remember(latency.latency_key(row, batch, threads=job_cpus()), {
                "median_ms": ms, "min_ms": ms, "max_ms": ms, "repeats": 3,
                "device_name": "CPU", "threads": job_cpus()})
    latency.remember(latency.peak_key(threads=job_cpus()),  # the faked probe: 50 GMAC/s
                     latency.matmul_peak(latency.PEAK_SIZE, "cpu"))
    at = clean(app("compare", **SMALL))
    assert not faked                                          # nothing was timed
    table = at.dataframe[1].value
    assert list(table["variant"]) == ["googlenet", "inception_v3"]
    assert list(table["ms @16"]) == [200.0, 100.0]
    assert table["GMAC/s @16"][1] == rows[1]["total_macs"] * 16 / 100e6
    said = at.info[-1].value.replace("\\", "")
    assert said.startswith("Inception-v3 has 11 % more MACs than GoogLeNet (0.0133 vs 0.012 "
                           "GMACs) but ran 50 % faster at batch 16 (median 100.0 vs 200.0 ms)")
    assert "At batch 1 more MACs meant more time here, but not in proportion" in said
    details = at.caption[-1].value.replace("\\", "")
    assert "of this machine's matmul peak (50.0 GMAC/s, 2048x2048 float32" in details
    assert len(at.get("plotly_chart")) == 5                   # 3 above + latency vs MACs, GMAC/s


def test_page_measures_on_request():
    at = clean(app("compare", **SMALL))
    assert [i.value for i in at.info][-1].startswith("Not measured yet")
    assert len(at.dataframe) == 1                             # only the comparison table
    at.button[0].click().run(timeout=600)  # three runtimes, two exports (issue 23)
    table = clean(at).dataframe[1].value
    assert (table["ms @1"] > 0).all() and (table["ms @16"] > 0).all()
    assert (table["GMAC/s @16"] == [r["total_macs"] * 16 / (ms * 1e6) for r, ms in zip(
        compare_rows(SMALL["variants"], 75, width=0.25), table["ms @16"])]).all()
    details = at.caption[-1].value.replace("\\", "")
    assert "of this machine's matmul peak" in details
    from explorer.runtime.workers import job_cpus
    assert f"Timed on CPU, {job_cpus()} threads" in details  # in a worker process, its threads
    assert "more MACs" in at.info[-1].value  # one way or the other, from the numbers
    # beside eager PyTorch, in the same run: the optimised copy and ONNX Runtime (issue 23)
    assert (table["for_inference ms @16"] > 0).all() and (table["ONNX Runtime ms @1"] > 0).all()
    assert any("ONNX Runtime took" in c.value for c in at.caption)
