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

PACKAGE = Path(__file__).resolve().parent


def cache_dir() -> Path:
    root = os.environ.get("INCEPTION_EXPLORER_CACHE")
    if root:
        return Path(root)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "inception-explorer"


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    digest = hashlib.sha256()
    sources = [PACKAGE / "analysis.py", PACKAGE / "receptive.py", *(PACKAGE / "variants").glob("*.py")]
    for path in sorted(sources):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def cached_json(kind: str, request: dict, compute) -> dict:
    """``compute()`` 's JSON-able result for ``request``, from the cache when it is there."""
    key = json.dumps({"kind": kind, "code": code_fingerprint(), **request}, sort_keys=True)
    path = cache_dir() / kind / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".json")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        pass
    result = compute()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as f:
            json.dump(result, f)
        os.replace(f.name, path)
    except OSError:
        pass  # a read-only home only costs speed
    return result
