"""Checkpoint files: safe loading, format detection, key maps onto our modules, strict checks.

A checkpoint in torchvision, timm, Cadene (BN-Inception) or facenet format (how its keys are
named) -- or one saved from our own modules ("explorer" format) -- is read without unpickling
code (``weights_only=True`` or safetensors), its names are put onto ours through the variant's
explicit key map, and it is refused, with the first few problems listed, unless every tensor
lands with the right shape. The one tolerated difference is torchvision's: auxiliary-head
weights are dropped (with a note) when the model is built without its aux heads.

This module knows no variant: callers pass the variant, layout and config (``explorer.variants``
imports it, never the other way round).
"""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from explorer.core.i18n import N_, _

OWN_FORMAT = "explorer"  # a checkpoint saved from our own modules: our names as they are
SHOW = 5  # how many offending keys an error lists
# A loaded model's note, made in English (models are cached for every session): a page says it
# in its own language with explorer.core.i18n.again(note, *NOTES).
AUX_DROPPED = N_("dropped {n} auxiliary-head tensors (the model was built with aux_logits=False)")
NOTES = (AUX_DROPPED,)


class WeightsError(ValueError):
    """A checkpoint that cannot be loaded; the message says why and what to do (in the run's
    language: English outside a page)."""


def read_state_dict(path) -> dict[str, torch.Tensor]:
    """Tensors of a ``.pth`` / ``.pt`` / ``.bin`` (never unpickling code) or ``.safetensors`` file."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(_("no checkpoint file at {path}").format(path=path))
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file
        try:
            state = load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError):
            # the parser's own words ("HeaderTooLarge") mean nothing to the person who has the file
            raise WeightsError(_("{name} is not a readable safetensors file: it is truncated, or "
                                 "not a safetensors file at all. Download it again.").format(
                                     name=path.name)) from None
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as err:
            if _names_code(err):
                raise WeightsError(_(
                    "{name} was refused: it holds Python objects other than tensors, and loading "
                    "it could run code. Save a plain state_dict (model.state_dict()) or a "
                    ".safetensors file. ({detail})").format(name=path.name,
                                                           detail=_blocked_global(err))) from None
            raise _unreadable(path, err) from None
        except Exception as err:  # noqa: BLE001 -- garbage bytes raise anything (IndexError, KeyError, ...)
            raise _unreadable(path, err) from None
    return unwrap(state, path.name)


def _names_code(err) -> bool:
    """Whether torch's weights-only unpickler refused a real pickle for naming code (a global,
    a reduce call, ...) rather than failing on bytes that are no pickle at all."""
    return _blocked_global(err) is not None


def _blocked_global(err) -> str | None:
    for line in str(err).splitlines():
        if "GLOBAL" in line or "Unsupported global" in line:
            return line.strip()
    return None


def _unreadable(path: Path, err) -> WeightsError:
    # the unpickler's own words ("pop from empty list") would only confuse: say it in user terms
    return WeightsError(_("{name} is not a readable PyTorch checkpoint: it is truncated, or not a "
                          "checkpoint at all. Download it again, or save it again with "
                          "torch.save(model.state_dict(), path).").format(name=path.name))


def unwrap(state, name: str = "checkpoint") -> dict[str, torch.Tensor]:
    """The tensor dict inside common wrappers ({"state_dict": ...}, {"model": ...}, DataParallel)."""
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not state:
        raise WeightsError(_("{name} holds no state_dict (a dict of tensors)").format(name=name))
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise WeightsError(_("{name} holds no tensors").format(name=name))
    if all(k.startswith("module.") for k in tensors):
        tensors = {k[len("module."):]: v for k, v in tensors.items()}
    return tensors


def apply_key_map(keys, rules) -> tuple[dict[str, str], list[str]]:
    """Map checkpoint keys to ours. ``rules`` are (their prefix, our prefix, inner map or None):
    the longest matching prefix wins; an inner map renames the rest of the key the same way,
    and without one the rest is kept as it is. Returns ({theirs: ours}, unmapped keys)."""
    table = {theirs: (ours, inner) for theirs, ours, inner in rules}
    mapped, unmapped = {}, []
    for key in keys:
        target = _lookup(key, table)
        if target is None:
            unmapped.append(key)
        else:
            mapped[key] = target
    return mapped, unmapped


def _lookup(key: str, table: dict) -> str | None:
    parts = key.split(".")
    for i in range(len(parts) - 1, 0, -1):
        hit = table.get(".".join(parts[:i]))
        if hit is None:
            continue
        ours, inner = hit
        rest = parts[i:]
        if inner is None:
            return ".".join([ours, *rest])
        for j in range(len(rest) - 1, 0, -1):
            sub = inner.get(".".join(rest[:j]))
            if sub is not None:
                return ".".join([ours, sub, *rest[j:]])
        return None
    return None


def _is_aux(our_key: str) -> bool:
    return our_key.split(".", 1)[0].startswith("aux")


def checkpoint_formats(layout) -> dict:
    """The formats a layout loads: ours, then those with a key map."""
    return {OWN_FORMAT: None, **layout.checkpoint_formats}


def detect_format(state: dict, layout, cfg, expected: dict) -> tuple[str, dict[str, str]]:
    """The checkpoint format whose key map covers the most of ``state`` (ties: the first);
    ``expected``: the model's state-dict names and shapes."""
    best = (-1, OWN_FORMAT, {})
    for fmt, factory in checkpoint_formats(layout).items():
        if factory is None:  # our own names: only keys the model has count as mapped
            mapping = {k: k for k in state if k in expected or _is_aux(k)}
            covered = sum(k in expected for k in state)
        else:
            mapping, _unmapped = apply_key_map(state, factory(cfg))
            covered = len(mapping)
        if covered > best[0]:
            best = (covered, fmt, mapping)
    return best[1], best[2]


def state_shapes(model: nn.Module) -> dict[str, torch.Size]:
    """A model's state-dict names and shapes (a "meta"-device model has them too)."""
    return {k: v.shape for k, v in model.state_dict().items()}


def convert(state: dict, info, layout, cfg, expected: dict[str, torch.Size],
            looks_like: Callable[[dict], str | None] | None = None,
            ) -> tuple[dict[str, torch.Tensor], str, list[str]]:
    """Checkpoint tensors renamed onto our modules (``expected``: their names and shapes) and
    checked; returns (state, format, notes). ``looks_like`` names what a refused checkpoint
    fits instead (``identify`` over the known variants), for the message."""
    fmt, mapping = detect_format(state, layout, cfg, expected)
    notes = []
    if len(mapping) < len(state) / 2:
        guess = looks_like(state) if looks_like else None
        values = dict(variant=info.name, layout=_(layout.name), guess=guess,
                      formats=", ".join(checkpoint_formats(layout)),
                      keys=", ".join(list(state)[:SHOW]))
        raise WeightsError((_(
            "this checkpoint does not fit {variant} ({layout} layout), which loads these checkpoint "
            "formats: {formats}. It looks like a {guess} checkpoint. Its first keys: {keys}")
            if guess else _(
            "this checkpoint does not fit {variant} ({layout} layout), which loads these checkpoint "
            "formats: {formats}. Its first keys: {keys}")).format(**values))
    ours = {mapping[k]: v for k, v in state.items() if k in mapping}
    for k, v in ours.items():  # a classifier kept as a 1x1 conv (timm's ResNetV2) is our matrix
        shape = expected.get(k)
        if shape is not None and len(shape) == 2 and v.dim() == 4 and v.shape[2:] == (1, 1) \
                and tuple(v.shape[:2]) == tuple(shape):
            ours[k] = v.flatten(1)
    unexpected = [k for k in state if k not in mapping]
    unexpected += [mapping[k] for k in state if k in mapping and mapping[k] not in expected]
    aux_dropped = [k for k in unexpected if _is_aux(mapping.get(k, k))]
    if aux_dropped and not cfg.aux_logits:
        notes.append(AUX_DROPPED.format(n=len(aux_dropped)))  # English: see NOTES
        unexpected = [k for k in unexpected if k not in aux_dropped]
        ours = {k: v for k, v in ours.items() if k in expected}
    missing = [k for k in expected if k not in ours and not k.endswith("num_batches_tracked")]
    mismatched = [_("{key}: checkpoint {theirs} vs model {ours}").format(
                      key=k, theirs=tuple(ours[k].shape), ours=tuple(shape))
                  for k, shape in expected.items() if k in ours and ours[k].shape != shape]
    problems = []
    if missing:
        problems.append(_("{n} missing (e.g. {keys})").format(n=len(missing),
                                                              keys=", ".join(missing[:SHOW])))
    if unexpected:
        problems.append(_("{n} unexpected (e.g. {keys})").format(
            n=len(unexpected), keys=", ".join(unexpected[:SHOW])))
    if mismatched:
        problems.append(_("{n} with the wrong shape ({shapes})").format(
            n=len(mismatched), shapes="; ".join(mismatched[:SHOW])))
    if problems:
        fc = [k for k in expected if k.endswith("fc.weight") and k.startswith("head")]
        hint = ""
        if fc and fc[0] in ours and ours[fc[0]].shape != expected[fc[0]]:
            hint = " " + _("Build with num_classes={n} to match its classifier.").format(
                n=ours[fc[0]].shape[0])
        elif missing and any(_is_aux(k) for k in missing):
            hint = " " + _("The checkpoint has no auxiliary head: build with aux_logits=False.")
        raise WeightsError(_(
            "checkpoint ({format} format) does not match {variant} ({layout} layout, width "
            "{width}, repeats {repeats}): {problems}.").format(
                format=fmt, variant=info.name, layout=_(layout.name), width=cfg.width,
                repeats=cfg.repeats or layout.repeats, problems="; ".join(problems)) + hint)
    for k in expected:
        if k.endswith("num_batches_tracked") and k not in ours:
            ours[k] = torch.zeros((), dtype=torch.long)
    ours = {k: (v.float() if v.is_floating_point() else v) for k, v in ours.items()}
    return ours, fmt, notes


def load_into(model: nn.Module, weights, info, layout, cfg, device="cpu",
              looks_like: Callable[[dict], str | None] | None = None) -> nn.Module:
    """Put a checkpoint (path or state dict) into ``model`` (possibly built on "meta").
    ``looks_like``: what a refused checkpoint fits instead (see ``convert``)."""
    state = weights if isinstance(weights, dict) else read_state_dict(weights)
    ours, fmt, notes = convert(state, info, layout, cfg, state_shapes(model), looks_like)
    model.load_state_dict(ours, strict=True, assign=True)
    model.to(device)
    model.checkpoint_format = fmt
    model.weights_notes = notes
    for note in notes:
        warnings.warn(note, stacklevel=3)
    return model


def identify(state: dict, known, config_type, expected_keys) -> str | None:
    """Which of the ``known`` variants and checkpoint formats a checkpoint fits best
    ("inception_v4 (timm format)"), each at its reference ``config_type()``;
    ``expected_keys(layout, cfg)``: a layout's state-dict names and shapes."""
    best, best_cov = None, 0.5
    for info in known:
        for lay in info.layouts.values():
            for fmt, factory in lay.checkpoint_formats.items():
                mapping, _unmapped = apply_key_map(state, factory(config_type()))
                expected = expected_keys(lay, config_type(aux_logits=lay.has_aux))
                hits = sum(1 for k in mapping.values() if k in expected)
                cov = hits / max(len(state), 1)
                if cov > best_cov:
                    best, best_cov = f"{info.name} ({fmt} format)", cov
    return best
