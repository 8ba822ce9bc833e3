"""File search and checksummed atomic downloads (no network: file:// URLs and fake openers)."""

import hashlib
import io
import os
import pathlib
import urllib.error

import pytest

from npcnn.data import download
from npcnn.data.download import DatasetNotFoundError


def test_cache_dir_respects_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert download.cache_dir() == tmp_path / "npcnn"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert download.cache_dir() == tmp_path / "home" / ".cache" / "npcnn"


def test_search_roots_order(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "c"))
    monkeypatch.setenv("NPCNN_DATA", os.pathsep.join([str(tmp_path / "a"), "", str(tmp_path / "b")]))
    assert download.search_roots() == [tmp_path / "a", tmp_path / "b", tmp_path / "c" / "npcnn"]
    assert download.search_roots(tmp_path / "r") == [tmp_path / "r"]  # an explicit root is the only place
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f.gz").write_bytes(b"flat")
    (tmp_path / "b" / "ds").mkdir(parents=True)
    (tmp_path / "b" / "ds" / "f.gz").write_bytes(b"sub")
    assert download.locate("f.gz", ["ds"]) == tmp_path / "a" / "f.gz"  # earlier root wins over layout
    (tmp_path / "a" / "ds").mkdir()
    (tmp_path / "a" / "ds" / "f.gz").write_bytes(b"sub-a")
    assert download.locate("f.gz", ["ds"]) == tmp_path / "a" / "ds" / "f.gz"  # sub-folder before flat


def _source(tmp_path, data=b"npcnn test payload " * 1000):
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    return src, hashlib.sha256(data).hexdigest(), hashlib.md5(data).hexdigest()


def test_download_file_url_verifies_both_checksums(tmp_path, capsys):
    src, sha, md5 = _source(tmp_path)
    dest = tmp_path / "out" / "deep" / "file.bin"
    assert download.download(src.as_uri(), dest, sha256=sha, md5=md5) == dest
    assert dest.read_bytes() == src.read_bytes()
    err = capsys.readouterr().err
    assert "file.bin" in err and "100.0%" in err
    assert download.file_digest(dest) == sha and download.file_digest(dest, "md5") == md5


@pytest.mark.parametrize("which", ["sha256", "md5"])
def test_checksum_mismatch_leaves_nothing(tmp_path, which):
    src, sha, md5 = _source(tmp_path)
    dest = tmp_path / "out" / "file.bin"
    bad = {"sha256": sha, "md5": md5, which: "0" * (64 if which == "sha256" else 32)}
    with pytest.raises(DatasetNotFoundError, match=f"{which} checksum mismatch"):
        download.download(src.as_uri(), dest, progress=False, **bad)
    assert list((tmp_path / "out").iterdir()) == []  # no partial or temporary file


def test_mirror_fallback_and_existing_file_untouched_on_failure(tmp_path):
    src, sha, _ = _source(tmp_path)
    dest = tmp_path / "file.bin"
    urls = [(tmp_path / "missing.bin").as_uri(), src.as_uri()]
    download.download(urls, dest, sha256=sha, progress=False)
    assert dest.read_bytes() == src.read_bytes()
    dest.write_bytes(b"old")
    with pytest.raises(DatasetNotFoundError):
        download.download(src.as_uri(), dest, sha256="1" * 64, progress=False)
    assert dest.read_bytes() == b"old"  # os.replace happens only after the checksum passed


class _Response(io.BytesIO):
    headers = {"Content-Length": "10"}


def test_network_errors_become_one_clear_error(tmp_path):
    calls = []

    def opener(url):
        calls.append(url)
        if "a.example" in url:
            raise urllib.error.URLError("no route to host")
        if "b.example" in url:
            raise TimeoutError("timed out")
        return _Response(b"0123456789")

    with pytest.raises(DatasetNotFoundError) as info:
        download.download(["http://a.example/f", "http://b.example/f"], tmp_path / "f", opener=opener, progress=False)
    assert "http://a.example/f: no route to host" in str(info.value)
    assert "http://b.example/f: timed out" in str(info.value)
    out = download.download(["http://a.example/f", "http://c.example/f"], tmp_path / "f", opener=opener,
                            sha256=hashlib.sha256(b"0123456789").hexdigest(), progress=False)
    assert out.read_bytes() == b"0123456789" and len(calls) == 4


def test_fetch_prefers_local_file_and_downloads_into_first_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("NPCNN_DATA", raising=False)
    src, sha, _ = _source(tmp_path)
    root = tmp_path / "root"
    path = download.fetch("src.bin", ["ds", "DS"], [src.as_uri()], root=root, sha256=sha, progress=False)
    assert path == root / "ds" / "src.bin" and path.is_file()
    src.unlink()  # now found locally, no download attempted
    assert download.fetch("src.bin", ["ds"], [src.as_uri()], root=root) == path
    with pytest.raises(DatasetNotFoundError, match="download=False") as info:
        download.fetch("other.bin", ["ds"], ["http://x/other.bin"], root=root, download_missing=False)
    assert str(pathlib.Path(root) / "ds" / "other.bin") in str(info.value)
