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


# The tiny run of tests/_tiny.py, shared by the resume and reliability tests (read-only there: tests
# that change a run copy it first).
@pytest.fixture(scope="session")
def reference(tmp_path_factory):
    """An uninterrupted tiny run: (its directory, its summary)."""
    from _tiny import tiny_config
    from rnnlab.train import train_and_evaluate

    wd = tmp_path_factory.mktemp("ref") / "run"
    return wd, train_and_evaluate(tiny_config(), wd)


@pytest.fixture(scope="session")
def stopped13(tmp_path_factory):
    """The tiny run stopped in its 13th step: checkpoints 5 and 10, metrics logged up to step 12."""
    from _tiny import interrupted_run

    wd = tmp_path_factory.mktemp("stopped") / "run"
    with pytest.MonkeyPatch.context() as mp:
        interrupted_run(mp, wd, "step", 13)
    return wd
