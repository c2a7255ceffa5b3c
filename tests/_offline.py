"""Shared by the data tests (import ``no_download`` into a test module to turn it on there): no test
downloads, and each test sees a fresh, empty download cache."""
from __future__ import annotations

from pathlib import Path

import pytest

from rnnlab import data


@pytest.fixture(autouse=True)
def no_download(monkeypatch, tmp_path):
    """Any download attempt fails, and the cache is a fresh empty folder."""
    def fail(url, dest):
        raise OSError(f"tests never download ({url})")

    monkeypatch.setattr(data.files, "_fetch", fail)
    monkeypatch.setenv("RNNLAB_CACHE_DIR", str(tmp_path / "cache"))


def folder_with(data_dir: Path, rel: str) -> Path:
    """``data_dir`` (conftest's corpus folder) if it holds ``rel``; skips the test otherwise."""
    if not (data_dir / rel).is_file():
        pytest.skip(f"no {rel} under {data_dir}")
    return data_dir
