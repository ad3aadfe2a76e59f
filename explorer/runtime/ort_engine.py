"""ONNX Runtime as the float32 engine of an inference copy (explorer.for_inference), when installed.

On a CPU, ONNX Runtime ran these networks in float32 1.3-1.9x faster than PyTorch's eager
oneDNN path here (Inception-ResNet-v2, batch 1, one thread: 1.73 s vs 3.27 s under load; the
issue's quiet figures 73 vs 124 ms): it fuses conv + bias + ReLU and keeps activations in its
blocked NCHWc layout between layers. ``torch.jit.freeze`` + ``optimize_for_inference`` gave
nothing measurable, and Inductor's compile takes minutes on two cores.

The slow part is the export (``torch.onnx.export(dynamo=True)``: ~12 s for GoogLeNet, ~2 min for
Inception-ResNet-v2 on this loaded 2-core machine), so it is done once per (weights, input size,
library versions) and kept on disk under the explorer cache dir (``onnx/``); a later process
starts a session from that file in about a second. The file is keyed by a hash of the folded
weights, so a retrained or other checkpoint gets its own.

``OrtEngine`` prepares one session per input height x width (the batch size is dynamic), either
at once (``prepare``) or in a background thread (``start``) while the caller keeps answering with
PyTorch: a first prediction never waits for an export. A session is used only after its logits
matched PyTorch's on a probe input within float32's tolerance.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import warnings
from pathlib import Path

import torch
from torch.utils._pytree import tree_flatten, tree_unflatten

from explorer.core.cache import cache_dir
from explorer.core.i18n import _

ENGINES = ("auto", "torch", "onnxruntime")
ENGINE_ENV = "INCEPTION_EXPLORER_ENGINE"  # the default engine ("auto" when unset)
MATCH_ATOL = 1e-4  # the float32 logits contract (tests/tolerances.py), scaled by their size


def available() -> str | None:
    """None when ONNX Runtime and the exporter's packages are importable, else what is missing."""
    missing = []
    for name in ("onnxruntime", "onnx", "onnxscript"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        return _("{missing} not installed ({command})").format(
            missing=", ".join(missing), command="pip install 'inception-explorer[onnx]'")
    return None


def default_engine() -> str:
    name = os.environ.get(ENGINE_ENV, "auto").strip() or "auto"
    return name if name in ENGINES else "auto"


def weights_key(model: torch.nn.Module, height: int, width: int) -> str:
    """A hash of what the exported file depends on: the module classes, the weights, the input
    size and the versions of torch and ONNX Runtime."""
    import onnxruntime

    digest = hashlib.sha256(f"{torch.__version__} {onnxruntime.__version__} {height}x{width} "
                            f"{type(model).__qualname__} {getattr(model, 'config', '')}".encode())
    for name, module in model.named_modules():
        digest.update(f"{name}:{type(module).__qualname__};".encode())
    for name, tensor in model.state_dict().items():
        t = tensor.detach().cpu().contiguous().flatten()  # flat: 1x1 kernels keep odd strides
        digest.update(f"{name}:{t.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()[:32]


def onnx_path(key: str) -> Path:
    return cache_dir() / "onnx" / f"{key}.onnx"


def export(model: torch.nn.Module, height: int, width: int, path: Path) -> None:
    """Export ``model`` (float32, eval) with a dynamic batch size to ``path``, atomically."""
    import logging

    path.parent.mkdir(parents=True, exist_ok=True)
    example = torch.randn(2, 3, height, width)  # batch 2: torch.export specialises a batch of 1
    batch = torch.export.Dim("batch", min=1, max=1024)
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "onnxscript")]
    levels = [log.level for log in loggers]
    tmp = None
    try:
        for log in loggers:
            log.setLevel(logging.ERROR)
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(model, (example,), dynamic_shapes=({0: batch},),
                                        dynamo=True, verbose=False)
        # written under another name, then renamed: a reader never sees half a file (a process
        # that exits during the export, such as a one-shot command, leaves at most a .partial)
        fd, tmp = tempfile.mkstemp(suffix=".onnx.partial", dir=path.parent)
        os.close(fd)
        program.save(tmp)
        os.replace(tmp, path)
    finally:
        for log, level in zip(loggers, levels):
            log.setLevel(level)
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)


def export_in_subprocess(model: torch.nn.Module, height: int, width: int, path: Path) -> None:
    """``export`` in a process of its own. torch.export traces with fake tensors and patched
    global state: run in a thread of a process that keeps computing (the app's sessions, the
    "auto" engine's own PyTorch answers), it raised inside FakeTensorMode and moved other
    computations' results (timm's logits off by 3e-3 in the same process). The model travels as a
    pickled module through a temporary file."""
    import subprocess
    import sys

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, src = tempfile.mkstemp(suffix=".pt", dir=path.parent)
    os.close(fd)
    try:
        torch.save(model, src)
        code = ("import sys, torch; from pathlib import Path; "
                "from explorer.runtime.ort_engine import export; "
                "export(torch.load(sys.argv[1], weights_only=False).eval(), int(sys.argv[2]), "
                "int(sys.argv[3]), Path(sys.argv[4]))")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        done = subprocess.run([sys.executable, "-c", code, src, str(height), str(width), str(path)],
                              capture_output=True, text=True, env=env)
        if done.returncode != 0:
            tail = (done.stderr or "").strip().splitlines()[-1:] or ["no message"]
            raise RuntimeError(f"the ONNX export failed: {tail[0]}")
    finally:
        os.remove(src)


def cpu_session(model: bytes | str, threads: int):
    """An ONNX Runtime CPU session on a model (its bytes, or a file's path): all graph
    optimisations (ORT's default level), ``threads`` intra-op threads that sleep when idle."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, threads)
    options.log_severity_level = 3  # warnings about unused initialisers are not the user's business
    # ORT's idle threads spin after each run by default: on a shared CPU they would slow down
    # whatever runs next (PyTorch, timed in turns with it, took 10x longer here; GoogLeNet in
    # bfloat16 right after an ORT run 35 ms instead of 17-19 for the next ~0.1 s). ORT alone is
    # as fast without it (GoogLeNet batch 1, 2 threads: 17.0 vs 16.8 ms)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


class OrtSession:
    """One ONNX Runtime session for one input height x width, returning what the torch model
    returns (its output structure is taken from a probe run)."""

    def __init__(self, path: Path, threads: int, out_spec):
        self.session = cpu_session(str(path), threads)
        self.input = self.session.get_inputs()[0].name
        self.out_spec = out_spec

    def __call__(self, x: torch.Tensor):
        outs = self.session.run(None, {self.input: x.detach().float().contiguous().numpy()})
        return tree_unflatten([torch.from_numpy(o) for o in outs], self.out_spec)


class OrtEngine:
    """Sessions for a float32 CPU model, prepared at once or in the background."""

    def __init__(self, model: torch.nn.Module, threads: int | None = None):
        self.model = model  # float32, eval, on the CPU (the inference copy's torch model)
        self.threads = threads or torch.get_num_threads()
        self.sessions: dict[tuple[int, int], OrtSession] = {}
        self.failed: dict[tuple[int, int], str] = {}
        self._busy: set[tuple[int, int]] = set()
        self._lock = threading.Lock()
        self.last_prepare: dict = {}  # {"size", "exported", "seconds"} of the last preparation

    def session(self, x: torch.Tensor) -> OrtSession | None:
        return self.sessions.get(tuple(x.shape[-2:]))

    def start(self, height: int, width: int) -> None:
        """Prepare the session for this size in a background thread (once)."""
        size = (height, width)
        with self._lock:
            if size in self.sessions or size in self.failed or size in self._busy:
                return
            self._busy.add(size)
        threading.Thread(target=self._prepare_quietly, args=size, daemon=True,
                         name=f"onnx-export-{height}x{width}").start()

    def _prepare_quietly(self, height: int, width: int) -> None:
        try:
            self.prepare(height, width, in_subprocess=True)
        except Exception as err:  # noqa: BLE001 -- the torch path keeps answering; say why
            self.failed[(height, width)] = f"{type(err).__name__}: {err}"
            warnings.warn(f"ONNX Runtime engine not used for {height}x{width} inputs: {err}",
                          stacklevel=2)

    def prepare(self, height: int, width: int, *, in_subprocess: bool = False) -> OrtSession:
        """The session for this size: from the disk cache, else exported now (slow, once; in a
        process of its own when ``in_subprocess``, as the background preparation does).
        RuntimeError when its logits do not match PyTorch's."""
        import time

        size = (height, width)
        if size in self.sessions:
            return self.sessions[size]
        started = time.perf_counter()
        try:
            path = onnx_path(weights_key(self.model, height, width))
            exported = not path.exists()
            if exported:
                (export_in_subprocess if in_subprocess else export)(self.model, height, width, path)
            probe = torch.randn(1, 3, height, width, generator=torch.Generator().manual_seed(0))
            with torch.inference_mode():
                expected = self.model(probe.contiguous(memory_format=torch.channels_last))
            flat, spec = tree_flatten(expected)
            session = OrtSession(path, self.threads, spec)
            got, _ = tree_flatten(session(probe))
            for want, have in zip(flat, got):
                # float32's contract for the same weights (tests/tolerances.py): 1e-4 where
                # logits are of order one, 1e-4 times their size where larger (timm's v4 gives
                # logits ~45, and any reordering of its sums moves them by ~1e-3)
                diff = float((have - want).abs().max())
                allowed = MATCH_ATOL * max(1.0, float(want.abs().max()))
                if not diff <= allowed:
                    raise RuntimeError(f"ONNX Runtime's outputs differ from PyTorch's by {diff:.2e}"
                                       f" (more than {allowed:.1e}; file {path})")
            self.sessions[size] = session
            self.last_prepare = {"size": size, "exported": exported,
                                 "seconds": round(time.perf_counter() - started, 3)}
            return session
        finally:
            self._busy.discard(size)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for background preparations (tests, benchmarks); True when none is running."""
        import time

        end = None if timeout is None else time.monotonic() + timeout
        while self._busy:
            if end is not None and time.monotonic() > end:
                return False
            time.sleep(0.05)
        return True
