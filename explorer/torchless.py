"""The part of ``torch`` that *describes* a network, without torch: for the command line.

A first ``python -m explorer summary VARIANT`` (nothing in the on-disk cache) needs no tensor:
the shapes, parameters, MACs and receptive fields all follow from the modules' arguments
(``explorer.variants.shapes``, ``explorer.analysis.receptive``, ``explorer.analysis.rows``); so do ``graph``,
``compare`` (without ``--latency``) and ``variants``. Importing torch alone takes longer than
all of that together (1.1-1.6 s on the 2-core machine), so these commands install this module
as ``torch`` when torch is not loaded yet (``install``) and run the very same variant, probe,
analysis and graph code on it: modules that hold their arguments and the shapes of
their parameters, like a "meta"-device build, and nothing that computes.

It has exactly the surface that code uses (the classes our blocks are built from, with
PyTorch's attribute names and defaults, ``named_modules`` and friends in PyTorch's order).
``tests/test_torchless.py`` runs the commands both ways, for every variant and several configs,
and requires the same answer. Code that needs more than this surface fails loudly here
(``AttributeError``, ``NotImplementedError``), and the command then runs again with torch
(``rerun_with_torch``). ``INCEPTION_EXPLORER_TORCHLESS=0`` turns it off.
"""

from __future__ import annotations

import os
import sys
import types
from collections import OrderedDict

ENV = "INCEPTION_EXPLORER_TORCHLESS"
TORCHLESS = True  # how a module can tell the stand-in from torch


def install() -> bool:
    """Make ``import torch`` give this stand-in, unless torch is loaded already or the user
    turned it off; True when installed. Only for a process that does nothing else (a command
    that describes networks): code that needs real tensors fails on it."""
    if "torch" in sys.modules or os.environ.get(ENV, "1") == "0":
        return sys.modules.get("torch") is sys.modules[__name__]
    me = sys.modules[__name__]
    sys.modules.update({"torch": me, "torch.nn": nn, "torch.nn.modules": nn.modules,
                        "torch.nn.modules.batchnorm": nn.modules.batchnorm})
    return True


def rerun_with_torch(err: BaseException) -> None:
    """Run this same command again with real torch, in place of this process: a network that
    needs more of torch than this stand-in has is answered anyway (slower), and said so."""
    sys.stdout.flush()  # the process is replaced: what it wrote must be out first, and its
    # message must reach the real stderr, whatever sys.stderr is now
    print(f"inception-explorer: the torch-free answer failed ({type(err).__name__}: {err}); "
          f"answering with torch", file=sys.__stderr__, flush=True)
    os.execve(sys.executable, sys.orig_argv, {**os.environ, ENV: "0"})


class device:  # noqa: N801 -- torch's name
    """``torch.device``: its type; a context manager, like torch's (a no-op here). No GPU is
    ever seen (``cuda.is_available()`` is False): describing needs none."""

    TYPES = ("cpu", "cuda", "meta")

    def __init__(self, spec="cpu"):
        spec = spec.type if isinstance(spec, device) else spec
        if not isinstance(spec, str) or spec.split(":")[0] not in self.TYPES:
            raise RuntimeError(f"Expected one of {', '.join(self.TYPES)} device type at start of "
                               f"device string: {spec}")
        self.type = spec.split(":")[0]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __repr__(self):
        return f"device(type='{self.type}')"


class Tensor:
    """The shape of a parameter or buffer (what a "meta" tensor knows)."""

    def __init__(self, *shape: int):
        self.shape = tuple(shape)

    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    def dim(self) -> int:
        return len(self.shape)

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[dim]


class _Cuda:
    @staticmethod
    def is_available() -> bool:
        return False


cuda = _Cuda()


class no_grad:  # noqa: N801 -- torch's name
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _describes_only(self, *args):
    """Every layer class has its own ``forward``, as in torch (the shape walk checks which class
    defines the forward a module runs); none computes here."""
    raise NotImplementedError(f"{type(self).__name__}: torchless modules do not compute")


class Module:
    """``nn.Module``'s bookkeeping: children, parameters and buffers in registration order."""

    def __init__(self, *args, **kwargs):
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "training", True)

    forward = _describes_only

    def __setattr__(self, name, value):
        if isinstance(value, Module):
            self.__dict__.pop(name, None)
            self._modules[name] = value
        elif name in self.__dict__.get("_modules", {}):
            self._modules[name] = value  # None: an optional layer switched off
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        for store in ("_modules", "_parameters", "_buffers"):
            found = self.__dict__.get(store, {})
            if name in found:
                return found[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def add_module(self, name, module):
        self._modules[name] = module

    def _param(self, name, *shape):
        self._parameters[name] = Tensor(*shape)

    def _buffer(self, name, *shape):
        self._buffers[name] = Tensor(*shape)

    def named_children(self):
        return ((n, m) for n, m in self._modules.items() if m is not None)

    def children(self):
        return (m for _, m in self.named_children())

    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        memo = set() if memo is None else memo
        if remove_duplicate and id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, child in self.named_children():
            yield from child.named_modules(memo, f"{prefix}.{name}" if prefix else name,
                                           remove_duplicate)

    def modules(self):
        return (m for _, m in self.named_modules())

    def _named(self, store, prefix, recurse):
        seen = set()
        for path, m in (self.named_modules(prefix=prefix) if recurse else [(prefix, self)]):
            for name, t in getattr(m, store).items():
                if t is not None and id(t) not in seen:
                    seen.add(id(t))
                    yield (f"{path}.{name}" if path else name), t

    def named_parameters(self, prefix="", recurse=True):
        return self._named("_parameters", prefix, recurse)

    def parameters(self, recurse=True):
        return (t for _, t in self.named_parameters(recurse=recurse))

    def named_buffers(self, prefix="", recurse=True):
        return self._named("_buffers", prefix, recurse)

    def buffers(self, recurse=True):
        return (t for _, t in self.named_buffers(recurse=recurse))

    def train(self, mode=True):
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self):
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        return self

    def to(self, *args, **kwargs):
        return self

    def extra_repr(self):
        return ""

    def __repr__(self):
        # torch's own layout: the analysis compares blocks by their repr (graph.py: repeated
        # blocks are drawn once), so equal reprs must mean what they mean in torch
        extra = self.extra_repr().split("\n") if self.extra_repr() else []
        children = [f"({name}): " + repr(m).replace("\n", "\n  ")
                    for name, m in self._modules.items()]
        lines = extra + children
        if len(extra) == 1 and not children:
            return f"{type(self).__name__}({extra[0]})"
        body = "\n  " + "\n  ".join(lines) + "\n" if lines else ""
        return f"{type(self).__name__}({body})"


class Sequential(Module):
    def __init__(self, *args):
        super().__init__()
        items = args[0].items() if len(args) == 1 and isinstance(args[0], OrderedDict) \
            else ((str(i), m) for i, m in enumerate(args))
        for name, m in items:
            self.add_module(name, m)

    forward = _describes_only

    def __iter__(self):
        return iter(self._modules.values())

    def __len__(self):
        return len(self._modules)

    def __getitem__(self, i):
        return list(self._modules.values())[i]


class ModuleDict(Module):
    def __init__(self, modules=None):
        super().__init__()
        for name, m in (modules or {}).items():
            self.add_module(name, m)

    def __getitem__(self, key):
        return self._modules[key]

    def __contains__(self, key):
        return key in self._modules

    def __iter__(self):
        return iter(self._modules)

    def __len__(self):
        return len(self._modules)

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()


class Conv2d(Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", device=None, dtype=None):
        super().__init__()
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size, self.stride = _pair(kernel_size), _pair(stride)
        self.padding = padding if isinstance(padding, str) else _pair(padding)
        self.dilation, self.padding_mode = _pair(dilation), padding_mode
        self._param("weight", out_channels, in_channels // groups, *self.kernel_size)
        if bias:
            self._param("bias", out_channels)
        else:
            self._parameters["bias"] = None

    forward = _describes_only

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class Linear(Module):
    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self._param("weight", out_features, in_features)
        if bias:
            self._param("bias", out_features)
        else:
            self._parameters["bias"] = None

    forward = _describes_only

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class _BatchNorm(Module):
    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, device=None, dtype=None):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self._param("weight", num_features)
            self._param("bias", num_features)
        if track_running_stats:
            self._buffer("running_mean", num_features)
            self._buffer("running_var", num_features)
            self._buffer("num_batches_tracked")

    forward = _describes_only

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self._parameters.get('bias') is not None}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    pass


class BatchNorm2d(_BatchNorm):
    pass


class MaxPool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
                 ceil_mode=False):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride if stride is not None else kernel_size
        self.padding, self.dilation, self.ceil_mode = padding, dilation, ceil_mode
        self.return_indices = return_indices

    forward = _describes_only

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride if stride is not None else kernel_size
        self.padding, self.ceil_mode = padding, ceil_mode
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    forward = _describes_only

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    forward = _describes_only

    def extra_repr(self):
        return f"output_size={self.output_size}"


class AdaptiveMaxPool2d(AdaptiveAvgPool2d):
    forward = _describes_only


class ReLU(Module):
    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    forward = _describes_only

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class Dropout(Module):
    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        self.p, self.inplace = p, inplace

    forward = _describes_only

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


class Flatten(Module):
    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    forward = _describes_only

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Identity(Module):
    forward = _describes_only


class LocalResponseNorm(Module):
    def __init__(self, size, alpha=1e-4, beta=0.75, k=1.0):
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    forward = _describes_only

    def extra_repr(self):
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


# the namespaces ``torch.nn``, ``torch.nn.modules.batchnorm`` as the variants' code reads them
nn = types.ModuleType("torch.nn")
nn.__dict__.update({c.__name__: c for c in (
    Module, Sequential, ModuleDict, Conv2d, Linear, BatchNorm1d, BatchNorm2d, MaxPool2d,
    AvgPool2d, AdaptiveAvgPool2d, AdaptiveMaxPool2d, ReLU, Dropout, Flatten, Identity,
    LocalResponseNorm)})
nn.modules = types.ModuleType("torch.nn.modules")
nn.modules.batchnorm = types.ModuleType("torch.nn.modules.batchnorm")
nn.modules.batchnorm._BatchNorm = _BatchNorm
