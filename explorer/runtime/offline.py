"""A classroom without internet: the public weights fetched once into a folder, checked there.

The folder has the ``$INCEPTION_EXPLORER_WEIGHTS`` layout (``<variant>.<tag>.safetensors|.pth``)
that ``explorer.weights.checkpoints.local_copy`` reads. Each file's SHA-256 is checked against the
registry's prefix (torch.hub files) or the hub's ETag (Hugging Face files, whose ETag is the
file's SHA-256), and written to ``SHA256SUMS`` in the folder, so that ``verify`` can check every
file again on the server, offline.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from explorer.core.i18n import _
from explorer.weights import pretrained
from explorer.weights.download import DownloadError, Progress, fetch_url, sha256_of
from explorer.weights.pretrained import WeightsSpec, find_spec

SUMS = "SHA256SUMS"
HF_DEFAULT = "https://huggingface.co"
SHA256 = re.compile(r"^[0-9a-f]{64}$")


def file_name(spec: WeightsSpec) -> str:
    suffix = Path(spec.filename).suffix if spec.hub_id else Path(urlsplit(spec.url).path).suffix
    return f"{spec.name}{suffix or '.pth'}"


def source_url(spec: WeightsSpec, endpoint: str | None = None) -> str:
    """Where the file comes from; ``endpoint`` is a mirror with the original paths (the hub's
    ``/<repo>/resolve/main/<file>``, download.pytorch.org's ``/models/<file>``). Hub files
    honour ``$HF_ENDPOINT`` as huggingface_hub does."""
    if spec.hub_id:
        base = (endpoint or os.environ.get("HF_ENDPOINT") or HF_DEFAULT).rstrip("/")
        return f"{base}/{spec.hub_id}/resolve/main/{spec.filename}"
    if endpoint:
        parts = urlsplit(spec.url)
        return endpoint.rstrip("/") + parts.path
    return spec.url


def select(names: list[str] | None) -> list[WeightsSpec]:
    """``["inception_v4.tf_in1k", "googlenet"]`` (a bare variant: its default) or None for all."""
    if not names:
        return list(pretrained.REGISTRY)
    specs = []
    for name in names:
        variant, _, tag = name.partition(".")
        spec = find_spec(variant, tag or "DEFAULT")
        if spec not in specs:
            specs.append(spec)
    return specs


def read_sums(folder: Path) -> dict[str, str]:
    path = Path(folder) / SUMS
    if not path.is_file():
        return {}
    sums = {}
    for line in path.read_text().splitlines():
        digest, _, name = line.partition("  ")
        if SHA256.match(digest) and name:
            sums[name.strip()] = digest
    return sums


def write_sum(folder: Path, name: str, digest: str) -> None:
    sums = read_sums(folder)
    sums[name] = digest
    text = "".join(f"{d}  {n}\n" for n, d in sorted(sums.items()))
    tmp = Path(folder) / f".{SUMS}.partial"
    tmp.write_text(text)
    os.replace(tmp, Path(folder) / SUMS)


def expected_hash(spec: WeightsSpec, folder: Path) -> str | None:
    return spec.sha256_prefix or read_sums(folder).get(file_name(spec))


@dataclass
class Check:
    name: str          # the file name in the folder
    ok: bool
    message: str       # what was found, in a user's words


def check_file(path: Path, spec: WeightsSpec, expected: str | None) -> Check:
    """Hash (when one is known) and a real load onto the variant, every key checked."""
    import warnings

    from explorer.runtime.build import build
    from explorer.weights.formats import WeightsError

    if expected and not sha256_of(path).startswith(expected):
        return Check(path.name, False, f"SHA-256 is not {expected[:12]}...: the file is corrupt "
                                       "or not the published one; fetch it again")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "dropped N aux tensors" is expected here
            build(spec.variant, device="cpu", weights=path)
    except (WeightsError, ValueError, OSError) as err:
        return Check(path.name, False, f"does not load onto {spec.variant}: {err}")
    hashed = "hash and " if expected else "no hash known; "
    return Check(path.name, True, f"{hashed}every tensor loads onto {spec.variant}")


def fetch(specs: list[WeightsSpec], folder, *, endpoint: str | None = None,
          progress_for=None, say=print) -> list[Check]:
    """Download each spec's file into ``folder`` under its ``<variant>.<tag>`` name, skipping
    files that are already there and valid. ``progress_for(name)`` gives a Progress callback."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    results = []
    for spec in specs:
        name = file_name(spec)
        dest = folder / name
        if dest.is_file():
            check = check_file(dest, spec, expected_hash(spec, folder))
            if check.ok:
                say(f"{name}: already there ({check.message})")
                results.append(check)
                continue
            say(f"{name}: {check.message}; fetching it again")
            dest.unlink()
        url = source_url(spec, endpoint)
        say(f"{name}: from {url}")
        progress: Progress | None = progress_for(name) if progress_for else None
        try:
            expected = spec.sha256_prefix or _hub_sha256(spec, url)
            path = fetch_url(url, sha256_prefix=expected, cache_dir=folder, name=name,
                             progress=progress)
        except DownloadError as err:
            results.append(Check(name, False, str(err)))
            say(f"{name}: FAILED: {err}")
            continue
        write_sum(folder, name, sha256_of(path))
        check = check_file(path, spec, expected)
        if not check.ok:
            path.unlink()
        results.append(check)
        say(f"{name}: {'ok' if check.ok else 'BAD'} ({check.message})")
    return results


def _hub_sha256(spec: WeightsSpec, url: str) -> str | None:
    """The hub's SHA-256 of a Hugging Face file (its ETag for files kept in LFS), or None."""
    if not spec.hub_id:
        return None
    try:
        from huggingface_hub import get_hf_file_metadata
        etag = get_hf_file_metadata(url).etag or ""
    except Exception as err:  # noqa: BLE001 -- offline or refused: say so in the words fetch_url uses
        from explorer.weights.download import _short
        raise DownloadError(f"could not reach {url} ({_short(err)})") from None
    etag = etag.strip('"').removeprefix("W/").strip('"')
    return etag if SHA256.match(etag) else None


PATTERN = re.compile(r"^(?P<variant>[a-z0-9_]+)\.(?P<tag>[A-Za-z0-9_]+)\.(safetensors|pth|pt)$")


def verify(folder) -> tuple[list[Check], list[str]]:
    """Every weights file in ``folder`` checked (hash, loads onto its variant); returns the
    checks and the names of files the app will not use (not ``<variant>.<tag>.<suffix>``)."""
    from explorer.weights.pretrained import UnknownWeights

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no folder {folder}")
    checks, ignored = [], []
    for path in sorted(folder.iterdir()):
        if path.name == SUMS or path.name.startswith(".") or not path.is_file():
            continue
        match = PATTERN.match(path.name)
        try:
            spec = find_spec(match["variant"], match["tag"]) if match else None
        except UnknownWeights:
            spec = None
        if spec is None:
            ignored.append(path.name)
            continue
        checks.append(check_file(path, spec, expected_hash(spec, folder)))
    return checks, ignored


# ---- what the Predict page tells a user ----------------------------------------------------

def where(spec: WeightsSpec) -> str | None:
    """Where ``spec``'s file is on this machine: "folder" ($INCEPTION_EXPLORER_WEIGHTS),
    "cache" (torch.hub's or huggingface_hub's download cache) or None (not here)."""
    from explorer.weights.checkpoints import local_copy
    from explorer.weights.download import hub_cache_dir

    if local_copy(spec) is not None:
        return "folder"
    if spec.url:
        return "cache" if (hub_cache_dir() / Path(urlsplit(spec.url).path).name).is_file() else None
    try:
        from huggingface_hub import try_to_load_from_cache
        cached = try_to_load_from_cache(spec.hub_id, spec.filename)
    except Exception:  # noqa: BLE001 -- an unreadable cache is no cache
        return None
    return "cache" if isinstance(cached, str) else None


def fetch_command(names) -> str:
    return f"python -m explorer weights fetch {' '.join(names)} --to DIR"


def uploader_label(variant: str) -> str:
    return _("Checkpoint for {variant}").format(variant=variant)


def missing_weights(variant: str, spec: WeightsSpec | None) -> str:
    """One short message (markdown), in the page's language: what is missing and the one thing
    to do."""
    if spec is None:
        if pretrained.specs_for(variant):
            return _("Upload a checkpoint (.pth, .pt or .safetensors) in the sidebar's "
                     "**{uploader}**.").format(uploader=uploader_label(variant))
        return _("{variant} has no public ImageNet weights: upload a checkpoint (.pth, .pt or "
                 ".safetensors) in the sidebar's **{uploader}**.").format(
                     variant=variant, uploader=uploader_label(variant))
    return _("The **{tag}** weights are not on this server and cannot be downloaded from here. "
             "Where there is internet, run `{command}`, then start the app here with "
             "`INCEPTION_EXPLORER_WEIGHTS=DIR`.").format(tag=spec.tag,
                                                        command=fetch_command([spec.name]))
