"""Weights by URL, and a classroom without internet (``weights fetch`` / ``weights verify``),
against the loopback HTTP server of test_download.py (this machine reaches no real host).

The checkpoints are torchvision GoogLeNets with random weights (conftest's reference zoo); the
registry entries that point at them are the real ones with only the file and its hash
replaced, so the code paths are the real ones: a torch.hub-style URL with a SHA-256 prefix, and
a Hugging Face hub file whose ETag is its SHA-256.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading

import pytest
from safetensors.torch import save_file
from serving import Files

from explorer.cli import main
from explorer.core.images import sample_images
from explorer.runtime.inference import predict
from explorer.weights import pretrained

CAT = str(sample_images()["cat"])


@pytest.fixture(scope="module")
def server():
    srv = Files()
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="module")
def googlenet_files(reference_zoo, tmp_path_factory):
    """The same random GoogLeNet as .pth bytes and as .safetensors bytes."""
    ref = reference_zoo["torchvision_googlenet"]
    folder = tmp_path_factory.mktemp("googlenet_files")
    save_file({k: v.contiguous() for k, v in ref.model.state_dict().items()}, str(folder / "g.safetensors"))
    return {"pth": ref.path.read_bytes(), "safetensors": (folder / "g.safetensors").read_bytes(),
            "path": ref.path}


@pytest.fixture(autouse=True)
def private_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("INCEPTION_EXPLORER_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("INCEPTION_EXPLORER_WEIGHTS", raising=False)
    monkeypatch.delenv("HF_ENDPOINT", raising=False)


def run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def expected_top(googlenet_files):
    """The answer for the cat photo with the same weights read from a local file."""
    return predict([CAT], "googlenet", googlenet_files["path"])[0]["top"]


def same_answer(top, expected):
    # Same weights, same code, same process: the classes and their order are exact; the
    # probabilities come from the same float32 kernels on the same batch and agree to float32
    # rounding (1e-6 absolute covers a few ulps of values <= 1).
    assert [t["index"] for t in top] == [t["index"] for t in expected]
    assert [t["prob"] for t in top] == pytest.approx([t["prob"] for t in expected], abs=1e-6)


@pytest.mark.parametrize("suffix", [".pth", ".pt", ".safetensors"])
def test_a_url_with_a_checkpoint_suffix_is_downloaded_not_taken_for_a_path(
        suffix, server, googlenet_files, expected_top, capsys, tmp_path):
    data = googlenet_files["safetensors" if suffix == ".safetensors" else "pth"]
    server.files[f"/files/googlenet-0{suffix}"] = data
    url = f"{server.url}/files/googlenet-0{suffix}"

    results = predict([CAT], "googlenet", url)  # the Python API
    same_answer(results[0]["top"], expected_top)
    cached = tmp_path / "torch" / "hub" / "checkpoints" / f"googlenet-0{suffix}"
    assert cached.read_bytes() == data

    code, out, err = run(capsys, "predict", CAT, "--variant", "googlenet", "--weights", url, "--json")
    assert code == 0, err
    same_answer(json.loads(out)[0]["top"], expected_top)


def test_an_unreachable_url_is_a_download_error_not_a_missing_file(capsys):
    code, _, err = run(capsys, "predict", CAT, "--variant", "googlenet", "--weights",
                       "http://127.0.0.1:9/v3.safetensors")
    assert code == 2
    assert "could not download http://127.0.0.1:9/v3.safetensors" in err
    assert "no checkpoint file" not in err


# ---- weights fetch / verify ---------------------------------------------------------------

@pytest.fixture
def registry(monkeypatch, googlenet_files, server):
    """GoogLeNet's real registry entry with our file's hash, and a Hugging Face entry for the
    same file, served by the loopback server under the original paths."""
    pth, st = googlenet_files["pth"], googlenet_files["safetensors"]
    prefix = hashlib.sha256(pth).hexdigest()[:8]
    real = pretrained.find_spec("googlenet", "IMAGENET1K_V1")
    url_spec = dataclasses.replace(real, url=f"https://download.pytorch.org/models/googlenet-{prefix}.pth",
                                   sha256_prefix=prefix)
    hub_spec = dataclasses.replace(real, tag="hf_test", url=None, sha256_prefix=None,
                                   hub_id="timm/googlenet.hf_test")
    monkeypatch.setattr(pretrained, "REGISTRY", (url_spec, hub_spec))
    server.files[f"/models/googlenet-{prefix}.pth"] = pth
    server.files["/timm/googlenet.hf_test/resolve/main/model.safetensors"] = st
    server.requests.clear()
    return url_spec, hub_spec


def gets(server) -> int:
    return sum(1 for method, _ in server.requests if method == "GET")


def test_fetch_fills_the_weights_folder_and_skips_what_is_there(registry, server, capsys, tmp_path):
    folder = tmp_path / "classroom"
    code, out, err = run(capsys, "weights", "fetch", "--all", "--to", str(folder),
                         "--endpoint", server.url)
    assert code == 0, out + err
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["SHA256SUMS", "googlenet.IMAGENET1K_V1.pth", "googlenet.hf_test.safetensors"]
    assert "2 of 2 ready" in out and f"INCEPTION_EXPLORER_WEIGHTS={folder}" in out
    assert "downloading" in err and "(100 %)" in err, "a progress bar on standard error"
    assert gets(server) == 2

    code, out, _ = run(capsys, "weights", "fetch", "--all", "--to", str(folder), "--endpoint", server.url)
    assert code == 0 and out.count("already there") == 2
    assert gets(server) == 2, "valid files are not fetched again"

    code, out, _ = run(capsys, "weights", "verify", str(folder))
    assert code == 0 and "2 of 2 files good" in out and "BAD" not in out


def test_the_hub_endpoint_comes_from_hf_endpoint(registry, server, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    folder = tmp_path / "w"
    code, out, err = run(capsys, "weights", "fetch", "googlenet.hf_test", "--to", str(folder))
    assert code == 0, out + err
    assert (folder / "googlenet.hf_test.safetensors").is_file()


def test_verify_names_each_bad_file_and_fetch_repairs_it(registry, server, capsys, tmp_path):
    folder = tmp_path / "classroom"
    assert run(capsys, "weights", "fetch", "--all", "--to", str(folder), "--endpoint", server.url)[0] == 0
    pth = folder / "googlenet.IMAGENET1K_V1.pth"
    data = bytearray(pth.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte: only the hash can tell
    pth.write_bytes(bytes(data))
    st = folder / "googlenet.hf_test.safetensors"
    st.write_bytes(st.read_bytes()[:1000])  # truncated
    (folder / "notes.txt").write_text("not weights")

    code, out, _ = run(capsys, "weights", "verify", str(folder))
    assert code == 1
    lines = {line.split()[1].rstrip(":"): line for line in out.splitlines()
             if line[:3] in ("ok ", "BAD", "-- ")}
    pth_line = lines["googlenet.IMAGENET1K_V1.pth"]
    assert pth_line.startswith("BAD") and "SHA-256" in pth_line
    assert lines["googlenet.hf_test.safetensors"].startswith("BAD")
    assert lines["notes.txt"].startswith("--")
    assert "0 of 2 files good; bad: googlenet.IMAGENET1K_V1.pth, googlenet.hf_test.safetensors" in out

    code, out, _ = run(capsys, "weights", "fetch", "--all", "--to", str(folder), "--endpoint", server.url)
    assert code == 0 and out.count("fetching it again") == 2
    assert run(capsys, "weights", "verify", str(folder))[0] == 0


def test_a_file_without_a_hash_that_does_not_load_is_bad(registry, capsys, tmp_path):
    folder = tmp_path / "w"
    folder.mkdir()
    (folder / "googlenet.hf_test.safetensors").write_bytes(b"\0" * 64)
    code, out, _ = run(capsys, "weights", "verify", str(folder))
    assert code == 1 and "BAD  googlenet.hf_test.safetensors: does not load onto googlenet" in out


def test_a_download_that_is_not_the_published_file_is_not_kept(registry, server, capsys, tmp_path):
    url_spec, _ = registry
    server.files[f"/models/googlenet-{url_spec.sha256_prefix}.pth"] = b"something else" * 1000
    folder = tmp_path / "w"
    code, out, _ = run(capsys, "weights", "fetch", "googlenet", "--to", str(folder), "--endpoint", server.url)
    assert code == 1 and "FAILED" in out and f"not {url_spec.sha256_prefix}" in out
    assert not (folder / "googlenet.IMAGENET1K_V1.pth").exists()


def test_fetched_weights_serve_predictions_offline(registry, server, capsys, tmp_path, monkeypatch,
                                                   expected_top):
    folder = tmp_path / "w"
    assert run(capsys, "weights", "fetch", "googlenet.hf_test", "--to", str(folder),
               "--endpoint", server.url)[0] == 0
    server.files.clear()  # the server is "offline" now
    monkeypatch.setenv("INCEPTION_EXPLORER_WEIGHTS", str(folder))
    code, out, err = run(capsys, "predict", CAT, "--variant", "googlenet", "--weights", "hf_test", "--json")
    assert code == 0, err
    same_answer(json.loads(out)[0]["top"], expected_top)


def test_verify_an_empty_or_missing_folder(capsys, tmp_path):
    code, out, _ = run(capsys, "weights", "verify", str(tmp_path))
    assert code == 1 and "no weights files in" in out
    code, _, err = run(capsys, "weights", "verify", str(tmp_path / "nowhere"))
    assert code == 2 and "no folder" in err


def test_fetch_needs_names_or_all(capsys, tmp_path):
    code, _, err = run(capsys, "weights", "fetch", "--to", str(tmp_path))
    assert code == 2 and "--all" in err
    code, _, err = run(capsys, "weights", "fetch", "inception_v4.nope", "--to", str(tmp_path))
    assert code == 2 and "tf_in1k" in err


def test_where_says_if_weights_are_in_the_folder_the_cache_or_not_here(registry, server, tmp_path,
                                                                       monkeypatch, capsys):
    from explorer.runtime.offline import where
    url_spec, hub_spec = registry
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    assert where(url_spec) is None and where(hub_spec) is None
    folder = tmp_path / "w"
    assert run(capsys, "weights", "fetch", "googlenet.hf_test", "--to", str(folder),
               "--endpoint", server.url)[0] == 0
    monkeypatch.setenv("INCEPTION_EXPLORER_WEIGHTS", str(folder))
    assert where(hub_spec) == "folder" and where(url_spec) is None
    from explorer.weights.download import fetch_url
    fetch_url(server.url + f"/models/googlenet-{url_spec.sha256_prefix}.pth")  # torch.hub's cache
    assert where(url_spec) == "cache"
