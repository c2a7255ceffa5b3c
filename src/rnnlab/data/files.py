"""Finding, downloading (SHA-256 checked) and reading data files.

Files are found under ``data.dir``, else ``$RNNLAB_DATA_DIR``, else the cache (``$RNNLAB_CACHE_DIR``
or ``~/.cache/rnnlab/data``) where a missing file is downloaded from its public URL and checked
against its SHA-256.
"""
from __future__ import annotations

import hashlib
import logging
import os
import sys
import urllib.request
from pathlib import Path

from .. import RnnlabError
from .corpus import cfg_get

log = logging.getLogger(__name__)


def cache_dir() -> Path:
    """Where downloads go: ``$RNNLAB_CACHE_DIR`` or ``~/.cache/rnnlab/data``."""
    return Path(os.environ.get("RNNLAB_CACHE_DIR") or Path.home() / ".cache" / "rnnlab" / "data").expanduser()


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fetch(url: str, dest: Path) -> None:
    """Copy ``url`` to ``dest`` (tests replace this function: they never download)."""
    with urllib.request.urlopen(url, timeout=60) as r, open(dest, "wb") as f:
        while block := r.read(1 << 20):
            f.write(block)


def download(url: str, dest, sha256: str) -> Path:
    """Download ``url`` to ``dest`` via a ``.part`` file; keep it only if its SHA-256 is ``sha256``."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    log.info("downloading %s -> %s", url, dest)
    try:
        _fetch(url, part)
    except Exception as e:  # noqa: BLE001  (any network or file error: one clear line)
        part.unlink(missing_ok=True)
        reason = (str(e).splitlines() or [type(e).__name__])[0]
        raise RnnlabError(f"could not download {url} to {dest} ({reason}); check the network, or set data.dir "
                          f"or RNNLAB_DATA_DIR to a folder that holds the file") from None
    return _keep_checked(part, dest, sha256, f"download of {url}")


def _keep_checked(part: Path, dest: Path, sha256: str, what: str) -> Path:
    """Rename ``part`` to ``dest`` if its SHA-256 is ``sha256``; else delete it and raise."""
    got = sha256_file(part)
    if got != sha256:
        part.unlink(missing_ok=True)
        raise RnnlabError(f"{what} has SHA-256 {got}, expected {sha256}; the file was deleted, "
                          f"retry or put a verified copy under data.dir or RNNLAB_DATA_DIR")
    os.replace(part, dest)
    return dest


def _data_root(cfg) -> tuple[Path, bool]:
    """(folder, from_cache): ``data.dir``, else ``$RNNLAB_DATA_DIR``, else the download cache."""
    d = str(cfg_get(cfg, "dir", ""))
    if d:
        root = Path(d).expanduser()
        if not root.is_dir():
            raise RnnlabError(f"data.dir={d!r} is not a folder; give the folder that holds ptb/, ptb_char/, ... "
                              f"or '' to use RNNLAB_DATA_DIR or the download cache")
        return root, False
    env = os.environ.get("RNNLAB_DATA_DIR", "")
    if env:
        return Path(env).expanduser(), False
    return cache_dir(), True


def download_member(url: str, member: str, dest, sha256: str) -> Path:
    """Download the zip archive ``url`` and keep its member ``member`` as ``dest`` only if the member's
    SHA-256 is ``sha256`` (the archive is deleted; its own hash is not checked, the member's is)."""
    import zipfile

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    archive, part = dest.with_name(dest.name + ".zip.part"), dest.with_name(dest.name + ".part")
    log.info("downloading %s (member %s) -> %s", url, member, dest)
    try:
        _fetch(url, archive)
        with zipfile.ZipFile(archive) as z, z.open(member) as src, open(part, "wb") as f:
            while block := src.read(1 << 20):
                f.write(block)
    except Exception as e:  # noqa: BLE001  (network, zip or missing-member error: one clear line)
        part.unlink(missing_ok=True)
        reason = (str(e).splitlines() or [type(e).__name__])[0]
        raise RnnlabError(f"could not get {member} of {url} to {dest} ({reason}); check the network, or set "
                          f"data.dir or RNNLAB_DATA_DIR to a folder that holds the file") from None
    finally:
        archive.unlink(missing_ok=True)
    return _keep_checked(part, dest, sha256, f"{member} of {url}")


def locate(cfg, rel: str, source: tuple[str, str], member: str = "") -> Path:
    """Path of data file ``rel``; downloads it from ``source`` = (URL, SHA-256 of the file) into the cache
    when that is where files come from. With ``member``, URL is a zip archive and the file is that member."""
    url, sha = source
    root, from_cache = _data_root(cfg)
    path = root / rel
    if path.is_file():
        return path
    if from_cache:
        return download_member(url, member, path, sha) if member else download(url, path, sha)
    raise RnnlabError(f"data file {path} not found; put {rel} under data.dir or RNNLAB_DATA_DIR "
                      f"(now {root}), or leave both unset to download it from {url}")


# Above this size a text file gets a warning line: reading, tokenizing, building the vocabulary and
# encoding run in Python with no progress bar (measured: about 0.45 s per MB at word level and 0.3 s
# per MB at char level on a 2-core CPU, so a 1 GB corpus takes minutes before training starts).
LARGE_TEXT_BYTES = 50 << 20
BOM = "\ufeff"


def normalize_text(text: str) -> tuple[str, str]:
    """(text, what was changed): a leading UTF-8 byte-order mark removed and CRLF / lone CR line
    endings made LF, as Python's text mode (universal newlines, ``utf-8-sig``) reads a file; so a
    Windows file gives the same tokens as its Unix copy (no ``'\\r'`` token, no BOM character in the
    vocabulary). The description is '' when nothing changed."""
    notes = []
    if text.startswith(BOM):
        text = text[1:]
        notes.append("UTF-8 byte-order mark removed")
    crlf, cr = text.count("\r\n"), 0
    if "\r" in text:
        text = text.replace("\r\n", "\n")
        cr = text.count("\r")
        text = text.replace("\r", "\n")
    if crlf or cr:
        notes.append(f"line endings made LF ({crlf} CRLF, {cr} CR)")
    return text, "; ".join(notes)


def read_text(path, notes: dict | None = None) -> str:
    """The UTF-8 text of ``path`` with line endings made LF and a BOM removed (``normalize_text``;
    ``notes[str(path)]`` says what changed, for the run's summary); RnnlabError if it is missing,
    empty, binary or not UTF-8. A file over ``LARGE_TEXT_BYTES`` gets one warning line on stderr."""
    path = Path(path)
    if not path.is_file():
        raise RnnlabError(f"text file {path} not found; give an existing UTF-8 text file")
    size = path.stat().st_size
    if size > LARGE_TEXT_BYTES:
        print(f"warning: {path} is {size / (1 << 20):,.0f} MB; reading it, building the vocabulary and encoding it "
              f"take about {0.45 * size / (1 << 20):,.0f} s at word level (no progress is shown)", file=sys.stderr,
              flush=True)
    raw = path.read_bytes()
    if b"\x00" in raw[: 1 << 20]:
        raise RnnlabError(f"{path} looks binary (it has NUL bytes); give a UTF-8 text file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RnnlabError(f"{path} is not UTF-8 (invalid byte at offset {e.start}); give a UTF-8 text file "
                          f"(convert it, e.g. with iconv -t utf-8)") from None
    text, changed = normalize_text(text)
    if changed and notes is not None:
        notes[str(path)] = changed
    if not text.strip():
        raise RnnlabError(f"{path} is empty; give a text file with some tokens")
    return text
