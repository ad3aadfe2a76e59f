"""Heavy work out of the web process, without Ray: a local pool of spawned worker processes.

A race trains in a worker while this process's ``torch.get_num_threads()`` stays as it was; the
queue's place in line is what the waiting job is told; cancel ends the worker process; a worker
killed mid-job is replaced and the job retried once; a job that raises reports its error and the
worker stays; Ray configured but unreachable says so in one sentence; a worker started under
another environment is replaced; a job goes to the idle worker holding its model."""

from __future__ import annotations

import os

import pytest
import torch
from worker_helpers import ThreadWatch, alive, wait_for

from explorer.lab import LabConfig, make_request
from explorer.lab.queue import DONE, STOPPED, RaceQueue, pooled_race
from explorer.runtime import workers
from explorer.runtime.jobs import JobQueue

TINY = {"width": 0.1, "repeats": (1, 1, 1)}
LONG_TIMING = {"variant": "googlenet", "repeats": 100_000, "config": {"input_size": 64}}


@pytest.fixture
def local_pool(monkeypatch, tmp_path):
    """A fresh pool (two jobs at a time) as the process's pool; its workers stopped afterwards."""
    monkeypatch.delenv(workers.RAY_ENV, raising=False)
    monkeypatch.setenv("INCEPTION_EXPLORER_CACHE", str(tmp_path))
    pool = workers.LocalPool(JobQueue(2))
    monkeypatch.setattr(workers, "_POOL", pool)
    yield pool
    pool.shutdown()
    assert not [pid for pid in pool.pids() if alive(pid)]


def test_a_race_trains_in_a_worker_and_the_servers_threads_never_change(local_pool):
    before = torch.get_num_threads()
    # the race's own setting (explorer.lab.training.THREADS) differs from this process's
    torch.set_num_threads(2 if before != 2 else 3)
    server_threads = torch.get_num_threads()
    try:
        watch = ThreadWatch()
        queue = RaceQueue()  # its default runner is pooled_race
        request = make_request([LabConfig("inception_v4", **TINY),
                                LabConfig("inception_resnet_v2", **TINY)],
                               seeds=(0,), steps=8, batch=8, points=2, device="cpu")
        job = queue.submit(request, who="alice")
        workers_seen = set()
        while not job.wait(0.05):
            if "worker" in job.progress:
                workers_seen.add(job.progress["worker"])
        seen = watch.stop()
        assert job.status == DONE, job.error
        assert len(job.result["runs"]) == 2 and all(r["threads"] == 1 for r in job.result["runs"])
        assert seen == {server_threads}
        assert workers_seen and os.getpid() not in workers_seen
        assert workers_seen <= set(local_pool.pids()) | {p for p in workers_seen if not alive(p)}
    finally:
        torch.set_num_threads(before)


def test_a_timing_reports_progress_and_its_result_from_a_worker(local_pool):
    job = workers.submit("explorer.runtime.tasks:time_forward",
                         {"variant": "googlenet", "repeats": 3, "config": {"input_size": 64}},
                         label="timing googlenet", memory=10**8)
    result = job.result(120)
    assert job.state == workers.DONE and job.attempts == 1
    assert result["repeats"] == 3 and result["input_size"] == 64 and result["threads"] == 1
    assert job.progress == (4, 4)  # the warm-up and three runs, the last one reported
    assert job.pid != os.getpid() and alive(job.pid)  # kept warm for the next job


def test_cancel_ends_the_worker(local_pool):
    job = workers.submit("explorer.runtime.tasks:time_forward", LONG_TIMING, label="long",
                         memory=10**8)
    assert wait_for(lambda: job.progress is not None, 120), job.state
    pid = job.pid
    assert alive(pid)
    job.cancel()
    with pytest.raises(workers.JobCancelled):
        job.result(30)
    assert wait_for(lambda: not alive(pid), 10)
    assert job.state == workers.CANCELLED


def test_a_waiting_job_knows_its_place_and_a_cancel_while_waiting_starts_nothing(local_pool):
    first = [workers.submit("explorer.runtime.tasks:time_forward", LONG_TIMING, label=f"long {i}",
                            memory=10**8) for i in range(2)]
    third = workers.submit("explorer.runtime.tasks:time_forward", LONG_TIMING, label="third",
                           memory=10**8)
    fourth = workers.submit("explorer.runtime.tasks:time_forward", LONG_TIMING, label="fourth",
                            memory=10**8)
    try:
        assert wait_for(lambda: all(j.state == workers.RUNNING for j in first), 60)
        assert third.place == 1 and fourth.place == 2
        assert "number 2 in line" in workers.waiting_message(fourth)
        assert "long 0" in workers.waiting_message(fourth)
        third.cancel()
        with pytest.raises(workers.JobCancelled):
            third.result(10)
        assert third.pid is None and third.attempts == 0  # never started
        assert fourth.place == 1
    finally:
        for j in (*first, fourth):
            j.cancel()
    for j in (*first, fourth):
        assert j.wait(30)


def test_a_worker_killed_mid_job_is_replaced_and_the_job_retried_once(local_pool):
    job = workers.submit("explorer.runtime.tasks:time_forward",
                         {"variant": "googlenet", "repeats": 30, "config": {"input_size": 64}},
                         label="timing", memory=10**8)
    assert wait_for(lambda: job.progress is not None, 120)
    killed = job.pid
    os.kill(killed, 9)
    result = job.result(180)
    assert result["repeats"] == 30
    assert job.attempts == 2 and job.pid != killed


def test_a_job_that_raises_is_reported_and_its_worker_stays(local_pool):
    job = workers.submit("explorer.runtime.tasks:time_forward",
                         {"variant": "googlenet", "config": {"width": -1}}, label="bad", memory=0)
    with pytest.raises(workers.JobFailed, match="bad failed: ConfigError"):
        job.result(120)
    assert alive(job.pid)


def test_a_job_speaks_the_language_of_the_page_that_sent_it(local_pool):
    # the worker process and the relay thread start in English: the job carries the language
    from explorer.core.i18n import speaking
    with speaking("ko"):
        job = workers.submit("explorer.runtime.tasks:time_forward",
                             {"variant": "googlenet", "config": {"width": -1}}, label="bad",
                             memory=0)
        waiting = workers.waiting_text({"ray": False, "place": 2, "running": []})
    with pytest.raises(workers.JobFailed) as err:
        job.result(120)
    text = str(err.value)
    assert text.startswith("bad 실패: ConfigError: width는 (0, 4.0] 범위의 수여야 합니다"), text
    assert waiting == "머신을 기다리는 중입니다: 대기 순서 2번입니다 (지금 실행 중: 없음)."
    assert workers.waiting_text({"ray": False, "place": 2, "running": []}).startswith(
        "Waiting for the machine: you are number 2 in line")


@pytest.mark.parametrize("cores, seeds, want", [(2, (0, 1, 2), 2), (8, (0, 1, 2), 6),
                                                 (8, (0,), 2), (1, (0, 1), 1)])
def test_a_pooled_race_declares_the_cpus_its_runs_train_on(monkeypatch, cores, seeds, want):
    """Its runs train side by side, one thread each: the job asks the pool (a Ray cluster's
    num_cpus) for that many CPUs, and the race in the worker uses no more."""
    import explorer.lab.training as training
    monkeypatch.setattr(training.os, "cpu_count", lambda: cores)
    asked = {}

    def submit(target, kwargs, **options):
        asked.update(options, kwargs=kwargs)
        raise workers.HeavyUnavailable("asked")
    monkeypatch.setattr(workers, "submit", submit)
    request = make_request([LabConfig("inception_v4", **TINY),
                            LabConfig("inception_resnet_v2", **TINY)], seeds=seeds, device="cpu")
    with pytest.raises(workers.HeavyUnavailable):
        pooled_race(request, on_progress=lambda p: None, should_stop=lambda: False)
    assert asked["cpus"] == want and asked["kwargs"]["cores"] == want


def test_a_stopped_pooled_race_returns_what_it_has(local_pool):
    request = make_request([LabConfig("inception_v4", **TINY)], seeds=(7,), steps=400, batch=8,
                           points=40, device="cpu")
    progress = []
    result = pooled_race(request, on_progress=progress.append,
                         should_stop=lambda: any(p.get("done", 0) > 0 for p in progress))
    assert result["stopped"] is True
    pids = {p["worker"] for p in progress if "worker" in p}
    assert pids and wait_for(lambda: not any(alive(p) for p in pids), 10)


def test_unreachable_ray_makes_heavy_work_unavailable_and_says_why(monkeypatch):
    pytest.importorskip("ray")
    pool = workers.RayPool("127.0.0.1:1")  # nothing listens on port 1
    why = pool.unavailable()
    assert why and "does not answer" in why and "127.0.0.1:1" in why
    with pytest.raises(workers.HeavyUnavailable, match="does not answer"):
        pool.submit(workers.Request("explorer.runtime.tasks:time_forward", {}, "t", 1, 0))


def test_a_race_waiting_for_the_machine_says_so_and_stops_without_training(local_pool):
    busy = [workers.submit("explorer.runtime.tasks:time_forward", LONG_TIMING, label=f"busy {i}",
                           memory=10**8) for i in range(2)]
    try:
        assert wait_for(lambda: all(j.state == workers.RUNNING for j in busy), 60)
        queue = RaceQueue()
        job = queue.submit(make_request([LabConfig("inception_v4", **TINY)], seeds=(9,), steps=8,
                                        batch=8, points=2, device="cpu"), who="bob")
        assert wait_for(lambda: "waiting" in job.progress, 30)
        assert "number 1 in line" in job.progress["waiting"]
        queue.leave(job, "bob")
        assert job.wait(30) and job.status == STOPPED and not job.result["runs"]
    finally:
        for j in busy:
            j.cancel()


# -- the page ---------------------------------------------------------------------------------

def _time_forward_pass(at):
    button = next(b for b in at.button if b.label.startswith("Time a forward pass"))
    return button.click().run()


def test_inspects_timing_runs_in_a_worker_process_on_the_page(local_pool):
    from apptest_helpers import app, clean

    threads = torch.get_num_threads()
    at = clean(app("inspect", variant="googlenet", size="96"))
    at = clean(_time_forward_pass(at))
    done = [s.value for s in at.success]
    assert done and "median" in done[0] and "1 thread(s) of a worker process" in done[0], done
    ran = next(c.value for c in at.caption if c.value.startswith("Ran as a worker process"))
    pid = int(ran.split("pid ")[1].split(")")[0])
    assert pid != os.getpid() and pid in local_pool.pids()
    assert torch.get_num_threads() == threads


def test_unreachable_ray_leaves_the_rest_of_the_page_working(monkeypatch):
    pytest.importorskip("ray")
    from apptest_helpers import app, clean

    monkeypatch.setattr(workers, "_POOL", workers.RayPool("127.0.0.1:1"))
    at = clean(app("inspect", variant="googlenet"))
    tables = len(at.dataframe)
    at = clean(_time_forward_pass(at))
    said = " ".join(w.value for w in at.warning)
    assert "Heavy work" in said and "unavailable" in said and "127.0.0.1:1" in said, said
    assert not at.success  # nothing was timed
    assert len(at.dataframe) == tables > 0  # the analysis table is still there


def test_a_worker_started_under_another_environment_is_replaced(local_pool, monkeypatch):
    quick = {"variant": "googlenet", "repeats": 1, "config": {"input_size": 64}}
    first = workers.submit("explorer.runtime.tasks:time_forward", quick, label="t", memory=0)
    first.result(120)
    # e.g. $TORCH_HOME or a proxy, read by libraries at import: a warm worker cannot follow
    monkeypatch.setenv("INCEPTION_TEST_SOMETHING_ELSE", "1")
    second = workers.submit("explorer.runtime.tasks:time_forward", quick, label="t", memory=0)
    second.result(120)
    assert second.pid != first.pid and wait_for(lambda: not alive(first.pid), 10)
    third = workers.submit("explorer.runtime.tasks:time_forward", quick, label="t", memory=0)
    third.result(120)
    assert third.pid == second.pid  # the same environment: the warm worker again


def test_a_job_goes_to_the_idle_worker_that_holds_its_model(local_pool, weights_dir, monkeypatch):
    from explorer.core.images import sample_images
    from explorer.runtime.loaded import model_key

    monkeypatch.setenv("INCEPTION_EXPLORER_WEIGHTS", str(weights_dir))
    key = model_key("googlenet", "IMAGENET1K_V1")
    ask = {"variant": "googlenet", "weights": "IMAGENET1K_V1",
           "photos": [("cat.jpg", sample_images()["cat"].read_bytes())]}
    # two workers: one times (and finishes last), the other loads googlenet
    timing = workers.submit("explorer.runtime.tasks:time_forward",
                            {"variant": "googlenet", "repeats": 40, "config": {"input_size": 64}},
                            label="timing", memory=0)
    predicting = workers.submit("explorer.runtime.tasks:predict_photos", ask, label="p",
                                memory=0, affinity=key)
    holder = predicting.result(180)["pid"]
    timing.result(180)
    assert timing.pid != holder and local_pool.holds(key)
    # the last worker given back is the timing's: without affinity it would be taken
    assert wait_for(lambda: [w.process.pid for w in local_pool._idle] == [holder, timing.pid])
    again = workers.submit("explorer.runtime.tasks:predict_photos", ask, label="p", memory=0,
                           affinity=key)
    assert again.result(60)["pid"] == holder and again.result()["load_s"] is None
