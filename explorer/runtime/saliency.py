"""What the network sees: the feature maps after each block, and Grad-CAM.

Both run the network's blocks one by one -- ``for stage in model.stage_names: for block in
stage: x = block(x)``, which is what ``InceptionNet.forward_features`` does in eval mode -- so
that the output of any block can be looked at without touching the model. Models are shared
between sessions (the app caches them), so nothing here registers a hook, switches
train/eval mode, moves the model, or changes a parameter's ``requires_grad``: Grad-CAM takes
its gradient with ``torch.autograd.grad`` with respect to a detached copy of the block's
output, which works even when every parameter is frozen.

- ``feature_maps``: per block, its output shape and the ``channels`` channels with the highest
  mean activation, each min-max normalised to 0..1;
- ``grad_cam``: Grad-CAM (Selvaraju et al., 2017, arXiv 1610.02391) at one block's output (by
  default the last block before the classifier head): channel weights = the class logit's
  gradient averaged over the grid, map = ReLU of the weighted sum of the channels;
- ``overlay``, ``colorize`` and ``channel_grid``: images of the above, with a small built-in
  perceptual colormap (no matplotlib).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

__all__ = ["BlockMaps", "CAM", "COLORMAPS", "block_names", "channel_grid", "colorize",
           "feature_maps", "grad_cam", "overlay"]


@dataclass
class BlockMaps:
    name: str                      # "stage.block", e.g. "inception_a.mixed_5b"
    shape: tuple[int, int, int]    # the block's output: C, H, W
    top_channels: list[int]        # the k channels with the highest mean activation, highest first
    maps: torch.Tensor             # (k, H, W) float32 CPU, each min-max normalised to 0..1


@dataclass
class CAM:
    class_index: int
    block: str                     # the block whose output was used
    heatmap: torch.Tensor          # (S, S) float32 CPU in 0..1, bilinear upsampling of ``coarse``
    coarse: torch.Tensor           # (h, w) float32 CPU in 0..1, at the block's own resolution


# --------------------------------------------------------------------------- running blocks

def block_names(model: nn.Module) -> list[str]:
    """The model's blocks as "stage.block", in the order they run (the analysis' block rows)."""
    _check_model(model)
    return [name for name, _ in _blocks(model)]


def _blocks(model: nn.Module):
    for stage_name in model.stage_names:
        for block_name, block in getattr(model, stage_name).named_children():
            yield f"{stage_name}.{block_name}", block


def _check_model(model) -> None:
    if not isinstance(model, nn.Module) or not hasattr(model, "stage_names") \
            or not hasattr(model, "head"):
        raise TypeError("expected an Inception network built by explorer (an InceptionNet with "
                        f"stage_names and a head), got {type(model).__name__}")
    training = [name for name, m in model.named_modules() if m.training]
    if training:
        where = ("the model is in training mode" if model.training else
                 f"part of the model is in training mode ({', '.join(training[:3])}"
                 f"{', ...' if len(training) > 3 else ''})")
        raise ValueError(
            f"{where}: batch norm would use the image's own statistics, dropout would be active "
            "and the auxiliary heads would change the outputs. Call model.eval() first (this "
            "module never switches the mode itself: the model may be shared)")


def _check_blocks(model, wanted) -> list[str]:
    names = [name for name, _ in _blocks(model)]
    unknown = [b for b in wanted if b not in names]
    if unknown:
        shown = ", ".join(names[:6] + ["..."] + names[-3:]) if len(names) > 10 else ", ".join(names)
        raise ValueError(f"unknown block(s) {', '.join(map(repr, unknown))}; blocks are named "
                         f"'stage.block', e.g.: {shown}")
    return names


def _prepare(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """One image as a (1, 3, H, W) batch on the model's device and in its float dtype."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a preprocessed image tensor, got {type(x).__name__}")
    if x.dim() == 3:
        x = x.unsqueeze(0)
    if x.dim() != 4 or x.shape[0] != 1 or x.shape[1] != 3:
        raise ValueError("x must be one preprocessed image of shape (3, S, S) or (1, 3, S, S), "
                         f"got {tuple(x.shape)}")
    param = next(model.parameters(), None)
    if param is not None:
        dtype = param.dtype if param.dtype.is_floating_point else x.dtype
        x = x.to(device=param.device, dtype=dtype)
    return x


# --------------------------------------------------------------------------- feature maps

def feature_maps(model: nn.Module, x: torch.Tensor, *, channels: int = 16,
                 blocks: list[str] | None = None) -> list[BlockMaps]:
    """Each block's output (all blocks, or those named, in model order): its shape and the
    ``channels`` channels with the highest mean activation, min-max normalised to 0..1."""
    _check_model(model)
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise ValueError(f"channels must be a positive integer, got {channels!r}")
    if isinstance(blocks, str):
        blocks = [blocks]
    names = _check_blocks(model, blocks or [])
    wanted = set(names if blocks is None else blocks)
    last = max(names.index(b) for b in wanted) if wanted else -1
    x = _prepare(model, x)
    out: list[BlockMaps] = []
    with torch.no_grad():
        for i, (name, block) in enumerate(_blocks(model)):
            if i > last:
                break  # nothing asked for further on
            x = block(x)
            if name in wanted:
                out.append(_block_maps(name, x[0], channels))
    return out


def _block_maps(name: str, act: torch.Tensor, channels: int) -> BlockMaps:
    act = act.detach().float()
    c, h, w = act.shape
    k = min(channels, c)
    top = torch.topk(act.mean(dim=(1, 2)), k).indices
    maps = _minmax(act[top].reshape(k, -1)).reshape(k, h, w)
    return BlockMaps(name, (c, h, w), top.tolist(), maps.cpu().contiguous())


def _minmax(rows: torch.Tensor) -> torch.Tensor:
    """Each row to 0..1 (a constant row -> zeros; non-finite values -> 0)."""
    rows = torch.nan_to_num(rows, nan=0.0, posinf=0.0, neginf=0.0)
    lo = rows.min(dim=1, keepdim=True).values
    span = rows.max(dim=1, keepdim=True).values - lo
    return torch.where(span > 0, (rows - lo) / span.clamp_min(torch.finfo(rows.dtype).tiny),
                       torch.zeros_like(rows))


# --------------------------------------------------------------------------- Grad-CAM

def grad_cam(model: nn.Module, x: torch.Tensor, class_index: int | None = None, *,
             block: str | None = None) -> CAM:
    """Grad-CAM for ``class_index`` (None: the top class) at ``block``'s output (None: the last
    block before the head).

    The blocks up to ``block`` run without autograd; its output is detached, made to require
    grad, and the remaining blocks and the head run on it; the class logit's gradient with
    respect to it gives the channel weights (averaged over the grid). The map is
    ``relu(sum_c w_c A_c)`` divided by its maximum (an all-zero map stays zero), at the block's
    resolution (``coarse``) and upsampled bilinearly to the input (``heatmap``).
    """
    _check_model(model)
    names = _check_blocks(model, [] if block is None else [block])
    if not names:
        raise ValueError("the model has no blocks")
    block = names[-1] if block is None else block
    if class_index is not None and (isinstance(class_index, bool)
                                    or not isinstance(class_index, (int, np.integer))):
        raise ValueError(f"class_index must be an integer or None, got {class_index!r}")
    # The caller may be under no_grad or inference_mode (a Streamlit page, say): autograd on.
    with torch.inference_mode(False), torch.enable_grad():
        x = _prepare(model, x).clone()  # clone: an inference-mode tensor cannot enter autograd
        size = tuple(x.shape[-2:])
        stop = names.index(block)
        with torch.no_grad():
            for name, mod in _blocks(model):
                x = mod(x)
                if name == block:
                    break
        act = x.detach().requires_grad_(True)
        # Run the rest on a (non-leaf) clone: in-place ops (ReLU) may not touch a leaf.
        y = act.clone()
        for i, (_name, mod) in enumerate(_blocks(model)):
            if i > stop:
                y = mod(y)
        logits = model.head(y)
        if isinstance(logits, tuple):  # never in eval mode; be safe with odd heads
            logits = logits[0]
        logits = logits.reshape(1, -1)
        n = logits.shape[1]
        if class_index is None:
            class_index = int(logits[0].argmax())
        elif not 0 <= int(class_index) < n:
            raise ValueError(f"class_index must be in 0..{n - 1} (the model has {n} classes), "
                             f"got {class_index}")
        class_index = int(class_index)
        (grad,) = torch.autograd.grad(logits[0, class_index], act)
    a = act.detach()[0].float()
    g = grad.detach()[0].float()
    weights = g.mean(dim=(1, 2))                               # (C,)
    cam = torch.relu(torch.einsum("c,chw->hw", weights, a))    # (h, w)
    cam = torch.nan_to_num(cam, nan=0.0, posinf=0.0, neginf=0.0)
    top = cam.max()
    coarse = cam / top if top > 0 else torch.zeros_like(cam)
    heatmap = F.interpolate(coarse[None, None], size=size, mode="bilinear",
                            align_corners=False)[0, 0].clamp(0.0, 1.0)
    return CAM(class_index, block, heatmap.cpu().contiguous(), coarse.cpu().contiguous())


# --------------------------------------------------------------------------- pictures

# Perceptual colormaps as evenly spaced stops (matplotlib's inferno and viridis sampled at
# 0, 1/8, ..., 1), interpolated linearly in between.
COLORMAPS: dict[str, np.ndarray] = {
    "inferno": np.array([[0, 0, 4], [31, 12, 72], [85, 15, 109], [136, 34, 106],
                         [186, 54, 85], [227, 89, 51], [249, 142, 9], [248, 201, 50],
                         [252, 255, 164]], dtype=np.float32),
    "viridis": np.array([[68, 1, 84], [71, 45, 123], [59, 82, 139], [44, 114, 142],
                         [33, 145, 140], [40, 174, 128], [94, 201, 98], [173, 220, 48],
                         [253, 231, 37]], dtype=np.float32),
}


def colorize(values, *, cmap: str = "inferno") -> np.ndarray:
    """Values in 0..1 (tensor or array, any shape) -> uint8 RGB, shape + (3,)."""
    if cmap not in COLORMAPS:
        raise ValueError(f"unknown colormap {cmap!r}; choose one of: {', '.join(COLORMAPS)}")
    if isinstance(values, torch.Tensor):
        values = values.detach().float().cpu().numpy()
    v = np.nan_to_num(np.asarray(values, dtype=np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    table = COLORMAPS[cmap]
    pos = np.clip(v, 0.0, 1.0) * (len(table) - 1)
    lo = np.minimum(pos.astype(np.int64), len(table) - 2)
    frac = (pos - lo)[..., None]
    rgb = table[lo] * (1.0 - frac) + table[lo + 1] * frac
    return np.rint(rgb).astype(np.uint8)


def overlay(image: Image.Image, heatmap: torch.Tensor, *, alpha: float = 0.45,
            cmap: str = "inferno") -> Image.Image:
    """``image`` (RGB, its own size) with ``heatmap`` (0..1, any size) resized bilinearly to it
    and blended in a perceptual colormap: ``(1 - alpha) * image + alpha * color``."""
    if not isinstance(image, Image.Image):
        raise TypeError(f"image must be a PIL image, got {type(image).__name__}")
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    heat = torch.as_tensor(heatmap).detach().float().cpu()
    if heat.dim() == 3 and heat.shape[0] == 1:
        heat = heat[0]
    if heat.dim() != 2 or heat.numel() == 0:
        raise ValueError(f"heatmap must be a 2-d map, got shape {tuple(heat.shape)}")
    rgb = image.convert("RGB")
    width, height = rgb.size
    heat = F.interpolate(heat[None, None], size=(height, width), mode="bilinear",
                         align_corners=False)[0, 0]
    color = colorize(heat, cmap=cmap).astype(np.float32)
    base = np.asarray(rgb, dtype=np.float32)
    blended = (1.0 - float(alpha)) * base + float(alpha) * color
    return Image.fromarray(np.clip(np.rint(blended), 0, 255).astype(np.uint8), mode="RGB")


def channel_grid(maps: torch.Tensor, *, columns: int = 8, pad: int = 1,
                 pad_value: int = 255) -> np.ndarray:
    """The k maps (k, H, W) in 0..1 tiled row by row, ``columns`` to a row, ``pad`` pixels of
    ``pad_value`` between tiles: a uint8 grey image of shape
    (rows * H + (rows - 1) * pad, cols * W + (cols - 1) * pad), cols = min(columns, k)."""
    m = torch.as_tensor(maps).detach().float().cpu()
    if m.dim() == 2:
        m = m[None]
    if m.dim() != 3 or m.shape[0] == 0:
        raise ValueError(f"maps must be (k, H, W) with k >= 1, got shape {tuple(m.shape)}")
    if isinstance(columns, bool) or not isinstance(columns, int) or columns < 1:
        raise ValueError(f"columns must be a positive integer, got {columns!r}")
    if isinstance(pad, bool) or not isinstance(pad, int) or pad < 0:
        raise ValueError(f"pad must be a non-negative integer, got {pad!r}")
    k, h, w = m.shape
    cols = min(columns, k)
    rows = math.ceil(k / cols)
    tiles = np.rint(np.clip(np.nan_to_num(m.numpy(), nan=0.0), 0.0, 1.0) * 255).astype(np.uint8)
    grid = np.full((rows * h + (rows - 1) * pad, cols * w + (cols - 1) * pad),
                   np.uint8(max(0, min(255, int(pad_value)))), dtype=np.uint8)
    for i in range(k):
        r, c = divmod(i, cols)
        top, left = r * (h + pad), c * (w + pad)
        grid[top:top + h, left:left + w] = tiles[i]
    # empty cells of the last row keep the pad colour
    return grid
