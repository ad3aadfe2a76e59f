"""Fetching checkpoints into the standard caches, with progress, hash checks and clean failures.

URLs go to torch.hub's cache (``$TORCH_HOME/hub/checkpoints``), Hugging Face hub ids to
huggingface_hub's cache. A download is written to a temporary file next to its destination and
moved into place only when it is complete and its hash matches, so a failed, interrupted or
truncated download never leaves a cache entry that a later run would trust.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

Progress = Callable[[int, int | None], None]  # (bytes done, total bytes or None)

MAX_DOWNLOAD_BYTES = 1 << 30  # 1 GiB: the largest Inception checkpoint is ~220 MB
CHUNK = 1 << 20
HASH_IN_NAME = re.compile(r"-([a-f0-9]{6,64})\.\w+$")  # torch.hub's "name-<sha256 prefix>.pth"


class DownloadError(OSError):
    """A download that failed; the message says which file to fetch from where, by hand."""


def hub_cache_dir() -> Path:
    import torch.hub
    return Path(torch.hub.get_dir()) / "checkpoints"


def hash_prefix_of(url: str) -> str | None:
    """The SHA-256 prefix torch.hub file names carry (``googlenet-1378be20.pth``)."""
    match = HASH_IN_NAME.search(url.rsplit("/", 1)[-1])
    return match.group(1) if match else None


def _by_hand(location: str) -> str:
    return (f"Fetch {location} on a machine with internet access and load the file with "
            "--weights FILE (command line) or upload it on the Predict page (sidebar: choose "
            "'a checkpoint file...' as the network's weights).")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_url(url: str, *, sha256_prefix: str | None = None, cache_dir: Path | None = None,
              progress: Progress | None = None, max_bytes: int = MAX_DOWNLOAD_BYTES,
              timeout: float = 30.0, name: str | None = None) -> Path:
    """The cached file for ``url`` (``cache_dir / name``, by default the URL's last segment),
    downloading it first when it is not cached yet.

    ``sha256_prefix`` defaults to the one in the file name, as torch.hub's ``check_hash`` does.
    """
    cache_dir = Path(cache_dir) if cache_dir else hub_cache_dir()
    name = name or url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1] or "checkpoint.pth"
    dest = cache_dir / name
    expected = sha256_prefix or hash_prefix_of(url.split("?", 1)[0])
    if dest.is_file():
        if expected is None or sha256_of(dest).startswith(expected):
            return dest
        dest.unlink()  # a cache entry that does not match its name: fetch it again
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".partial", dir=cache_dir)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            try:
                response = urllib.request.urlopen(url, timeout=timeout)  # noqa: S310 -- http(s) only, checked by the caller
            except (urllib.error.URLError, OSError, ValueError) as err:
                reason = (f"HTTP {err.code} {err.reason}" if isinstance(err, urllib.error.HTTPError)
                          else getattr(err, "reason", err))
                raise DownloadError(f"could not download {url} ({reason}). {_by_hand(url)}") from None
            with response:
                total = response.headers.get("Content-Length")
                total = int(total) if total and total.isdigit() else None
                if total is not None and total > max_bytes:
                    raise DownloadError(f"{url} is {total / 1e6:.0f} MB, above the "
                                        f"{max_bytes / 1e6:.0f} MB download limit")
                done = 0
                if progress:
                    progress(0, total)
                while True:
                    try:
                        block = response.read(CHUNK)
                    except (OSError, urllib.error.URLError) as err:
                        raise DownloadError(f"the download of {url} broke off after {done} bytes "
                                            f"({err}). Try again. {_by_hand(url)}") from None
                    if not block:
                        break
                    done += len(block)
                    if done > max_bytes:
                        raise DownloadError(f"{url} is larger than the {max_bytes / 1e6:.0f} MB "
                                            "download limit")
                    digest.update(block)
                    out.write(block)
                    if progress:
                        progress(done, total)
        if total is not None and done != total:
            raise DownloadError(f"the download of {url} is incomplete ({done} of {total} bytes). "
                                f"Try again. {_by_hand(url)}")
        if expected and not digest.hexdigest().startswith(expected):
            raise DownloadError(f"the file downloaded from {url} has SHA-256 "
                                f"{digest.hexdigest()[:12]}..., not {expected}...: it is corrupt "
                                "or not the published file, and was not kept.")
        os.replace(tmp, dest)
        return dest
    finally:
        tmp.unlink(missing_ok=True)


def fetch_hub(hub_id: str, filename: str = "model.safetensors", *, revision: str | None = None,
              endpoint: str | None = None, cache_dir: Path | None = None,
              progress: Progress | None = None) -> Path:
    """The cached file of a Hugging Face hub repo (huggingface_hub verifies and caches it)."""
    try:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
    except ImportError:  # pragma: no cover -- a dependency of the project
        raise DownloadError("huggingface_hub is not installed: pip install huggingface_hub") from None
    location = f"{endpoint or 'https://huggingface.co'}/{hub_id}/resolve/{revision or 'main'}/{filename}"
    kwargs = {"revision": revision, "endpoint": endpoint, "cache_dir": cache_dir}
    if progress:
        kwargs["tqdm_class"] = _tqdm_reporting(progress)
    if not _reachable(endpoint or "https://huggingface.co"):
        # huggingface_hub would retry for ~20 s; offline, only the cache can answer
        kwargs["local_files_only"] = True
    try:
        return Path(hf_hub_download(hub_id, filename, **kwargs))
    except LocalEntryNotFoundError as err:
        raise DownloadError(f"could not reach the Hugging Face hub for {hub_id} and the file is "
                            f"not in the local cache ({_short(err)}). {_by_hand(location)}") from None
    except (HfHubHTTPError, OSError, ValueError, Exception) as err:  # noqa: BLE001
        # huggingface_hub lets its HTTP stack's own errors (httpx: broken transfers) through
        raise DownloadError(f"could not download {filename} of {hub_id} ({_short(err)}). "
                            f"{_by_hand(location)}") from None


def _reachable(endpoint: str, timeout: float = 3.0) -> bool:
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(endpoint)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def _short(err) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:200]


def _tqdm_reporting(progress: Progress):
    """A tqdm class that forwards huggingface_hub's byte counts to ``progress``."""
    from tqdm.auto import tqdm

    class Reporting(tqdm):
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = True  # our caller draws the bar
            super().__init__(*args, **kwargs)
            self._done = 0

        def update(self, n=1):
            self._done += n or 0
            progress(self._done, self.total)
            return super().update(n)

    return Reporting
