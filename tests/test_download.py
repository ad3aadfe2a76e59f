"""Downloads against a loopback HTTP server: hash checks, cache reuse, offline and broken files.

This machine cannot reach download.pytorch.org or the Hugging Face hub; the server below serves
files the tests make, under the same URL shapes (``/models/name-<sha256 prefix>.pth`` and the
hub's ``/<repo>/resolve/<revision>/<file>``).
"""

from __future__ import annotations

import hashlib
import socket
import threading

import pytest
from serving import Files  # tests/ is on sys.path (rootdir conftest)

from explorer.weights.download import DownloadError, fetch_hub, fetch_url, hash_prefix_of


@pytest.fixture
def server():
    srv = Files()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def payload(n: int = 300_000, seed: int = 0) -> bytes:
    return hashlib.sha256(str(seed).encode()).digest() * (n // 32)


def named(data: bytes, stem: str = "googlenet") -> str:
    return f"/models/{stem}-{hashlib.sha256(data).hexdigest()[:8]}.pth"


def cache_entries(cache_dir) -> list[str]:
    return sorted(p.name for p in cache_dir.iterdir()) if cache_dir.exists() else []


def test_hash_prefix_comes_from_the_torch_hub_file_name():
    assert hash_prefix_of("https://download.pytorch.org/models/googlenet-1378be20.pth") == "1378be20"
    assert hash_prefix_of("https://example.org/weights.pth") is None


def test_download_checks_the_hash_and_reuses_the_cache(server, tmp_path):
    data = payload()
    path = named(data)
    server.files[path] = data
    seen = []
    got = fetch_url(server.url + path, cache_dir=tmp_path, progress=lambda d, t: seen.append((d, t)))
    assert got.read_bytes() == data
    assert seen[-1] == (len(data), len(data)) and seen[0] == (0, len(data))
    assert cache_entries(tmp_path) == [got.name], "no temporary file is left behind"
    again = fetch_url(server.url + path, cache_dir=tmp_path)
    assert again == got
    assert len(server.requests) == 1, "the second call is served from the cache"


def test_wrong_hash_is_refused_and_not_kept(server, tmp_path):
    data = payload()
    path = "/models/googlenet-deadbeef.pth"
    server.files[path] = data
    with pytest.raises(DownloadError, match="not deadbeef"):
        fetch_url(server.url + path, cache_dir=tmp_path)
    assert cache_entries(tmp_path) == []


def test_truncated_download_leaves_no_cache_entry(server, tmp_path):
    data = payload()
    path = "/models/plain.pth"  # no hash in the name: only the length can tell
    server.files[path] = data
    server.truncate.add(path)
    with pytest.raises(DownloadError, match="incomplete|broke off"):
        fetch_url(server.url + path, cache_dir=tmp_path)
    assert cache_entries(tmp_path) == []
    server.truncate.clear()
    assert fetch_url(server.url + path, cache_dir=tmp_path).read_bytes() == data


def test_a_corrupt_cache_entry_is_fetched_again(server, tmp_path):
    data = payload()
    path = named(data)
    server.files[path] = data
    (tmp_path / path.rsplit("/", 1)[1]).write_bytes(b"half a file")
    assert fetch_url(server.url + path, cache_dir=tmp_path).read_bytes() == data
    assert len(server.requests) == 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_offline_says_what_to_fetch_by_hand(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/models/googlenet-1378be20.pth"
    with pytest.raises(DownloadError) as err:
        fetch_url(url, cache_dir=tmp_path, timeout=5)
    message = str(err.value)
    assert url in message and "--weights FILE" in message
    assert cache_entries(tmp_path) == []


def test_missing_file_is_a_download_error(server, tmp_path):
    with pytest.raises(DownloadError, match="404"):
        fetch_url(server.url + "/models/nothing.pth", cache_dir=tmp_path)


def test_size_limit(server, tmp_path):
    data = payload()
    server.files["/models/big.pth"] = data
    with pytest.raises(DownloadError, match="limit"):
        fetch_url(server.url + "/models/big.pth", cache_dir=tmp_path, max_bytes=len(data) // 3)
    assert cache_entries(tmp_path) == []


def test_hub_download_goes_through_the_huggingface_cache(server, tmp_path):
    data = payload(seed=1)
    server.files["/timm/inception_v4.tf_in1k/resolve/main/model.safetensors"] = data
    seen = []
    path = fetch_hub("timm/inception_v4.tf_in1k", endpoint=server.url, cache_dir=tmp_path,
                     progress=lambda d, t: seen.append((d, t)))
    assert path.read_bytes() == data
    assert "models--timm--inception_v4.tf_in1k" in str(path)
    assert seen and seen[-1][0] == len(data)
    gets = sum(1 for method, _ in server.requests if method == "GET")
    fetch_hub("timm/inception_v4.tf_in1k", endpoint=server.url, cache_dir=tmp_path)
    assert sum(1 for method, _ in server.requests if method == "GET") == gets


def test_hub_offline_says_what_to_fetch_by_hand(tmp_path):
    endpoint = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(DownloadError) as err:
        fetch_hub("timm/inception_v4.tf_in1k", endpoint=endpoint, cache_dir=tmp_path)
    message = str(err.value)
    assert "timm/inception_v4.tf_in1k/resolve/main/model.safetensors" in message
    assert "--weights FILE" in message


def test_hub_truncated_download_leaves_no_usable_entry(server, tmp_path):
    data = payload(seed=2)
    path = "/timm/inception_v4.tf_in1k/resolve/main/model.safetensors"
    server.files[path] = data
    server.truncate.add(path)
    with pytest.raises(DownloadError):
        fetch_hub("timm/inception_v4.tf_in1k", endpoint=server.url, cache_dir=tmp_path)
    snapshots = list(tmp_path.rglob("snapshots/*/model.safetensors"))
    assert snapshots == []
    server.truncate.clear()
    assert fetch_hub("timm/inception_v4.tf_in1k", endpoint=server.url,
                     cache_dir=tmp_path).read_bytes() == data


def test_hub_offline_is_answered_from_the_cache(tmp_path):
    srv = Files()
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    data = payload(seed=3)
    srv.files["/timm/inception_v3.tf_in1k/resolve/main/model.safetensors"] = data
    endpoint = srv.url
    first = fetch_hub("timm/inception_v3.tf_in1k", endpoint=endpoint, cache_dir=tmp_path)
    srv.shutdown()
    srv.server_close()
    again = fetch_hub("timm/inception_v3.tf_in1k", endpoint=endpoint, cache_dir=tmp_path)
    assert again.read_bytes() == data and again == first
