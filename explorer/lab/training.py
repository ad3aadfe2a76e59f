"""A training race: several networks trained side by side on the same digits, in the same order,
for the same number of steps, from the same seeds; validation accuracy on digits never trained on.

Runs are deterministic (weights and data order from private generators, no dropout, a fixed
number of CPU threads) and cached on disk by (configuration, seed, recipe, steps, device,
precision, code version), so a repeated race is answered at once.

Speed (the default race, 2 networks x 3 seeds x 400 steps, was minutes; the goal is a minute and
a half on a 2-core CPU; docs/lab.md has the measured figures): on CPUs with native bfloat16
(AVX-512 BF16, AMX) the forward and backward passes run under bfloat16 autocast (weights,
optimizer state and the loss stay float32); weights and batches are channels-last (oneDNN's
convolutions then skip a reorder per layer); the digits are normalised and upsampled once per
input size (``data.prepared``); the weights and their gradients live in one buffer each
(``flat_parameters``), so that gradient clipping and the optimizer are a few passes over one
tensor (PyTorch's "foreach" kernels on a CPU still loop over the parameters one by one); the
losses are read once per chunk of steps; evaluation runs under ``inference_mode``, 500 digits a
pass, and the training accuracy is measured at the last point only (the one the summary uses);
the runs of a race (networks x seeds) build, train and measure side by side, one thread each and
as many at once as the CPU has cores, on threads that live as long as the race; a thread whose
run is done goes on with the next one instead of waiting for the slower network of its seed (a
run stays single-threaded, so it is still repeatable: two runs share nothing but the data).
Most of a step's time is now oneDNN's convolutions and their calls
at these small grids (3x3 and 1x1 after the stem at 75 px).
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import statistics
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F

from explorer.core.cache import cache_dir, read_json, write_json
from explorer.core.i18n import _
from explorer.lab import data
from explorer.lab.config import AUX_WEIGHT, LabConfig, build_lab_model
from explorer.variants import ConfigError

V4_PAPER = "https://arxiv.org/abs/1602.07261"
RETHINKING = "https://arxiv.org/abs/1512.00567"
ADAM = "https://arxiv.org/abs/1412.6980"
# One CPU thread, fixed: a run is then repeatable on any CPU (one reduction order), and on a
# shared machine two threads were 18x slower than one here (OpenMP threads waiting on each other).
THREADS = 1
MAX_CONFIGS, MAX_SEEDS, MAX_STEPS = 4, 5, 5000
MAX_WIDTH = 1.0      # the Lab is for small networks; 1.0 is already ~60x slower than 0.25
DEFAULT_CONFIGS = (LabConfig("inception_v4"), LabConfig("inception_resnet_v2"))
DEFAULT_STEPS, DEFAULT_BATCH, DEFAULT_TARGET, DEFAULT_POINTS = 400, 32, 0.9, 12
EVAL_BATCH = 500  # digits per forward pass when measuring accuracy (eval mode, no gradients)


@dataclass(frozen=True)
class Recipe:
    name: str
    title: str
    lr: float
    label_smoothing: float
    clip: float | None
    decay: float            # learning-rate factor ...
    decay_epochs: float     # ... applied every this many epochs of the training split
    source: str

    def optimizer(self, params):
        if self.name == "rmsprop":
            # TF's RMSProp, as the papers used it: decay 0.9, epsilon 1.0, momentum 0.9 (the
            # released training code's value). PyTorch adds epsilon outside the square root,
            # TF inside: with epsilon = 1 both damp small second moments alike.
            return torch.optim.RMSprop(params, lr=self.lr, alpha=0.9, eps=1.0, momentum=0.9,
                                       foreach=True)
        return torch.optim.Adam(params, lr=self.lr, foreach=True)


RECIPES = {
    "rmsprop": Recipe(
        "rmsprop", "the papers' recipe: RMSProp (decay 0.9, epsilon 1.0), lr 0.045 x 0.94 every "
        "2 epochs, label smoothing 0.1, gradient clipping at 2.0", 0.045, 0.1, 2.0, 0.94, 2.0,
        f"Inception-v4 paper, Section 4 ({V4_PAPER}); label smoothing: Rethinking paper, "
        f"Section 7; clipping 2.0 and the RMSProp settings: Rethinking paper, Section 8 "
        f"({RETHINKING}). Scaled to the Lab: an epoch is the 4,000 training digits (125 steps "
        "at batch 32), not ImageNet's 1.28 M images."),
    "adam": Recipe(
        "adam", "Adam, lr 0.001 (its defaults), constant, no smoothing, no clipping", 1e-3, 0.0,
        None, 1.0, 1.0, f"Kingma & Ba, 'Adam' ({ADAM}): the default settings of Algorithm 1"),
}


@lru_cache(maxsize=1)
def code_version() -> str:
    """Hash of the code that shapes a run's numbers (this package's training code, the
    variants, the specs and modules they are built from), of torch's version and of the data's
    package version: a change to any of them makes new run keys, so that a cached run is never
    shown as one of the code that runs now."""
    from importlib.metadata import PackageNotFoundError, version

    here = Path(__file__).resolve().parent
    root = here.parent
    digest = hashlib.sha256()
    for path in sorted([here / "training.py", here / "config.py", here / "data.py",
                        root / "runtime" / "build.py", root / "runtime" / "modules.py",
                        *(root / "variants").glob("*.py"), *(root / "spec").glob("*.py")]):
        digest.update(str(path.relative_to(root)).encode() + path.read_bytes())
    # the kernels that compute a run (oneDNN's bfloat16 ones among them) come with torch
    digest.update(f"torch {torch.__version__}".encode())
    try:
        digest.update(version("mlxtend").encode())
    except PackageNotFoundError:
        pass
    return digest.hexdigest()[:16]


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def train_precision(device: str) -> str:
    """"bfloat16" (autocast) on a CPU with native bfloat16 arithmetic, else "float32"."""
    from explorer.runtime.fast import cpu_has_bf16

    return "bfloat16" if torch.device(device).type == "cpu" and cpu_has_bf16() else "float32"


@dataclass(frozen=True)
class RaceRequest:
    """A validated race: everything that decides its numbers."""

    configs: tuple[LabConfig, ...]
    seeds: tuple[int, ...] = (0,)
    steps: int = DEFAULT_STEPS
    optimizer: str = "rmsprop"
    batch: int = DEFAULT_BATCH
    device: str = "cpu"
    target: float = DEFAULT_TARGET
    points: int = DEFAULT_POINTS  # validation points along the curve (after step 0)

    @property
    def eval_every(self) -> int:
        return math.ceil(self.steps / self.points)

    def key(self) -> str:
        return json.dumps({"configs": [c.to_dict() for c in self.configs], "seeds": self.seeds,
                           "steps": self.steps, "optimizer": self.optimizer, "batch": self.batch,
                           "device": self.device, "target": self.target, "points": self.points},
                          sort_keys=True)

    def run_key(self, cfg: LabConfig, seed: int) -> dict:
        return {"code": code_version(), "config": cfg.to_dict(), "seed": seed, "steps": self.steps,
                "optimizer": self.optimizer, "batch": self.batch, "eval_every": self.eval_every,
                "device": self.device, "threads": THREADS if self.device == "cpu" else None,
                "precision": train_precision(self.device)}


def make_request(configs=DEFAULT_CONFIGS, *, seeds=(0,), steps=DEFAULT_STEPS, optimizer="rmsprop",
                 batch=DEFAULT_BATCH, device=None, target=DEFAULT_TARGET,
                 points=DEFAULT_POINTS) -> RaceRequest:
    """Validate a race; ConfigError says what is wrong and what is allowed."""
    configs = [c if isinstance(c, LabConfig) else
               LabConfig.from_dict(c) if isinstance(c, dict) else LabConfig(c) for c in configs]
    if not 1 <= len(configs) <= MAX_CONFIGS:
        raise ConfigError(_("a race takes 1 to {most} networks, got {n}").format(
            most=MAX_CONFIGS, n=len(configs)))
    resolved = tuple(c.resolved() for c in configs)
    for c in resolved:
        if c.width > MAX_WIDTH:
            raise ConfigError(_("the Lab trains widths up to {most} (got {width}): wider networks "
                                "take far too long on a CPU").format(most=MAX_WIDTH, width=c.width))
    if len(set(resolved)) != len(resolved):
        raise ConfigError(_("the same network is in the race twice; change a variant or an "
                            "option"))
    seeds = tuple(seeds)
    if not 1 <= len(seeds) <= MAX_SEEDS or len(set(seeds)) != len(seeds) or not all(
            isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2**31 for s in seeds):
        raise ConfigError(_("seeds must be 1 to {most} different integers from 0 to 2**31-1, got "
                            "{got}").format(most=MAX_SEEDS, got=repr(seeds)))
    if not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= MAX_STEPS:
        raise ConfigError(_("steps must be an integer from 1 to {most}, got {got}").format(
            most=MAX_STEPS, got=repr(steps)))
    if optimizer not in RECIPES:
        raise ConfigError(_("unknown optimizer {optimizer}; choose one of: {optimizers}").format(
            optimizer=repr(optimizer), optimizers=", ".join(RECIPES)))
    if not isinstance(batch, int) or isinstance(batch, bool) or not 2 <= batch <= 256:
        raise ConfigError(_("batch must be an integer from 2 to 256, got {got}").format(
            got=repr(batch)))
    device = device or default_device()
    if device not in ("cpu", "cuda"):
        raise ConfigError(_("device must be cpu or cuda, got {got}").format(got=repr(device)))
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError(_("device 'cuda' was asked for but no CUDA GPU is available here; use "
                            "cpu"))
    if not isinstance(target, (int, float)) or not 0.0 < target <= 1.0:
        raise ConfigError(_("target accuracy must be in (0, 1], got {got}").format(
            got=repr(target)))
    if not isinstance(points, int) or isinstance(points, bool) or not 1 <= points <= 100:
        raise ConfigError(_("points must be an integer from 1 to 100, got {got}").format(
            got=repr(points)))
    guard_memory(resolved, batch, optimizer, device, len(seeds))
    return RaceRequest(resolved, seeds, steps, optimizer, batch, device, float(target), points)


def guard_memory(configs, batch: int, optimizer: str, device: str, seeds: int = 1) -> None:
    """MemoryRefused (a ConfigError) when the race's runs that train side by side would not fit
    the server's memory budget together (explorer.runtime.memory)."""
    from explorer.runtime.memory import check

    check(race_estimate(configs, batch, optimizer, device, seeds),
          advice=_("race fewer networks, a smaller width, input or batch"))


def side_by_side(runs: int, device: str, cores: int | None = None) -> int:
    """How many of a race's runs train at once: one per core on a CPU (``cores``: those the race
    may use, default the machine's), one on a GPU."""
    return max(1, min(runs, cores or os.cpu_count() or 1)) if device == "cpu" else 1


def race_estimate(configs, batch: int, optimizer: str, device: str, seeds: int = 1):
    """The memory the race needs (an ``explorer.runtime.memory.Estimate``): its largest runs,
    as many as train at once (``side_by_side``; no more runs are alive than that)."""
    from explorer.runtime.memory import Estimate, estimate_training

    parts = []
    for c in configs:
        options = {k: v for k, v in (("repeats", c.repeats), ("scale", c.scale)) if v is not None}
        parts.append(estimate_training(
            c.variant, batch=batch, input_size=c.input_size, device=device, layout=c.layout,
            optimizer=optimizer if optimizer in ("adam", "adamw") else "rmsprop",
            width=c.width, num_classes=10, **options))
    at_once = side_by_side(len(parts) * seeds, device)
    parts = sorted(parts * seeds, key=lambda e: e.total, reverse=True)[:at_once]
    return Estimate(_("a race of {n} network(s) training side by side (batch {batch})").format(
                        n=len(parts), batch=batch),
                    device, sum(e.weights for e in parts), sum(e.activations for e in parts),
                    sum(e.runtime for e in parts))


# -- the on-disk cache of finished runs ------------------------------------------------------

def _run_path(key: dict) -> Path:
    text = json.dumps(key, sort_keys=True)
    return cache_dir() / "lab" / (hashlib.sha256(text.encode()).hexdigest()[:32] + ".json")


def load_run(key: dict) -> dict | None:
    return read_json(_run_path(key))


def save_run(key: dict, run: dict) -> None:
    write_json(_run_path(key), run)


def cached_race(request: RaceRequest) -> dict | None:
    """The race's result if every run of it is in the cache, else None."""
    runs = [load_run(request.run_key(c, s)) for s in request.seeds for c in request.configs]
    if any(r is None for r in runs):
        return None
    return {"runs": runs, "summary": summarize(runs, request.target), "stopped": False}


# -- training --------------------------------------------------------------------------------

def flat_parameters(model: torch.nn.Module) -> tuple[torch.nn.Parameter, torch.Tensor]:
    """Make every trainable parameter of ``model`` a view into one buffer, and its ``.grad`` a
    view into a second one, each in the parameter's own memory layout (channels-last kept).
    Returns ``(master, grad)``: a Parameter over the whole first buffer, for the optimizer and
    gradient clipping, and the second buffer, which is also ``master.grad``.

    ``backward()`` adds each gradient into its view (autograd accumulates into a ``.grad`` that
    exists), so zero ``grad`` before each step: 0 + g is g, the gradients are exactly the
    per-parameter ones. Clipping then takes one norm instead of one per parameter (its sum runs
    in another order: the last bits of the norm differ), and the optimizer's update is the same
    arithmetic, element by element, over one tensor."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params or len({(p.dtype, p.device) for p in params}) != 1:
        raise ValueError("flat_parameters needs parameters of one dtype on one device")
    # each parameter starts on a 64-byte boundary, as a tensor of its own does (kernels may take
    # another path for memory that is not aligned); the gaps stay zero, gradients included
    align = max(1, 64 // params[0].element_size())
    offsets, total = [], 0
    for p in params:
        if 1 + sum((size - 1) * step for size, step in zip(p.shape, p.stride())) != p.numel():
            raise ValueError("flat_parameters needs dense parameters (no gaps, no overlaps)")
        offsets.append(total)
        total += -(-p.numel() // align) * align
    weights = torch.zeros(total, dtype=params[0].dtype, device=params[0].device)
    grad = torch.zeros_like(weights)
    with torch.no_grad():
        for p, offset in zip(params, offsets):
            view = weights.as_strided(p.shape, p.stride(), offset)
            view.copy_(p)
            p.data = view
            p.grad = grad.as_strided(p.shape, p.stride(), offset)
    master = torch.nn.Parameter(weights)
    master.grad = grad
    return master, grad


@contextmanager
def _threads(n: int):
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class _Trainer:
    """One network and seed, trained a chunk of steps at a time."""

    def __init__(self, cfg: LabConfig, seed: int, request: RaceRequest):
        self.cfg, self.seed, self.request = cfg, seed, request
        self.recipe = RECIPES[request.optimizer]
        self.device = torch.device(request.device)
        self.model = build_lab_model(cfg, torch.Generator().manual_seed(seed), self.device).to(
            memory_format=torch.channels_last)
        # one buffer for the weights and one for their gradients: the update is a few passes
        # over one tensor instead of several small ops per parameter (on a CPU, PyTorch's
        # "foreach" kernels still loop over the 449 tensors of Inception-v4 one by one)
        self.master, self.grad = flat_parameters(self.model)
        self.opt = self.recipe.optimizer([self.master])
        self.precision = train_precision(request.device)
        self.train_images, self.train_labels = data.prepared("train", cfg.input_size,
                                                             str(self.device))
        n = len(self.train_labels)
        self.steps_per_epoch = n / request.batch
        epochs = math.ceil(request.steps * request.batch / n)
        order = torch.Generator().manual_seed(seed)  # the same order for every network
        self.order = torch.cat([torch.randperm(n, generator=order) for _ in range(epochs)])
        self.step, self.seconds, self.losses = 0, 0.0, []
        self.curve = []

    def _loss(self, logits, labels):
        """The recipe's loss, with the network's own label smoothing where it sets one; with an
        auxiliary head (training mode: (logits, aux logits)), + AUX_WEIGHT x its loss."""
        eps = self.cfg.label_smoothing
        eps = self.recipe.label_smoothing if eps is None else eps
        if isinstance(logits, tuple):
            main, aux = logits
            return (F.cross_entropy(main, labels, label_smoothing=eps)
                    + AUX_WEIGHT * F.cross_entropy(aux, labels, label_smoothing=eps))
        return F.cross_entropy(logits, labels, label_smoothing=eps)

    def _autocast(self):
        if self.precision == "float32":
            return nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def _batch(self, step: int):
        b = self.request.batch
        idx = self.order[step * b:(step + 1) * b]
        return (data.batch_input(self.train_images[idx], torch.channels_last),
                self.train_labels[idx])

    def start(self) -> None:
        """The step-0 point: the first batch's loss and the validation accuracy at init."""
        x, y = self._batch(0)
        self.model.train()
        with torch.no_grad(), self._autocast():
            # a copy, so that measuring does not move the batch norms' running statistics
            loss = float(self._loss(copy.deepcopy(self.model)(x), y))
        self.curve.append({"step": 0, "train_loss": loss, "val_acc": self.evaluate(),
                           "seconds": 0.0})

    def train(self, until: int, should_stop: Callable[[], bool]) -> bool:
        """Train up to step ``until``; False when stopped. At ``until`` == the race's last step
        the point also measures the training accuracy (``train_acc``)."""
        recipe, losses = self.recipe, []
        self.model.train()
        start = time.perf_counter()
        stopped = False
        while self.step < until:
            if should_stop():
                stopped = True
                break
            epoch = self.step / self.steps_per_epoch
            lr = recipe.lr * recipe.decay ** math.floor(epoch / recipe.decay_epochs)
            for group in self.opt.param_groups:
                group["lr"] = lr
            x, y = self._batch(self.step)
            with self._autocast():
                loss = self._loss(self.model(x), y)
            self.grad.zero_()  # backward() adds into the gradient buffer
            loss.backward()
            if recipe.clip is not None:
                torch.nn.utils.clip_grad_norm_([self.master], recipe.clip)
            self.opt.step()
            losses.append(loss.detach())  # read once per chunk: no sync per step on a GPU
            self.step += 1
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.seconds += time.perf_counter() - start
        self.losses += torch.stack(losses).float().tolist() if losses else []
        if stopped:
            return False
        recent = self.losses[-(self.step - self.curve[-1]["step"]):]
        point = {"step": self.step, "train_loss": sum(recent) / len(recent),
                 "val_acc": self.evaluate()}
        if self.step == self.request.steps:
            point["train_acc"] = self.evaluate("train")
        self.curve.append({**point, "seconds": round(self.seconds, 3)})
        return True

    @torch.inference_mode()
    def evaluate(self, split: str = "val") -> float:
        """Accuracy in eval mode on the validation digits, or on as many training digits
        (``split`` "train": every k-th, as balanced over the classes as the training split
        is sorted; the same for every network), so that the two compare: their gap is what a
        regularizer narrows."""
        self.model.eval()
        images, labels = data.prepared("val", self.cfg.input_size, str(self.device))
        if split == "train":
            k = max(1, len(self.train_labels) // len(labels))
            images, labels = self.train_images[::k][:len(labels)], self.train_labels[::k][:len(labels)]
        correct = 0
        for i in range(0, len(labels), EVAL_BATCH):
            x = data.batch_input(images[i:i + EVAL_BATCH], torch.channels_last)
            with self._autocast():
                correct += int((self.model(x).argmax(1) == labels[i:i + EVAL_BATCH]).sum())
        self.model.train()
        return correct / len(labels)

    def result(self) -> dict:
        return {"variant": self.cfg.variant, "config": self.cfg.to_dict(), "label": self.cfg.label(),
                "seed": self.seed, "optimizer": self.request.optimizer, "steps": self.request.steps,
                "batch": self.request.batch, "device": self.request.device,
                "threads": THREADS if self.request.device == "cpu" else None,
                "precision": self.precision, "curve": list(self.curve)}


def race(request: RaceRequest, *, on_progress: Callable[[dict], None] | None = None,
         should_stop: Callable[[], bool] = lambda: False, cores: int | None = None) -> dict:
    """Train every (network, seed) of ``request`` (cached runs are taken from the cache).

    Runs advance a chunk of ``eval_every`` steps at a time, on as many threads as the CPU has
    cores, or ``cores`` (one intra-op thread each; one thread on a GPU). A thread that finishes a chunk takes
    the first run, in seed-major order, that no other thread holds: a started one before a new
    one, so that no more runs are alive than threads, and a thread whose network is done (the
    faster one of a seed) goes on with the next seed's instead of waiting. Live curves grow side
    by side. ``on_progress`` gets ``{"runs", "done", "total", "seconds_left"}`` after every
    chunk. Returns ``{"runs", "summary", "stopped"}`` (runs in seed-major order); a stopped race
    returns what it has and caches only finished runs.
    """
    if request.device == "cuda":
        # cuDNN's deterministic kernels (its fastest ones may sum in any order); the cache keeps
        # GPU and CPU runs apart, since their float rounding differs anyway
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    order = [(seed, cfg) for seed in request.seeds for cfg in request.configs]
    finished = {k: hit for k in order if (hit := load_run(request.run_key(k[1], k[0])))}
    todo = [k for k in order if k not in finished]
    live: dict[tuple, _Trainer] = {}  # started, not finished
    total = len(order) * request.steps
    done = len(finished) * request.steps
    trained, started = 0, time.perf_counter()
    failed = False

    def runs() -> list[dict]:
        return [finished[k] if k in finished else live[k].result() for k in order
                if k in finished or k in live]

    def answer(stopped: bool) -> dict:
        got = runs()
        return {"runs": got, "summary": summarize(got, request.target), "stopped": stopped}

    def stop() -> bool:
        return failed or should_stop()

    def chunk(key) -> tuple[_Trainer, bool]:
        """Build and start a run (its step-0 point), or train it to its next point."""
        trainer = live.get(key)
        if trainer is None:
            return _started(key[1], key[0], request), True
        every = request.eval_every
        return trainer, trainer.train(min((trainer.step // every + 1) * every, request.steps),
                                      stop)

    if todo and should_stop():  # building and the first evaluation take seconds: ask first
        return answer(True)
    with _threads(THREADS if request.device == "cpu" else torch.get_num_threads()), \
            _pool(side_by_side(len(todo), request.device, cores)) as pool:
        held: dict[Future, tuple] = {}  # -> (run, its step when the chunk began)
        stopped = False
        while True:
            while not stopped and len(held) < pool.workers:
                holding = {k for k, _ in held.values()}
                free = [k for k in todo if k not in finished and k not in holding]
                free = [k for k in free if k in live] or free  # a started run first
                if not free:
                    break
                key = free[0]
                began = live[key].step if key in live else 0
                held[pool.submit(chunk, key)] = key, began
            if not held:
                break
            ready, _ = wait(held, return_when=FIRST_COMPLETED)
            for future in ready:
                key, before = held.pop(future)
                try:
                    trainer, went_on = future.result()
                except BaseException:
                    failed = True  # the other threads stop at their next step; then raise
                    raise
                live[key] = trainer
                stopped = stopped or not went_on
                trained += trainer.step - before
                done += trainer.step - before
                if trainer.step == request.steps and went_on:
                    finished[key] = trainer.result()
                    save_run(request.run_key(key[1], key[0]), finished[key])
                    del live[key]
            if on_progress:
                rate = (time.perf_counter() - started) / trained if trained else None
                on_progress({"runs": runs(), "done": done, "total": total,
                             "seconds_left": None if rate is None else rate * (total - done)})
    return answer(stopped)


def _started(cfg: LabConfig, seed: int, request: RaceRequest) -> _Trainer:
    trainer = _Trainer(cfg, seed, request)
    trainer.start()
    return trainer


class _Inline:
    """An executor of one worker that runs each call at once, in the calling thread."""

    workers = 1

    def submit(self, fn, *args) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args))
        except BaseException as error:
            future.set_exception(error)
        return future


@contextmanager
def _pool(workers: int):
    """The threads that train a race's runs side by side (``side_by_side``), each with one
    intra-op thread (set once, when the thread starts); the calling thread alone where they
    take turns (one core, one run, or a GPU)."""
    if workers < 2:
        yield _Inline()
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="lab-race",
                            initializer=torch.set_num_threads, initargs=(THREADS,)) as pool:
        pool.workers = workers
        yield pool


# -- the summary -----------------------------------------------------------------------------

def _stats(values: list) -> dict:
    got = [v for v in values if v is not None]
    return {"mean": statistics.fmean(got) if got else None,
            "std": statistics.stdev(got) if len(got) > 1 else (0.0 if got else None),
            "per_seed": values}


def summarize(runs: list[dict], target: float = DEFAULT_TARGET) -> list[dict]:
    """Per network: steps and training seconds to reach ``target`` validation accuracy, and the
    final accuracy and loss: mean, spread (sample standard deviation) and each seed's value.
    A seed that never reaches the target counts in ``reached`` and gives None."""
    groups: dict[str, list[dict]] = {}
    for run in runs:
        groups.setdefault(json.dumps(run["config"], sort_keys=True), []).append(run)
    out = []
    for group in groups.values():
        hits = [next((p for p in r["curve"] if p["val_acc"] >= target), None) for r in group]
        out.append({
            "variant": group[0]["variant"], "config": group[0]["config"], "label": group[0]["label"],
            "seeds": [r["seed"] for r in group], "target_acc": target,
            "reached": sum(h is not None for h in hits),
            "steps_to_target": _stats([h and h["step"] for h in hits]),
            "seconds_to_target": _stats([h and h["seconds"] for h in hits]),
            "final_val_acc": _stats([r["curve"][-1]["val_acc"] for r in group]),
            "best_val_acc": _stats([max(p["val_acc"] for p in r["curve"]) for r in group]),
            "final_train_loss": _stats([r["curve"][-1]["train_loss"] for r in group]),
            # train minus validation accuracy at the end (runs made before it was measured: None)
            "final_gap": _stats([r["curve"][-1]["train_acc"] - r["curve"][-1]["val_acc"]
                                 if "train_acc" in r["curve"][-1] else None for r in group]),
            "steps": group[0]["curve"][-1]["step"],
            "seconds": _stats([r["curve"][-1]["seconds"] for r in group]),
            "ms_per_step": _stats([1000 * r["curve"][-1]["seconds"] / r["curve"][-1]["step"]
                                   if r["curve"][-1]["step"] else None for r in group]),
        })
    return out
