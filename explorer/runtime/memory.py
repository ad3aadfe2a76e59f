"""How much memory a real build would take, and whether this machine can give it.

Estimates come from the network itself, never from a real build: a copy of the model on the
"meta" device (no memory) is run while every tensor the forward (and, for training, the
backward) pass creates is followed until Python frees it. The largest total alive at once is the
peak that real kernels would hold, tensor for tensor. On top of that:

- weights: every parameter and buffer at the dtype used;
- runtime: what the CPU kernels need besides the tensors (oneDNN scratch space, their code
  pages, the allocator's slack); calibrated against measured peak RSS by
  ``benchmarks/memory.py`` (docs/benchmarks.md gives its table), not guessed.

A budget says what the server's operator allows: ``INCEPTION_EXPLORER_MAX_MEMORY`` (and
``INCEPTION_EXPLORER_MAX_GPU_MEMORY``) as "4GiB", "500MB", a byte count or "40%" of the machine;
by default half of the memory the machine (or its cgroup) has. What the model caches already hold
and what running jobs have reserved is subtracted, and never more than the kernel reports free
now is offered. ``check`` refuses an estimate over it *before* anything is allocated.
"""

from __future__ import annotations

import os
import re
import weakref
from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.utils._python_dispatch
import torch.utils._pytree
from torch import nn

from explorer.core.i18n import N_, _
from explorer.core.keys import freeze, thaw
from explorer.variants import ConfigError

MEMORY_ENV = "INCEPTION_EXPLORER_MAX_MEMORY"
GPU_MEMORY_ENV = "INCEPTION_EXPLORER_MAX_GPU_MEMORY"
DEFAULT_SHARE = 0.5      # of the machine's memory (or its cgroup limit) when no budget is set
FREE_MARGIN = 0.9        # never plan to use more than this share of what the kernel says is free
# Calibration (benchmarks/memory.py, CPU float32, 2 threads): the measured peak RSS exceeds
# weights + simulated tensors by 25-56 MiB for inference (kernel code pages, oneDNN scratch and
# weight reorders, the allocator's slack); a training step's backward kernels hold about 10 %
# more than the simulated tensors.
RUNTIME_BYTES = 32 * 2**20
RUNTIME_SHARE = 0.05     # of weights + activations
TRAIN_ACTIVATION_FACTOR = 1.1
# On a GPU (an H200, cudaMalloc's peak) a training step's backward convolutions also take
# cuDNN workspaces: small races measured 17-19 MiB above the CPU-calibrated estimate.
CUDA_TRAIN_WORKSPACE = 24 * 2**20
# copies of the weights an optimizer keeps (RMSprop: squares, and momentum when it has one)
OPTIMIZER_STATES = {"sgd": 0, "sgd_momentum": 1, "rmsprop": 2, "adam": 2, "adamw": 2}


class MemoryRefused(ConfigError):
    """A request whose estimate is above what the budget leaves: nothing was allocated."""

    def __init__(self, estimate: Estimate, budget: Budget, advice: str = ""):
        self.estimate, self.budget, self.advice = estimate, budget, advice
        advice = advice or _("use a smaller width, input size, batch or fewer blocks")
        super().__init__(  # in the page's language (English outside a page)
            _("{what} needs about {size} ({parts}), but {budget}: {advice}").format(
                what=estimate.what, size=fmt_bytes(estimate.total), parts=estimate.parts(),
                budget=budget.describe(), advice=advice))

    def __reduce__(self):  # from a worker process, the same refusal with the same words
        return (type(self), (self.estimate, self.budget, self.advice))


# -- sizes ----------------------------------------------------------------------------------------

_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9,
          "gb": 10**9, "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30,
          "tib": 2**40}


def parse_bytes(text, *, total: int | None = None) -> int:
    """ "4GiB", "500MB", "1.5 GB", "123456" -> bytes; "40%" -> that share of ``total``."""
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    else:
        raw = str(text).strip()
        match = re.fullmatch(r"(\d+(?:\.\d*)?|\.\d+)\s*(%|[a-zA-Z]*)", raw)
        unit = match.group(2).lower() if match else None
        if not match or (unit != "%" and unit not in _UNITS):
            raise ConfigError(_("a memory size looks like 4GiB, 500MB, 2000000000 or 40%, got "
                                "{got}").format(got=repr(raw)))
        number = float(match.group(1))
        if unit == "%":
            if total is None:
                raise ConfigError(_("{got}: a percentage needs the machine's total").format(
                    got=repr(raw)))
            if not 0 < number <= 100:
                raise ConfigError(_("a share of the machine is between 0 and 100 %, got {got}")
                                  .format(got=repr(raw)))
            value = int(total * number / 100)
        else:
            value = int(number * _UNITS[unit])
    if value <= 0:
        raise ConfigError(_("a memory budget must be positive, got {got}").format(
            got=repr(text)))
    return value


def fmt_bytes(n: float) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


# -- the machine ----------------------------------------------------------------------------------

def _read_int(path: str) -> int | None:
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # "max" (cgroup v2) = no limit


def _cgroup_dirs() -> list[tuple[str, str]]:
    """(version, folder) of this process's memory cgroup, v2 first."""
    out = []
    try:
        with open("/proc/self/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return out
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            out.append(("v2", f"/sys/fs/cgroup{path}"))
            out.append(("v2", "/sys/fs/cgroup"))
        elif "memory" in controllers.split(","):
            out.append(("v1", f"/sys/fs/cgroup/memory{path}"))
            out.append(("v1", "/sys/fs/cgroup/memory"))
    return out


@dataclass(frozen=True)
class Machine:
    total: int            # MemTotal, or the cgroup limit when lower
    free: int             # MemAvailable, or what the cgroup has left when lower
    source: str


def machine_memory() -> Machine:
    """What the kernel says now: /proc/meminfo and this process's cgroup (v1 or v2) limit."""
    info = {}
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                key, _colon, rest = line.partition(":")
                info[key] = int(rest.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    total = info.get("MemTotal") or (os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    free = info.get("MemAvailable", total)
    source = "MemTotal"  # the kernel's own words (as are the limits below)
    for version, folder in _cgroup_dirs():
        names = ("memory.max", "memory.current") if version == "v2" else (
            "memory.limit_in_bytes", "memory.usage_in_bytes")
        limit = _read_int(f"{folder}/{names[0]}")
        if limit is None:
            continue
        if limit < total:
            used = _read_int(f"{folder}/{names[1]}") or 0
            total, free, source = limit, min(free, max(0, limit - used)), f"cgroup {version} limit"
        break
    address_space = _address_space_left()
    if address_space is not None and address_space < free:
        free, source = address_space, _("{source}; address-space limit (ulimit -v)").format(
            source=source)
    return Machine(total, free, source)


def _address_space_left() -> int | None:
    """What RLIMIT_AS (``ulimit -v``) still allows this process to map, or None."""
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        with open("/proc/self/status") as f:
            size = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
    except (OSError, StopIteration, ValueError):
        return None
    return max(0, soft - size)


# -- what is held ---------------------------------------------------------------------------------

_held: weakref.WeakSet = weakref.WeakSet()


def model_bytes(model: nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))


def track(model: nn.Module) -> nn.Module:
    """Count ``model`` as held (by a cache) for as long as it is alive."""
    _held.add(model)
    return model


def held_bytes(device: str = "cpu") -> int:
    """The weights of the tracked models that are still alive, on ``device``'s type, and of
    those this server's worker processes keep loaded (``explorer.runtime.workers.held``)."""
    from explorer.runtime import workers

    kind = torch.device(device).type
    total = workers.held(kind)
    for model in list(_held):
        first = next(model.parameters(), None)
        if first is not None and first.device.type == kind:
            total += model_bytes(model)
    return total


# -- estimates ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Estimate:
    what: str          # "a forward pass of inception_v3 (299 px, batch 1)"
    device: str
    weights: int       # parameters and buffers (and, for training, grads and optimizer state)
    activations: int   # the peak of the tensors a pass holds at once
    runtime: int       # kernels' scratch space, calibrated

    @property
    def total(self) -> int:
        return self.weights + self.activations + self.runtime

    def parts(self) -> str:
        # in the page's language (English outside a page: the CLI, logs)
        return _("weights {weights} + activations {activations} + runtime {runtime}").format(
            weights=fmt_bytes(self.weights), activations=fmt_bytes(self.activations),
            runtime=fmt_bytes(self.runtime))

    def needs(self) -> str:
        return _("needs about {size}").format(size=fmt_bytes(self.total))


class _Live(torch.utils._python_dispatch.TorchDispatchMode):
    """Follows every tensor an op creates until Python frees it; keeps the peak of the total.
    Views share their base's storage and are not counted again."""

    def __init__(self):
        super().__init__()
        self.live = self.peak = 0
        self._refs: dict[int, int] = {}   # storage -> tensors alive on it

    def _free(self, key: int, nbytes: int) -> None:
        self._refs[key] -= 1
        if not self._refs[key]:
            del self._refs[key]
            self.live -= nbytes

    def track(self, tensor: torch.Tensor, new: bool = True) -> None:
        storage = tensor.untyped_storage()
        key, nbytes = storage._cdata, storage.nbytes()
        if key in self._refs:
            self._refs[key] += 1
        elif new:
            self._refs[key] = 1
            self.live += nbytes
            self.peak = max(self.peak, self.live)
        else:
            return  # a view of a parameter or of the input: no new memory
        weakref.finalize(tensor, self._free, key, nbytes)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        new = all(r.alias_info is None for r in func._schema.returns)
        for t in torch.utils._pytree.tree_leaves(out):
            if isinstance(t, torch.Tensor):
                self.track(t, new)
        return out


# what an estimate is of, said with _() when it is made
FORWARD = N_("a forward pass of {variant} ({size} px, batch {batch})")
TRAINING = N_("a training step of {variant} ({size} px, batch {batch})")


def _describe(variant, size, batch, what):
    return _(what).format(variant=getattr(variant, "variant", variant), size=size, batch=batch)


def estimate_inference(variant: str, *, batch: int = 1, input_size: int | None = None,
                       device: str = "cpu", dtype: torch.dtype = torch.float32,
                       **config) -> Estimate:
    """Peak memory of building ``variant`` with ``config`` and running one forward pass of
    ``batch`` images without autograd."""
    weights, act, size = _simulate(variant, batch, input_size, dtype, False, freeze(config))
    runtime = RUNTIME_BYTES + int(RUNTIME_SHARE * (weights + act))
    return Estimate(_describe(variant, size, batch, FORWARD), str(device), weights, act, runtime)


def with_peak_memory(rows: list[dict], device: str = "cpu") -> list[dict]:
    """Compare rows (``explorer.analysis.compare.compare_rows``), each with
    ``peak_memory_bytes``: the estimated peak of building it and running one forward pass of
    one float32 image (``estimate_inference``)."""
    return [{**r, "peak_memory_bytes": estimate_inference(
        r["variant"], input_size=r["input_size"], device=device, **r["build"]).total}
        for r in rows]


def estimate_training(variant: str, *, batch: int, input_size: int | None = None,
                      optimizer: str = "sgd_momentum", device: str = "cpu",
                      dtype: torch.dtype = torch.float32, **config) -> Estimate:
    """Peak memory of one training step (forward, backward, optimizer step) on ``batch``
    images: weights, their gradients and the optimizer's state, the activations kept for the
    backward pass and the backward's own temporaries."""
    if optimizer not in OPTIMIZER_STATES:
        raise ConfigError(_("optimizer must be one of {optimizers}, got {got}").format(
            optimizers=", ".join(OPTIMIZER_STATES), got=repr(optimizer)))
    params, act, size = _simulate(variant, batch, input_size, dtype, True, freeze(config))
    # the simulated peak already counts the gradients (they are born in the backward pass)
    act = max(0, act - params)
    weights = params * (2 + OPTIMIZER_STATES[optimizer])
    runtime = RUNTIME_BYTES + int((TRAIN_ACTIVATION_FACTOR - 1) * act)
    if str(device).startswith("cuda"):
        runtime += CUDA_TRAIN_WORKSPACE
    return Estimate(_describe(variant, size, batch, TRAINING), str(device), weights, act,
                    runtime)


@lru_cache(maxsize=256)
def _simulate(variant: str, batch: int, input_size, dtype, training: bool,
              frozen: tuple) -> tuple[int, int, int]:
    """(bytes of parameters and buffers, peak bytes of tensors a pass holds, input size)."""
    from explorer.runtime.build import build_at, native_size

    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise ConfigError(_("batch must be a positive integer, got {got}").format(got=repr(batch)))
    config = thaw(frozen)
    # build validates the input size against the layout's minimum
    model = build_at(variant, device="meta", input_size=input_size, **config).to(dtype)
    size = native_size(variant, input_size)
    weights = model_bytes(model)
    x = torch.empty(batch, 3, size, size, device="meta", dtype=dtype)
    live = _Live()
    if training:
        model.train()
        target = torch.zeros(batch, dtype=torch.long, device="meta")
        with live:
            live.track(x)
            out = model(x)
            logits = out[0] if isinstance(out, tuple) else out
            del out
            loss = nn.functional.cross_entropy(logits, target)
            del logits
            loss.backward()
            del loss
    else:
        with torch.no_grad(), live:
            live.track(x)
            model(x)
    return weights, live.peak, size


# -- the budget -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Budget:
    device: str
    limit: int          # what the operator allows in all
    source: str         # where the limit comes from, in words
    held: int = 0       # weights the model caches hold now
    reserved: int = 0   # estimates of the heavy jobs running now
    free: int = 0       # what the kernel (or the GPU) reports free now, with a margin

    @property
    def available(self) -> int:
        return max(0, min(self.limit - self.held - self.reserved, self.free))

    def describe(self) -> str:
        """What the budget allows and why, in the run's language."""
        text = _("this server allows {limit} ({source})").format(limit=fmt_bytes(self.limit),
                                                                 source=self.source)
        used = [_(w).format(size=fmt_bytes(b))
                for b, w in ((self.held, N_("{size} held by cached models")),
                             (self.reserved, N_("{size} reserved by running jobs"))) if b]
        if used:
            text += _(", of which {used}").format(used=_(" and ").join(used))
        if self.free < self.limit - self.held - self.reserved:
            text += _(", and only {free} is free on the machine now").format(
                free=fmt_bytes(self.free))
        return text


def budget(device: str = "cpu", *, max_memory=None, reserved: int = 0) -> Budget:
    """The budget for work on ``device``: ``max_memory`` (a size, e.g. from ``--max-memory``),
    else the environment variable, else DEFAULT_SHARE of the machine."""
    kind = torch.device(device).type
    if kind == "cuda":
        free, total = torch.cuda.mem_get_info()
        # what torch's caching allocator keeps but does not use is free for us too
        free += torch.cuda.memory_reserved() - torch.cuda.memory_allocated()
        env, what = GPU_MEMORY_ENV, _("the GPU's memory")
    else:
        machine = machine_memory()
        free, total = machine.free, machine.total
        env, what = MEMORY_ENV, _("the machine's {source}").format(source=machine.source)
    setting = max_memory if max_memory is not None else os.environ.get(env)
    if setting not in (None, ""):
        limit = parse_bytes(setting, total=total)
        source = ("--max-memory" if max_memory is not None else env) + f"={setting}"
    else:
        limit = int(total * DEFAULT_SHARE)
        source = _("{share} of {total}, {what}").format(share=f"{DEFAULT_SHARE:.0%}",
                                                        total=fmt_bytes(total), what=what)
    return Budget(kind, limit, source, held_bytes(kind), reserved, int(free * FREE_MARGIN))


def check(estimate: Estimate, *, max_memory=None, reserved: int = 0,
          advice: str = "") -> Budget:
    """The budget, when ``estimate`` fits in what it leaves; else MemoryRefused."""
    allowed = budget(estimate.device, max_memory=max_memory, reserved=reserved)
    if estimate.total > allowed.available:
        raise MemoryRefused(estimate, allowed, advice)
    return allowed
