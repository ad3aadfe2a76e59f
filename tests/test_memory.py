"""The memory guard (explorer.runtime.memory), the heavy-job queue (explorer.runtime.jobs), their CLI
flags and the pages' refusals in AppTest. The same in a real browser: test_memory_browser.py."""

from __future__ import annotations

import gc
import importlib.util
import threading
import time
from pathlib import Path

import apptest_helpers  # tests/ on sys.path
import pytest
from apptest_helpers import clean
from streamlit.testing.v1 import AppTest
from torch import nn

from explorer.analysis.rows import analyze
from explorer.cli import main
from explorer.runtime import memory
from explorer.runtime.build import build
from explorer.runtime.jobs import JobQueue
from explorer.runtime.memory import (
    CUDA_TRAIN_WORKSPACE,
    Estimate,
    MemoryRefused,
    estimate_inference,
    estimate_training,
    fmt_bytes,
)
from explorer.variants import ConfigError

ROOT = Path(__file__).resolve().parents[1]
# The issue's request: 3.56 G parameters (13.3 GiB of float32 weights) and a 2048 px input
HUGE = {"variant": "inception_resnet_v2", "width": "4.0", "rep_1": "64", "rep_2": "64",
        "rep_3": "64", "size": "2048"}
# torchvision checkpoints carry auxiliary heads; the explorer's models are built without them
pytestmark = pytest.mark.filterwarnings("ignore:dropped .* auxiliary-head tensors:UserWarning")
HUGE_CONFIG = {"width": 4.0, "repeats": (64, 64, 64), "input_size": 2048}


@pytest.fixture(autouse=True)
def no_operator_budget(monkeypatch):
    monkeypatch.delenv(memory.MEMORY_ENV, raising=False)
    monkeypatch.delenv(memory.GPU_MEMORY_ENV, raising=False)


def rss() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))


# -- sizes and the budget --------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("4GiB", 4 * 2**30), ("500MB", 500_000_000), ("1.5 GB", 1_500_000_000), ("123456", 123456),
    ("2 mib", 2 * 2**20), (" 40% ", 400), ("100%", 1000), (".5KiB", 512), (7, 7)])
def test_sizes_parse_exactly(text, expected):
    assert memory.parse_bytes(text, total=1000) == expected


@pytest.mark.parametrize("text, message", [
    ("lots", "looks like 4GiB"), ("4 GiBs", "looks like"), ("-1GB", "looks like"),
    ("0", "must be positive"), ("0.0001B", "must be positive"), ("150%", "between 0 and 100"),
    ("", "looks like"), ("1e9", "looks like")])
def test_bad_sizes_are_named(text, message):
    with pytest.raises(ConfigError, match=message):
        memory.parse_bytes(text, total=1000)


def meminfo(key: str) -> int:
    with open("/proc/meminfo") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key + ":"))


def test_the_machine_is_read_meminfo_and_cgroup(tmp_path, monkeypatch):
    limited = tmp_path / "limited"
    limited.mkdir()
    (limited / "memory.max").write_text(f"{2 * 2**30}\n")
    (limited / "memory.current").write_text(f"{2**29}\n")
    monkeypatch.setattr(memory, "_cgroup_dirs", lambda: [("v2", str(limited))])
    m = memory.machine_memory()
    assert m.total == 2 * 2**30 and "cgroup v2" in m.source
    assert m.free <= 2 * 2**30 - 2**29
    unlimited = tmp_path / "unlimited"
    unlimited.mkdir()
    (unlimited / "memory.max").write_text("max\n")
    monkeypatch.setattr(memory, "_cgroup_dirs", lambda: [("v2", str(unlimited))])
    m = memory.machine_memory()
    assert m.total == meminfo("MemTotal") and m.source == "MemTotal"
    assert 0 < m.free <= m.total


def test_the_default_budget_is_half_the_machine_and_the_operator_overrides_it(monkeypatch):
    total = memory.machine_memory().total
    b = memory.budget()
    assert b.limit == int(total * memory.DEFAULT_SHARE) and "50%" in b.source
    monkeypatch.setenv(memory.MEMORY_ENV, "300MiB")
    b = memory.budget()
    assert b.limit == 300 * 2**20 and b.source == "INCEPTION_EXPLORER_MAX_MEMORY=300MiB"
    assert memory.budget(max_memory="1GiB").limit == 2**30  # the CLI's flag wins
    monkeypatch.setenv(memory.MEMORY_ENV, "plenty")
    with pytest.raises(ConfigError, match="looks like 4GiB"):
        memory.budget()


def test_cached_models_and_running_jobs_are_counted():
    gc.collect()  # models other tests dropped are not counted once collected
    before = memory.held_bytes("cpu")
    model = memory.track(build("googlenet", width=0.25))
    size = memory.model_bytes(model)
    tensors = [*model.parameters(), *model.buffers()]
    floats = sum(t.numel() for t in tensors if t.is_floating_point())
    counters = sum(1 for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    assert size == 4 * floats + 8 * counters  # float32 weights, one int64 count per BatchNorm
    assert memory.held_bytes("cpu") == before + size
    b = memory.budget(max_memory="1GiB", reserved=100 * 2**20)
    assert b.held == before + size and b.reserved == 100 * 2**20
    assert b.available == min(2**30 - b.held - b.reserved, b.free)
    del model
    gc.collect()
    assert memory.held_bytes("cpu") == before  # evicted from a cache = no longer counted


def test_a_refusal_names_the_estimate_the_budget_and_what_to_change(monkeypatch):
    monkeypatch.setattr(memory, "held_bytes", lambda device="cpu": 0)  # other tests' caches
    est = Estimate("a forward pass of x (299 px, batch 1)", "cpu", 600 * 2**20, 300 * 2**20,
                   100 * 2**20)
    assert est.total == 1000 * 2**20 and est.needs() == "needs about 1000.0 MiB"
    with pytest.raises(MemoryRefused) as refused:
        memory.check(est, max_memory="900MiB")
    text = str(refused.value)
    assert text.startswith("a forward pass of x (299 px, batch 1) needs about 1000.0 MiB "
                           "(weights 600.0 MiB + activations 300.0 MiB + runtime 100.0 MiB)")
    assert "allows 900.0 MiB (--max-memory=900MiB)" in text and "smaller width, input size" in text
    assert isinstance(refused.value, ConfigError)  # every caller that shows ConfigErrors shows it
    assert memory.check(est, max_memory="1001MiB").limit == 1001 * 2**20


# -- estimates -------------------------------------------------------------------------------------

def test_the_issues_request_is_estimated_on_the_meta_device_and_refused():
    start = rss()
    est = estimate_inference("inception_resnet_v2", **HUGE_CONFIG)
    assert rss() - start < 500 * 2**20  # nothing real was built
    params = sum(p.numel() for p in build("inception_resnet_v2", device="meta",
                                          **HUGE_CONFIG).parameters())
    assert params > 3.5e9
    assert est.weights > 4 * params and est.weights - 4 * params < 0.01 * est.weights  # + BN buffers
    assert est.total > 16 * 2**30
    with pytest.raises(MemoryRefused, match=r"needs about 16\.\d GiB"):
        memory.check(est, max_memory="12GiB")


def test_activations_follow_the_network():
    one = estimate_inference("googlenet", input_size=96)
    four = estimate_inference("googlenet", input_size=96, batch=4)
    # every tensor scales with the batch but BatchNorm's per-channel statistics (a few KiB)
    assert four.weights == one.weights
    assert 0 <= 4 * one.activations - four.activations < 0.001 * four.activations
    layers = analyze("googlenet", input_size=96, depth="layer")
    largest = max(r.activation_bytes for r in layers.rows)
    # at least the largest output plus its input at once, at most every output kept
    assert 2 * largest <= one.activations <= layers.total_activation_bytes + 3 * 96 * 96 * 4
    sgd = estimate_training("googlenet", batch=2, input_size=96, optimizer="sgd")
    adam = estimate_training("googlenet", batch=2, input_size=96, optimizer="adam")
    assert sgd.weights == 2 * one.weights and adam.weights == 4 * one.weights
    assert sgd.activations > 2 * one.activations  # training keeps what the backward pass needs
    # a GPU's backward convolutions also hold cuDNN workspaces (measured on an H200)
    on_gpu = estimate_training("googlenet", batch=2, input_size=96, optimizer="sgd", device="cuda")
    assert on_gpu.total - sgd.total == CUDA_TRAIN_WORKSPACE and on_gpu.device == "cuda"
    with pytest.raises(ConfigError, match="optimizer must be one of"):
        estimate_training("googlenet", batch=2, optimizer="lion")
    with pytest.raises(ConfigError, match="batch must be a positive integer"):
        estimate_inference("googlenet", batch=0)
    with pytest.raises(ConfigError, match="minimum"):
        estimate_inference("inception_v3", input_size=32)


def test_the_estimate_is_within_a_quarter_of_a_measured_build():
    """One case of benchmarks/memory.py in a fresh process (the README has the others)."""
    spec = importlib.util.spec_from_file_location("memory_bench", ROOT / "benchmarks" / "memory.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    for variant, size, batch, config in [("googlenet", 320, 2, {"num_classes": 10_000})]:
        est = estimate_inference(variant, batch=batch, input_size=size, **config).total
        measured = bench.measure(variant, size, batch, config, "cpu", False)["rss"]
        assert 0.75 < est / measured < 1.25, (variant, est / 2**20, measured / 2**20)


# -- the queue -------------------------------------------------------------------------------------

def test_the_queue_serves_in_turn_shows_places_and_cancels():
    q = JobQueue(slots=1)
    first = q.enter("a", reserve=10)
    assert first.wait(0) and first.place == 0
    waiting = [q.enter(name, reserve=1) for name in "bcd"]
    assert [t.place for t in waiting] == [1, 2, 3]
    assert not waiting[0].wait(0.05)
    assert q.reserved("cpu") == 10 and q.reserved("cpu", besides=first) == 0
    waiting[1].release()  # c cancels while waiting
    assert [t.place for t in (waiting[0], waiting[2])] == [1, 2]
    assert q.snapshot() == {"running": ["a"], "waiting": ["b", "d"]}
    first.release()
    first.release()  # idempotent
    assert waiting[0].wait(0) and waiting[2].place == 1
    with pytest.raises(RuntimeError, match="released"):
        first.wait(0)


def test_the_queue_never_runs_more_than_its_slots_and_keeps_arrival_order():
    q = JobQueue(slots=2)
    running, peak, order = [0], [0], []
    lock = threading.Lock()

    def job(i):
        with q.enter(f"job {i}") as ticket:
            ticket.wait()
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
                order.append(i)
            time.sleep(0.02)
            with lock:
                running[0] -= 1

    threads = []
    for i in range(12):
        threads.append(threading.Thread(target=job, args=(i,)))
        threads[-1].start()
        time.sleep(0.003)  # arrive in order
    for t in threads:
        t.join()
    assert peak[0] == 2 and sorted(order) == list(range(12))
    assert q.snapshot() == {"running": [], "waiting": []}
    with pytest.raises(ValueError, match="at least one"):
        JobQueue(slots=0)


# -- the command line ------------------------------------------------------------------------------

def test_cli_time_and_predict_take_the_guard(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("INCEPTION_EXPLORER_CACHE", str(tmp_path / "cache"))
    code = main(["time", "googlenet", "--input-size", "96", "--width", "0.25", "--runs", "1",
                 "--max-memory", "1MB"])
    err = capsys.readouterr().err
    assert code == 2 and "needs about" in err and "(--max-memory=1MB)" in err
    code = main(["time", "googlenet", "--input-size", "96", "--width", "0.25", "--runs", "2",
                 "--max-memory", "1GiB", "--json"])
    import json
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["repeats"] == 2 and out["median_ms"] > 0 and out["input_size"] == 96
    assert out["estimated_peak_bytes"] == estimate_inference(
        "googlenet", input_size=96, width=0.25).total
    # refused before the (missing) checkpoint is even looked at
    code = main(["predict", "x.jpg", "--variant", "inception_v3", "--weights",
                 str(tmp_path / "missing.pth"), "--max-memory", "50MiB"])
    err = capsys.readouterr().err
    assert code == 2 and "needs about" in err and "missing.pth" not in err
    monkeypatch.setenv(memory.MEMORY_ENV, "50MiB")  # the default rule is the app's
    code = main(["time", "inception_v3"])
    assert code == 2 and "INCEPTION_EXPLORER_MAX_MEMORY=50MiB" in capsys.readouterr().err


# -- the pages (AppTest) ---------------------------------------------------------------------------

def app(page: str, **query) -> AppTest:
    return apptest_helpers.app(page, timeout=180, **query)


def test_inspect_refuses_the_issues_request_without_building_it(monkeypatch):
    # an operator's budget, so that the test does not depend on this machine's memory (the
    # default, half of a 24 GiB machine, refuses it too; half of a 128 GiB one would not)
    monkeypatch.setenv(memory.MEMORY_ENV, "12GiB")
    at = clean(app("inspect", **HUGE))
    assert any("needs about 16." in c.value and "over what this server allows" in c.value
               for c in at.caption)
    start = rss()
    next(b for b in at.button if b.label.startswith("Time a forward pass")).click().run()
    clean(at)
    assert rss() - start < 300 * 2**20
    assert not at.success and len(at.error) == 1
    text = at.error[0].value
    assert "needs about 16." in text and "this server allows" in text and "smaller width" in text


def test_compare_refuses_the_issues_request_without_building_it(monkeypatch):
    # the same request as on Inspect, asked through Compare's own build options
    monkeypatch.setenv(memory.MEMORY_ENV, "12GiB")
    at = clean(app("compare", variants="inception_resnet_v2", compare_width="4.0",
                   compare_rep_1="64", compare_rep_2="64", compare_rep_3="64",
                   compare_size="2048"))
    # Compare times batch 1 and 16 in every runtime it offers: the batch of 16 (56.5 GiB in
    # eager PyTorch alone) plus the other runtimes' copies of the weights is what must fit
    from explorer.analysis.compare import compare_rows
    from explorer.runtime import latency
    eager = estimate_inference("inception_resnet_v2", batch=16, input_size=2048, width=4.0,
                               repeats=(64, 64, 64)).total
    assert fmt_bytes(eager) == "56.5 GiB"
    rows = compare_rows(["inception_resnet_v2"], 2048, width=4.0, repeats=(64, 64, 64))
    total = latency.estimate(rows, "cpu", latency.available_runtimes("cpu")).total
    need = "needs about " + fmt_bytes(total)
    assert total >= eager and any(need in c.value for c in at.caption)
    start = rss()
    next(b for b in at.button if b.label == "Measure on CPU").click().run()
    clean(at)
    assert rss() - start < 300 * 2**20
    assert len(at.error) == 1 and need in at.error[0].value
    assert "smaller width" in at.error[0].value


def test_compare_refuses_over_the_operators_budget(monkeypatch):
    from explorer.runtime import latency
    latency.forget()  # timings other tests kept would be shown without measuring
    # timed at batch 1 and 16: the batch of 16 is what must fit (more than the matmul probe)
    from explorer.analysis.compare import compare_rows
    need = latency.estimate(compare_rows(["googlenet"], 160), "cpu",
                            latency.available_runtimes("cpu")).total
    assert need > latency.estimate([]).total
    need += memory.held_bytes()  # models other tests hold
    monkeypatch.setenv(memory.MEMORY_ENV, str(need - 2**20))
    at = clean(app("compare", variants="googlenet", compare_size="160"))
    assert any(c.value.startswith("Timing googlenet in turns, up to batch 16: needs about")
               for c in at.caption)
    next(b for b in at.button if b.label == "Measure on CPU").click().run()
    clean(at)
    assert len(at.error) == 1 and "INCEPTION_EXPLORER_MAX_MEMORY" in at.error[0].value
    assert len(at.dataframe) == 1  # the comparison table, no timings
    monkeypatch.setenv(memory.MEMORY_ENV, str(need + 2**20))
    next(b for b in at.button if b.label == "Measure on CPU").click().run()
    clean(at)
    assert not at.error and at.dataframe[1].value["ms @16"].iloc[0] > 0
    latency.forget()


def test_predict_refuses_a_model_over_the_budget(monkeypatch, weights_dir):
    from explorer.runtime import workers
    from explorer.ui import answers
    # models other tests' predictions left loaded in worker processes would be served there, and
    # their answers kept by the server would be shown again without asking
    workers.pool().shutdown()
    answers._predictions.clear()
    answers._seen.clear()
    gc.collect()
    monkeypatch.setenv("INCEPTION_EXPLORER_WEIGHTS", str(weights_dir))
    # GoogLeNet (66 MiB) fits, Inception-v3 (142 MiB) does not, over what other tests hold
    monkeypatch.setenv(memory.MEMORY_ENV, str(memory.held_bytes() + 100 * 2**20))
    at = clean(app("predict"))
    errors = [e.value for e in at.error]
    from explorer.core.text import md_escape
    assert len(errors) == 1
    assert errors[0].startswith(md_escape("a forward pass of inception_v3 (299 px, batch 1)"))
    assert md_escape("(INCEPTION_EXPLORER_MAX_MEMORY=") in errors[0]
    assert [c.value for c in at.caption if "needs about" in c.value] == [
        f"{estimate_inference(v, input_size=s).needs()} to load and run 1 photo(s)"
        for v, s in (("googlenet", 224), ("inception_v3", 299))]


def test_a_job_the_running_ones_crowd_out_waits_instead_of_failing():
    q = JobQueue(slots=2)
    big = q.enter("big", reserve=80)
    assert big.wait(0)
    room = {"left": 100}
    small = q.enter("small", reserve=30, fits=lambda reserved: reserved + 30 <= room["left"])
    assert not small.wait(0.05) and small.place == 1  # 80 + 30 > 100: it waits, not refused
    big.release()
    assert small.wait(0)  # alone, it runs


def test_an_allocation_that_fails_anyway_is_a_message_not_a_crash(monkeypatch, tmp_path):
    # the timing runs in a worker process (explorer.runtime.workers): the failing allocation is
    # made there, by a stand-in for the timing that a fresh worker imports from tmp_path
    from explorer.runtime import workers
    from explorer.runtime.jobs import JobQueue

    (tmp_path / "failing_timing.py").write_text(
        "def time_forward(**kwargs):\n"
        "    raise RuntimeError(\"[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: \"\n"
        "                       \"can't allocate memory: you tried to allocate 123 bytes\")\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    pool = workers.LocalPool(JobQueue(1))
    monkeypatch.setattr(workers, "_POOL", pool)
    real_submit = pool.submit

    def submit(request, fits=None):
        request.target = request.target.replace("explorer.runtime.tasks", "failing_timing")
        return real_submit(request, fits)

    monkeypatch.setattr(pool, "submit", submit)
    at = clean(app("inspect", variant="googlenet", size="96"))
    next(b for b in at.button if b.label.startswith("Time a forward pass")).click().run()
    clean(at)
    assert len(at.error) == 1 and at.error[0].value.startswith("timing googlenet ran out of memory")
    assert not at.success
    pool.shutdown()


def test_the_graphs_latency_overlay_is_guarded_too(monkeypatch):
    monkeypatch.setenv(memory.MEMORY_ENV, "1MiB")
    at = clean(app("inspect", variant="googlenet", size="96"))
    at.button_group(key="overlay").set_value("latency").run()
    assert any(estimate_inference("googlenet", input_size=96).needs() in c.value
               for c in clean(at).caption)
    at.button(key="time_blocks").click().run()
    clean(at)
    assert any("needs about" in e.value and "INCEPTION_EXPLORER_MAX_MEMORY" in e.value
               for e in at.error)
    assert '"legend_title": "measured latency:"' not in at.get("bidi_component")[0].proto.json


def test_the_labs_race_is_guarded_too(monkeypatch, capsys, tmp_path):
    from explorer.lab.training import make_request

    monkeypatch.setenv("INCEPTION_EXPLORER_CACHE", str(tmp_path / "cache"))
    assert len(make_request().configs) == 2  # the default race fits the default budget
    monkeypatch.setenv(memory.MEMORY_ENV, "50MiB")
    with pytest.raises(MemoryRefused, match=r"a race of 2 network\(s\) training side by side"):
        make_request()
    code = main(["race", "inception_v4", "--steps", "1"])  # refused before any training
    err = capsys.readouterr().err
    assert code == 2 and "INCEPTION_EXPLORER_MAX_MEMORY=50MiB" in err and "fewer networks" in err
