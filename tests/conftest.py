"""Shared test set-up: strict numpy semantics, fp32, and where the real corpora live."""
from __future__ import annotations

import os
from pathlib import Path

import jax
import pytest

# Strict (DESIGN.md convention 14): implicit rank promotion ([B, H] + [H]) is an error, and
# float64 stays off so the tests see the same fp32 arithmetic as training.
jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_enable_x64", False)

# ../shared/data next to the repository (see its README); tests never download.
DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"
if DATA_DIR.is_dir() and "RNNLAB_DATA_DIR" not in os.environ:
    os.environ["RNNLAB_DATA_DIR"] = str(DATA_DIR)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The folder with the real corpora (ptb, ptb_char, ...); skips the test when it is missing."""
    path = Path(os.environ.get("RNNLAB_DATA_DIR", DATA_DIR))
    if not path.is_dir():
        pytest.skip(f"no corpus folder at {path}")
    return path
