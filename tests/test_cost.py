"""CPU accounting (explorer.core.cost): per-thread CPU time per part, the profile lines the load
benchmark reads, and the garbage collector's freeze. No timings are asserted, only which
thread's CPU time a part gets."""

import gc
import json
import math
import sys
import threading
import time
import types
import weakref

import pytest

from explorer.core import cost


def busy(seconds: float) -> None:
    """Spend about ``seconds`` of this thread's CPU time."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


@pytest.fixture
def profile(tmp_path, monkeypatch):
    path = tmp_path / "profile.jsonl"
    monkeypatch.setenv(cost.ENV, str(path))
    cost.reset()
    yield path
    cost.reset()


def lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_off_by_default_nothing_is_timed_or_written(tmp_path, monkeypatch):
    monkeypatch.delenv(cost.ENV, raising=False)
    cost.reset()
    assert cost.measure("forward") is cost.measure("grad_cam")  # one shared null context
    with cost.measure("forward"):
        busy(0.01)
    assert cost.totals() == {}
    assert list(tmp_path.iterdir()) == []


def test_a_part_gets_its_threads_cpu_time_and_a_profile_line(profile):
    with cost.measure("forward"):
        busy(0.05)
    with cost.measure("forward"):
        time.sleep(0.1)  # waiting costs no CPU
    (first, second) = lines(profile)
    assert first["part"] == "forward" and first["cpu_s"] >= 0.05
    assert second["wall_s"] >= 0.1 and second["cpu_s"] < second["wall_s"] / 2
    total = cost.totals()["forward"]
    assert total["calls"] == 2
    assert total["cpu_s"] == pytest.approx(first["cpu_s"] + second["cpu_s"], abs=1e-5)
    summed = cost.read_profile(profile)
    assert summed["forward"]["calls"] == 2
    assert summed["forward"]["cpu_s"] == pytest.approx(total["cpu_s"], abs=1e-5)


def test_another_threads_work_is_not_counted(profile):
    """Two sessions at once: the one that waits is not charged with the one that computes."""
    started = threading.Event()

    def other():
        started.set()
        busy(0.2)

    worker = threading.Thread(target=other)
    with cost.measure("grad_cam"):
        worker.start()
        started.wait()
        worker.join()
    (line,) = lines(profile)
    assert line["cpu_s"] < 0.1, line


def test_a_part_inside_another_is_not_counted_twice(profile):
    with cost.measure("outer"):
        with cost.measure("inner"):
            busy(0.1)
    by_part = {line["part"]: line for line in lines(profile)}
    assert by_part["inner"]["cpu_s"] >= 0.1
    assert by_part["outer"]["cpu_s"] < 0.05  # its own share only
    assert by_part["outer"]["wall_s"] >= by_part["inner"]["wall_s"]


def test_an_exception_still_accounts_and_propagates(profile):
    with pytest.raises(ValueError):
        with cost.measure("feature_maps"):
            raise ValueError("boom")
    assert cost.totals()["feature_maps"]["calls"] == 1


def test_read_profile_takes_a_window_and_skips_broken_lines(tmp_path):
    path = tmp_path / "p.jsonl"
    rows = [{"part": "forward", "cpu_s": 1.0, "wall_s": 2.0, "t": 10.0, "pid": 1},
            {"part": "forward", "cpu_s": 0.5, "wall_s": 0.5, "t": 20.0, "pid": 1},
            {"part": "grad_cam", "cpu_s": 0.25, "wall_s": 0.25, "t": 30.0, "pid": 1}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + '\n{"part": "forw\nnot json\n')
    assert cost.read_profile(path) == {
        "forward": {"cpu_s": 1.5, "wall_s": 2.5, "calls": 2},
        "grad_cam": {"cpu_s": 0.25, "wall_s": 0.25, "calls": 1}}
    assert cost.read_profile(path, since=15, until=25) == {
        "forward": {"cpu_s": 0.5, "wall_s": 0.5, "calls": 1}}
    assert cost.read_profile(tmp_path / "missing.jsonl") == {}


class Node:
    pass


def test_freeze_after_imports_collects_garbage_first(monkeypatch):
    cycle = Node()
    cycle.me = cycle  # garbage only the collector can free
    dead = weakref.ref(cycle)
    del cycle
    monkeypatch.setitem(sys.modules, "explorer_test_new_module", types.ModuleType("x"))
    try:
        assert cost.freeze_imports() is True
        assert dead() is None, "garbage was frozen instead of freed"
        assert gc.get_freeze_count() > 0
        assert cost.freeze_imports() is False  # nothing imported since
    finally:
        gc.unfreeze()


def test_predict_page_accounts_forward_grad_cam_and_feature_maps(weights_dir, profile, monkeypatch):
    """The wiring the load benchmark relies on: one Predict run writes each part's line."""
    from apptest_helpers import app, clean

    from explorer.ui import answers

    monkeypatch.setenv("INCEPTION_EXPLORER_WEIGHTS", str(weights_dir))
    # answered for another test: this run must compute them (in a worker, which writes the lines)
    answers._predictions.clear()
    answers._seen.clear()
    clean(app("predict", predict_variants="googlenet"))
    parts = cost.read_profile(profile)
    assert set(parts) == {"forward", "grad_cam", "feature_maps"}, parts
    assert all(p["calls"] >= 1 and p["cpu_s"] > 0 for p in parts.values()), parts


def test_one_core_queue_waits_as_the_textbook_says():
    """M/M/1: an answer waits with probability rho, then Exp(mu - lambda)."""
    service, rate = 0.5, 1.2
    rho, mu = rate * service, 1 / service
    assert cost.waiting(rate, service, 1) == pytest.approx((rho, mu - rate), rel=1e-12)
    assert cost.response_quantile(0.95, rate, service, 1) == pytest.approx(
        service + math.log(rho / 0.05) / (mu - rate), rel=1e-9)


def test_an_idle_server_answers_in_the_service_time():
    assert cost.response_quantile(0.95, 0.0, 0.4, 8) == pytest.approx(0.4)
    assert cost.response_quantile(0.95, 0.01, 0.4, 8) == pytest.approx(0.4)  # rarely waits


def test_erlang_c_against_a_worked_value():
    """c = 2, a = 1 (half loaded): P(wait) = (1/2 * 2) / (1 + 1 + 1) = 1/3, wait rate 2 - 1."""
    assert cost.waiting(1.0, 1.0, 2) == pytest.approx((1 / 3, 1.0), rel=1e-12)
    assert cost.waiting(2.0, 1.0, 2) == (1.0, 0.0)  # as fast as it serves: unstable


def test_max_rate_meets_the_target_and_grows_with_cores():
    service = 0.3
    two, eight = cost.max_rate(service, 2, 3.0), cost.max_rate(service, 8, 3.0)
    assert 0 < two < 2 / service and two < eight < 8 / service
    assert cost.response_quantile(0.95, two, service, 2) <= 3.0 + 1e-6
    assert cost.response_quantile(0.95, two * 1.01, service, 2) > 3.0
    assert cost.response_quantile(0.95, 2 / service, service, 2) == math.inf
    assert cost.max_rate(3.5, 8, 3.0) == 0.0  # one answer alone takes 3.5 s
    assert cost.max_rate(2.0, 8, 3.0) > 0.0


def test_a_frozen_model_is_still_freed_when_dropped():
    """Freezing keeps cyclic garbage; our models have no cycles, so a cache that drops one
    frees it (reference counting), collector or not."""
    from explorer.runtime.build import build

    model = build("inception_resnet_v2", device="meta")
    gone = weakref.ref(model)
    gc.disable()
    gc.freeze()
    try:
        del model
        assert gone() is None
    finally:
        gc.unfreeze()
        gc.enable()
