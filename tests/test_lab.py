"""The Lab: signal at initialisation and training races (explorer.lab), and its command line."""

import io
import json
import threading

import pytest
import torch
import torch.nn.functional as F

from explorer import cli
from explorer.lab import LabConfig, cached_race, data, make_request, measure, race, signal, training
from explorer.lab.queue import DONE, QUEUED, STOPPED, RaceQueue
from explorer.runtime.modules import materialize
from explorer.spec.compose import classifier_head, conv, network, residual, stage
from explorer.variants import ConfigError

TINY = {"width": 0.1, "repeats": (1, 1, 1)}


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    pass


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("INCEPTION_EXPLORER_CACHE", str(tmp_path))
    return tmp_path


# -- signal ----------------------------------------------------------------------------------

def _tiny_net():
    torch.manual_seed(0)
    stages = {"stem": stage("stem", [conv(4, 3)], "stem"),
              "body": stage("body", [residual({"1x1": conv(4, 1)}, 0.5)], "stage")}
    return materialize(network(stages, classifier_head(3, 0.0)))


def test_signal_matches_a_hand_computation():
    net = _tiny_net()
    x, y = torch.randn(5, 3, 6, 6, generator=torch.Generator().manual_seed(1)), torch.tensor([0, 1, 2, 0, 1])
    rows = measure(net, x, y)
    assert [r["name"] for r in rows] == ["stem.0", "body.0", "head"]

    # by hand: conv -> batch norm with this batch's statistics (biased variance, eps 1e-3,
    # weight 1, bias 0) -> ReLU; then the residual block; then average pool and the fc
    def conv_bn_relu(conv, t):
        z = F.conv2d(t, conv.weight)
        mean, var = z.mean((0, 2, 3), keepdim=True), z.var((0, 2, 3), unbiased=False, keepdim=True)
        return torch.relu((z - mean) / torch.sqrt(var + 1e-3))

    stem = conv_bn_relu(net.stem[0].conv, x).requires_grad_()
    block = net.body[0]
    branch = conv_bn_relu(block.branches["1x1"][0].conv, stem)
    body = torch.relu(stem + 0.5 * F.conv2d(branch, block.up.weight, block.up.bias))
    pooled = body.mean((2, 3))
    fc = net.head.fc
    logits = pooled @ fc.weight.T + fc.bias
    probs = torch.softmax(logits, 1)
    onehot = F.one_hot(y, 3).float()
    grad_logits = (probs - onehot) / len(y)                         # d mean CE / d logits
    grad_body = (grad_logits @ fc.weight)[:, :, None, None].expand_as(body) / (4 * 4)  # pool
    (grad_stem,) = torch.autograd.grad(body, stem, grad_body)

    expected = [(stem, grad_stem), (body, grad_body), (logits, grad_logits)]
    for row, (act, grad) in zip(rows, expected):
        assert row["activation_std"] == pytest.approx(float(act.detach().std()), rel=1e-4)
        assert row["grad_norm"] == pytest.approx(float(grad.detach().norm()), rel=1e-4)


def test_unscaled_residuals_grow_activations_and_gradients():
    """Scale 1.0 against 0.1 on the same weights draw: larger activations deep in the stack, a
    larger growth through it, and larger gradients reaching the stem (Section 3.3's argument)."""
    def rows(scale, repeats=(4, 1, 1)):
        out = signal("inception_resnet_v2", width=0.1, repeats=repeats, scale=scale, batch=8)
        return {r["name"]: r for r in out["rows"]}

    big, small = rows(1.0), rows(0.1)
    first, last = "inception_resnet_a.0", "inception_resnet_a.3"
    assert big[last]["activation_std"] > 1.1 * small[last]["activation_std"]
    assert (big[last]["activation_std"] / big[first]["activation_std"]
            > small[last]["activation_std"] / small[first]["activation_std"])
    assert big["stem.conv_1a"]["grad_norm"] > 2 * small["stem.conv_1a"]["grad_norm"]
    deeper = rows(1.0, (8, 1, 1))
    assert deeper["inception_resnet_a.7"]["activation_std"] > big[last]["activation_std"]


def test_signal_command_prints_the_contract():
    out = io.StringIO()
    assert cli.main(["signal", "inception_resnet_v2", "--width", "0.1", "--repeats", "1,1,1",
                     "--scale", "0.3", "--json"], out=out) == 0
    result = json.loads(out.getvalue())
    assert set(result) == {"variant", "config", "rows"}
    assert result["variant"] == "inception_resnet_v2" and result["config"]["scale"] == 0.3
    names = [r["name"] for r in result["rows"]]
    assert names[0] == "stem.conv_1a" and names[-1] == "head" and "reduction_b.0" in names
    assert all(set(r) == {"name", "activation_std", "grad_norm"} and r["grad_norm"] > 0
               for r in result["rows"])


# -- races -----------------------------------------------------------------------------------

def _tiny_request(**kw):
    kw = {"seeds": (0,), "steps": 24, "batch": 16, "points": 2, "device": "cpu", **kw}
    return make_request([LabConfig("inception_v4", **TINY), LabConfig("inception_resnet_v2", **TINY)],
                        **kw)


@pytest.fixture(scope="module")
def tiny_race(tmp_path_factory):
    """One short race, trained once for the module (its cache in a temporary folder)."""
    mp = pytest.MonkeyPatch()
    folder = tmp_path_factory.mktemp("labcache")
    mp.setenv("INCEPTION_EXPLORER_CACHE", str(folder))
    try:
        request = _tiny_request()
        yield request, race(request), folder
    finally:
        mp.undo()


def test_a_short_race_learns_from_real_varied_digits(tiny_race):
    request, result, _ = tiny_race
    assert [r["variant"] for r in result["runs"]] == ["inception_v4", "inception_resnet_v2"]
    labels = data.split()["train"][1]
    first_batches = labels[training._Trainer(request.configs[0], 0, request).order[:24 * 16]]
    assert len(set(first_batches.tolist())) == 10      # real digits of every class
    images, _ = data.digits()
    assert images.float().std() > 50                   # not a constant placeholder
    for run in result["runs"]:
        curve = run["curve"]
        assert [p["step"] for p in curve] == [0, 12, 24]
        assert curve[-1]["train_loss"] < curve[0]["train_loss"]
        assert all(0.0 <= p["val_acc"] <= 1.0 for p in curve)
    assert {s["variant"] for s in result["summary"]} == {"inception_v4", "inception_resnet_v2"}


def test_validation_digits_are_never_trained_on():
    train, val = data.split()["train"][0], data.split()["val"][0]
    assert len(train) == 4000 and len(val) == 1000
    flat_train = {bytes(t.numpy()) for t in train}
    assert not any(bytes(v.numpy()) in flat_train for v in val)


def test_a_race_is_deterministic_and_cached(tiny_race, cache, monkeypatch):
    request, first, folder = tiny_race
    again = race(request)  # a fresh cache: trained again from scratch
    def numbers(runs):  # everything but the wall-clock seconds
        return [[{k: v for k, v in p.items() if k != "seconds"} for p in r["curve"]] for r in runs]
    assert numbers(again["runs"]) == numbers(first["runs"])
    assert len(list((cache / "lab").glob("*.json"))) == 2

    def no_training(*args, **kw):
        raise AssertionError("a cached race must not train")
    monkeypatch.setattr(training, "_Trainer", no_training)
    monkeypatch.setenv("INCEPTION_EXPLORER_CACHE", str(folder))
    assert cached_race(request)["runs"] == first["runs"]
    assert race(request)["runs"] == first["runs"]


def test_a_queue_trains_one_race_at_a_time(tiny_race, monkeypatch):
    request, first, folder = tiny_race
    monkeypatch.setenv("INCEPTION_EXPLORER_CACHE", str(folder))
    queue = RaceQueue()
    started = threading.Event()
    release = threading.Event()

    def slow(req, on_progress, should_stop):  # the real race, held at its start
        started.set()
        release.wait(30)
        return race(req, on_progress=on_progress, should_stop=should_stop)

    queue._runner = slow
    a = queue.submit(_tiny_request(seeds=(1,), steps=4), who="alice")
    b = queue.submit(_tiny_request(seeds=(2,), steps=4), who="bob")
    shared = queue.submit(_tiny_request(seeds=(2,), steps=4), who="carol")
    assert started.wait(30)
    assert queue.place(a) == 0 and queue.place(b) == 1 and b.status == QUEUED
    assert shared is b and b.watchers == {"bob", "carol"}
    queue.leave(b, "bob")
    assert b.status == QUEUED                 # carol still waits for it
    cached = queue.submit(request, who="dave")
    assert cached.status == DONE and cached.result["runs"] == first["runs"]
    release.set()
    assert a.wait(120) and b.wait(120)
    assert a.status == DONE and b.status == DONE
    assert b.started >= a.finished
    assert b.result["runs"][0]["seed"] == 2
    # the last watcher's stop stops it
    c = queue.submit(_tiny_request(seeds=(3,), steps=4), who="erin")
    queue.leave(c, "erin")
    assert c.wait(60) and c.status == STOPPED


def test_a_stopped_race_returns_what_it_has_and_caches_nothing(cache):
    calls = []
    result = race(_tiny_request(seeds=(4,), steps=4), should_stop=lambda: len(calls) > 0,
                  on_progress=calls.append)
    assert result["stopped"] and not (cache / "lab").exists()


@pytest.mark.parametrize("configs, options, message", [
    (["inception_v4", "nope"], {}, "the Lab trains"),
    ([{"variant": "inception_v4", "scale": 0.1}], {}, "scale applies to residual blocks"),
    ([{"variant": "inception_v4", "width": 2.0}], {}, "widths up to 1.0"),
    ([{"variant": "inception_v4", "input_size": 60}], {}, "minimum of 75x75"),
    (["inception_v4", "inception_v4"], {}, "twice"),
    (["inception_v4"], {"steps": 0}, "steps must be"),
    (["inception_v4"], {"seeds": (1, 1)}, "seeds must be"),
    (["inception_v4"], {"optimizer": "sgd"}, "unknown optimizer"),
    (["inception_v4"] * 5, {}, "1 to 4 networks"),
])
def test_bad_races_are_refused_with_a_message(configs, options, message):
    with pytest.raises(ConfigError, match=message):
        make_request(configs, **options)


def test_race_command_prints_the_contract_and_refuses_bad_input(cache, capsys):
    out = io.StringIO()
    assert cli.main(["race", "inception_v4", "inception_resnet_v2@0.3", "--width", "0.1",
                     "--repeats", "1,1,1", "--steps", "2", "--batch", "8", "--json"], out=out) == 0
    result = json.loads(out.getvalue())
    assert set(result) == {"runs", "summary"}
    assert [r["config"].get("scale") for r in result["runs"]] == [None, 0.3]
    for run in result["runs"]:
        assert {"variant", "config", "seed", "curve"} <= set(run)
        assert all({"step", "train_loss", "val_acc"} <= set(p) for p in run["curve"])
    assert len(result["summary"]) == 2 and "steps_to_target" in result["summary"][0]
    assert list((cache / "lab").glob("*.json"))       # $INCEPTION_EXPLORER_CACHE moves the cache
    assert cli.main(["race", "inception_v4@0.1"], out=io.StringIO()) == 2
    assert "scale applies to residual blocks" in capsys.readouterr().err


# -- speed without changing what a run computes (issue 27) ----------------------------------------

def test_digits_prepared_once_are_what_each_batch_used_to_get():
    grey, labels = data.prepared("val", 75)
    images, want_labels = data.split()["val"]
    idx = torch.tensor([0, 7, 500, 999])
    batch = data.batch_input(grey[idx], torch.channels_last)
    assert batch.is_contiguous(memory_format=torch.channels_last) and batch.shape == (4, 3, 75, 75)
    torch.testing.assert_close(batch, data.to_input(images[idx], 75), rtol=0, atol=0)
    assert torch.equal(labels, want_labels)


def test_networks_trained_side_by_side_give_the_sequential_numbers(tiny_race, cache, monkeypatch):
    request, side_by_side, _ = tiny_race
    monkeypatch.setattr(training.os, "cpu_count", lambda: 1)  # one trainer at a time
    sequential = race(request)

    def numbers(runs):
        return [[{k: v for k, v in p.items() if k != "seconds"} for p in r["curve"]] for r in runs]
    assert numbers(sequential["runs"]) == numbers(side_by_side["runs"])
    precision = training.train_precision("cpu")
    assert precision == ("bfloat16" if training_cpu_has_bf16() else "float32")
    assert all(r["precision"] == precision for r in side_by_side["runs"])
    assert request.run_key(request.configs[0], 0)["precision"] == precision


def test_more_runs_than_cores_share_the_threads_and_keep_their_numbers(tiny_race, cache,
                                                                          monkeypatch):
    """Two networks x two seeds on two threads: a thread that finishes a run takes the next one;
    never more runs alive than threads; every run's numbers are those it has trained alone."""
    request, first, _ = tiny_race
    monkeypatch.setattr(training.os, "cpu_count", lambda: 2)
    alive, done = [], []

    def progress(p):
        alive.append(sum(r["curve"][-1]["step"] < request.steps for r in p["runs"]))
        done.append(p["done"])
        assert p["done"] == sum(r["curve"][-1]["step"] for r in p["runs"]) and p["total"] == 96
    both = race(_tiny_request(seeds=(0, 5)), on_progress=progress)
    assert done == sorted(done) and done[-1] == 96
    assert [(r["seed"], r["variant"]) for r in both["runs"]] == [
        (s, v) for s in (0, 5) for v in ("inception_v4", "inception_resnet_v2")]
    assert max(alive) == 2 and alive[-1] == 0
    monkeypatch.setattr(training.os, "cpu_count", lambda: 1)
    alone = race(_tiny_request(seeds=(5,)))  # from the cache now: what was saved is what ran

    def numbers(runs):
        return [[{k: v for k, v in p.items() if k != "seconds"} for p in r["curve"]] for r in runs]
    assert numbers(both["runs"]) == numbers(first["runs"]) + numbers(alone["runs"])
    monkeypatch.setenv("INCEPTION_EXPLORER_CACHE", str(cache / "fresh"))
    assert numbers(race(_tiny_request(seeds=(5,)))["runs"]) == numbers(alone["runs"])


@pytest.mark.parametrize("cores, threads", [(1, {"MainThread"}), (2, {"lab-race"})])
def test_a_race_trains_on_the_cores_it_is_given(cache, monkeypatch, cores, threads):
    """A worker's race uses the CPUs its job declared (``cores``), not the machine's."""
    monkeypatch.setattr(training.os, "cpu_count", lambda: 8)
    seen, started = set(), training._started

    def recorded(*args):
        seen.add(threading.current_thread().name.split("_")[0])
        return started(*args)
    monkeypatch.setattr(training, "_started", recorded)
    race(_tiny_request(seeds=(1,), steps=2, points=1), cores=cores)
    assert seen == threads


def training_cpu_has_bf16() -> bool:
    from explorer.runtime.fast import cpu_has_bf16
    return cpu_has_bf16()


def test_time_per_step_is_reported(tiny_race):
    from explorer.lab.present import step_time_text, summary_rows

    _, result, _ = tiny_race
    for s in result["summary"]:
        run = next(r for r in result["runs"] if r["label"] == s["label"])
        last = run["curve"][-1]
        assert s["ms_per_step"]["mean"] == pytest.approx(1000 * last["seconds"] / last["step"])
        assert s["ms_per_step"]["mean"] > 0
    rows = summary_rows(result["summary"])
    assert all(row["ms per step"] not in ("-", "not reached") for row in rows)
    text = step_time_text(result["runs"])
    assert text.startswith("inception_v4 ") and "inception_resnet_v2 " in text
    assert text.endswith(" ms per step")


def test_flat_parameters_give_the_per_parameter_gradients_and_update():
    """One buffer for the weights and one for the gradients: backward() fills the same numbers
    as per-parameter gradients, and the optimizer's step over the one tensor moves every weight
    as the per-parameter step does, to the last bit (each parameter 64-byte aligned in the
    buffer: unaligned, oneDNN's kernels gave gradients that differed in the 5th digit)."""
    cfg = make_request([LabConfig("inception_resnet_v2", **TINY)], device="cpu").configs[0]
    from explorer.lab.config import build_lab_model

    def model():
        return build_lab_model(cfg, torch.Generator().manual_seed(3), torch.device("cpu")).to(
            memory_format=torch.channels_last).train()

    plain, flat = model(), model()
    master, grad = training.flat_parameters(flat)
    params = list(flat.parameters())
    assert master.numel() >= sum(p.numel() for p in params) and master.grad is grad
    assert all(p.untyped_storage().data_ptr() == master.untyped_storage().data_ptr()
               and p.data_ptr() % 64 == 0 for p in params)
    conv = next(m for m in flat.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size != (1, 1))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)   # layout kept
    images, labels = data.prepared("train", 75)
    x, y = data.batch_input(images[:8], torch.channels_last), labels[:8]
    opts = (torch.optim.RMSprop(plain.parameters(), lr=0.045, alpha=0.9, eps=1.0, momentum=0.9),
            torch.optim.RMSprop([master], lr=0.045, alpha=0.9, eps=1.0, momentum=0.9))
    for _step in range(2):
        for net, opt in zip((plain, flat), opts):
            opt.zero_grad(set_to_none=True) if net is plain else grad.zero_()
            F.cross_entropy(net(x), y).backward()
        for a, b in zip(plain.parameters(), flat.parameters()):
            torch.testing.assert_close(b.grad, a.grad, rtol=0, atol=0)
        for opt in opts:
            opt.step()
        for a, b in zip(plain.parameters(), flat.parameters()):
            torch.testing.assert_close(b, a, rtol=0, atol=0)


def test_the_bfloat16_channels_last_path_trains_and_repeats():
    """The race's own step (bfloat16 autocast where the CPU has it, channels-last weights and
    batches, the flat buffers) lowers the loss within a few steps at width 0.1, and the same
    seed gives the same curve twice."""
    request = make_request([LabConfig("inception_resnet_v2", **TINY)], seeds=(5,), steps=12,
                           batch=16, points=3, device="cpu")

    def run():
        trainer = training._Trainer(request.configs[0], 5, request)
        trainer.start()
        for until in (4, 8, 12):
            assert trainer.train(until, lambda: False)
        return trainer

    first, second = run(), run()
    assert first.precision == training.train_precision("cpu")
    assert first.precision == ("bfloat16" if training_cpu_has_bf16() else "float32")
    assert all(p.is_contiguous(memory_format=torch.channels_last)
               for p in first.model.parameters() if p.dim() == 4)
    losses = first.losses
    assert len(losses) == 12 and sum(losses[-4:]) / 4 < losses[0]
    assert [p["step"] for p in first.curve] == [0, 4, 8, 12]
    assert "train_acc" in first.curve[-1] and "train_acc" not in first.curve[1]

    def numbers(trainer):
        return [{k: v for k, v in p.items() if k != "seconds"} for p in trainer.curve]
    assert numbers(second) == numbers(first) and second.losses == first.losses


def test_run_keys_change_with_the_code_and_torch(monkeypatch):
    request = _tiny_request()
    before = request.run_key(request.configs[0], 0)
    assert before["precision"] == training.train_precision("cpu")
    monkeypatch.setattr(torch, "__version__", "0.0.0-another")
    training.code_version.cache_clear()
    try:
        assert request.run_key(request.configs[0], 0)["code"] != before["code"]
    finally:
        monkeypatch.undo()
        training.code_version.cache_clear()
    assert request.run_key(request.configs[0], 0) == before


def test_the_live_progress_says_the_time_per_step():
    from explorer.lab.present import progress_text

    run = {"label": "inception_v4", "curve": [{"step": 0, "seconds": 0.0}]}
    text = progress_text({"runs": [run], "done": 0, "total": 800, "seconds_left": None})
    assert text == "training: 0 of 800 network-steps, estimating the time left..."
    run["curve"].append({"step": 34, "seconds": 4.25})
    text = progress_text({"runs": [run], "done": 34, "total": 800, "seconds_left": 95.4})
    assert text == ("training: 34 of 800 network-steps, about 95 s left "
                    "(inception_v4 125 ms per step)")
