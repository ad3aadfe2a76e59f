"""A small on-disk cache of analysis results, readable without importing torch.

The command line answers a repeated question (same variant, configuration and code) from this
cache in a fraction of the time it takes just to import torch. Keys hash the request together
with the source of every module that shapes the answer, so a code change invalidates them.
Writes are atomic (temp file + rename), so concurrent or interrupted runs never leave a corrupt
entry; an unreadable entry is ignored and recomputed.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from functools import lru_cache
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]  # explorer/


def cache_dir() -> Path:
    root = os.environ.get("INCEPTION_EXPLORER_CACHE")
    if root:
        return Path(root)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "inception-explorer"


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    digest = hashlib.sha256()
    # the description of the networks and everything that computes an answer from it
    sources = [*(PACKAGE / "spec").glob("*.py"),
               *(PACKAGE / "variants").glob("*.py"), *(PACKAGE / "analysis").glob("*.py")]
    for path in sorted(sources):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def cached_json(kind: str, request: dict, compute) -> dict | None:
    """``compute()`` 's JSON-able result for ``request``, from the cache when it is there
    (``compute`` None: only from the cache, else None)."""
    key = json.dumps({"kind": kind, "code": code_fingerprint(), **request}, sort_keys=True)
    path = cache_dir() / kind / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".json")
    cached = read_json(path)
    if cached is not None or compute is None:
        return cached
    result = compute()
    write_json(path, result)
    return result


def read_json(path: Path):
    """A cached JSON value, or None when it is missing or unreadable (then it is recomputed)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def write_json(path: Path, value) -> None:
    """Write atomically (a temporary file, then a rename), so that a reader in another process
    never sees half a file; a read-only cache only costs speed."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as f:
            json.dump(value, f)
        os.replace(f.name, path)
    except OSError:
        pass
