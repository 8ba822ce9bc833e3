"""Finding dataset files on disk, and downloading them when they are missing.

Where a dataset's files are looked for, in order:

1. the ``root=`` folder given by the caller (then only there);
2. the folders in the ``NPCNN_DATA`` environment variable (``os.pathsep``-separated);
3. the user cache, ``$XDG_CACHE_HOME/npcnn`` or ``~/.cache/npcnn``.

In each folder both layouts are accepted: a dataset sub-folder (``root/mnist/train-...gz``) and
flat files (``root/train-...gz``). When a file is found nowhere it is downloaded (unless
``download=False``) into ``root`` or the user cache: streamed to a temporary file beside the
target while its checksum is computed, checked, and only then moved into place with
``os.replace``, so an interrupted or corrupted download never leaves a file that looks complete.
"""

import hashlib
import os
import pathlib
import sys
import tempfile
import urllib.error
import urllib.request

_CHUNK = 1 << 20  # 1 MiB: the unit of streaming, hashing and progress


class DatasetNotFoundError(FileNotFoundError):
    """A dataset file is on no searched path and could not be downloaded."""


class ChecksumError(OSError):
    """A downloaded file's checksum differs from the published one."""


def cache_dir():
    """The user cache folder of npcnn: ``$XDG_CACHE_HOME/npcnn`` or ``~/.cache/npcnn``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(base) / "npcnn"


def search_roots(root=None):
    """The folders searched for dataset files, in order (see the module docstring)."""
    if root is not None:
        return [pathlib.Path(root).expanduser()]
    roots = [pathlib.Path(p).expanduser() for p in os.environ.get("NPCNN_DATA", "").split(os.pathsep) if p]
    return roots + [cache_dir()]


def download_root(root=None):
    """The folder a missing file is downloaded into: ``root`` if given, else the user cache."""
    return pathlib.Path(root).expanduser() if root is not None else cache_dir()


def candidates(filename, folders, root=None):
    """Every path where ``filename`` may be, in search order: each root, first inside each of
    the dataset's sub-folder names (``folders``), then flat in the root."""
    paths = []
    for base in search_roots(root):
        paths += [base / folder / filename for folder in folders]
        paths.append(base / filename)
    return paths


def locate(filename, folders, root=None):
    """The first existing path of ``filename`` (see :func:`candidates`), or None."""
    for path in candidates(filename, folders, root):
        if path.is_file():
            return path
    return None


def file_digest(path, algorithm="sha256"):
    """Hex digest of a file, read in chunks (``algorithm`` is any hashlib name: sha256, md5)."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


class _Progress:
    """A one-line text progress bar on stderr: ``name  [=====>    ]  45%  4.5/9.9 MB``."""

    def __init__(self, name, total, enabled):
        self.name, self.total, self.enabled, self.done = name, total, enabled, 0

    def update(self, n):
        self.done += n
        if not self.enabled:
            return
        mb = self.done / 1e6
        if self.total:
            frac = min(self.done / self.total, 1.0)
            bar = "=" * int(30 * frac)
            line = f"\r{self.name}  [{bar:<30}] {100 * frac:5.1f}%  {mb:.1f}/{self.total / 1e6:.1f} MB"
        else:
            line = f"\r{self.name}  {mb:.1f} MB"
        sys.stderr.write(line)
        sys.stderr.flush()

    def close(self):
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _fetch(url, dest, checksums, progress, opener):
    """Stream one URL to a temporary file beside ``dest``, check it, then move it into place."""
    hashes = {name: hashlib.new(name) for name in checksums}
    fd, tmp = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out, opener(url) as response:
            length = response.headers.get("Content-Length") if getattr(response, "headers", None) else None
            bar = _Progress(dest.name, int(length) if length else None, progress)
            try:
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    out.write(chunk)
                    for h in hashes.values():
                        h.update(chunk)
                    bar.update(len(chunk))
            finally:
                bar.close()
        for name, expected in checksums.items():
            got = hashes[name].hexdigest()
            if got != expected.lower():
                raise ChecksumError(f"{url}: {name} checksum mismatch (expected {expected}, got {got})")
        os.replace(tmp, dest)  # atomic on one file system: dest is either absent or complete
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def download(urls, dest, sha256=None, md5=None, progress=True, opener=None):
    """Download the first working URL of ``urls`` to ``dest`` (a path), checking its checksum(s).

    Each mirror is tried in turn; network errors and checksum mismatches move on to the next.
    If all fail, raises :class:`DatasetNotFoundError` listing each URL and why it failed (never a
    bare ``urllib`` traceback). The file appears at ``dest`` only once complete and verified.

    Args:
        urls: one URL or a list of mirrors, tried in order.
        dest: the file to write.
        sha256, md5: expected hex digests (either, both or neither); a mismatch rejects the mirror.
        progress: draw a progress bar on stderr.
        opener: ``opener(url)`` returns a file-like response (default ``urllib.request.urlopen``
            with a 60 s timeout; tests pass their own, or use ``file://`` URLs).

    Returns:
        ``dest`` as a ``pathlib.Path``.
    """
    opener = opener or (lambda url: urllib.request.urlopen(url, timeout=60))
    dest = pathlib.Path(dest)
    checksums = {k: v for k, v in (("sha256", sha256), ("md5", md5)) if v}
    failures = []
    for url in [urls] if isinstance(urls, str) else urls:
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            _fetch(url, dest, checksums, progress, opener)
            return dest
        except (urllib.error.URLError, OSError, ValueError, EOFError) as err:  # next mirror
            failures.append(f"  {url}: {getattr(err, 'reason', None) or err}")
    raise DatasetNotFoundError(f"could not download {dest.name}; every mirror failed:\n" + "\n".join(failures))


def fetch(filename, folders, urls, root=None, download_missing=True, sha256=None, md5=None, progress=True,
          what="dataset"):
    """The path of ``filename``: found on disk (:func:`locate`) or downloaded into the first
    sub-folder of ``folders`` under :func:`download_root`.

    Args:
        filename: the file's name, e.g. ``"t10k-labels-idx1-ubyte.gz"``.
        folders: the dataset's sub-folder names searched under each root (the first one is
            where a download goes).
        urls: mirrors to download from when the file is on no searched path.
        root: a folder searched instead of ``NPCNN_DATA`` and the user cache.
        download_missing: False raises instead of downloading.
        sha256, md5, progress: as in :func:`download`.
        what: the dataset's name, for messages.

    Raises :class:`DatasetNotFoundError` saying where it looked and how to provide the file.
    """
    found = locate(filename, folders, root)
    if found is not None:
        return found
    looked = "\n".join(f"  {p}" for p in candidates(filename, folders, root))
    target = download_root(root) / folders[0] / filename
    how = ("Put the file in one of those places (or set NPCNN_DATA to a folder holding it, or pass root=), "
           "or allow the download (download=True) from:\n" + "\n".join(f"  {u}" for u in urls))
    if not download_missing:
        raise DatasetNotFoundError(f"{what}: {filename} not found (download=False). Looked in:\n{looked}\n{how}")
    try:
        return download(urls, target, sha256=sha256, md5=md5, progress=progress)
    except DatasetNotFoundError as err:
        raise DatasetNotFoundError(f"{what}: {filename} not found. Looked in:\n{looked}\nand {err}\n{how}") from None
