"""The run directory: provenance (parameter hash, git commit, versions), config.json checks, and
what a finished run left (summary.json)."""
from __future__ import annotations

import hashlib
import json
import platform
import subprocess
from pathlib import Path

import flax
import jax
import numpy as np
import optax

from . import RnnlabError, faults
from .config import to_dict
from .tracking import write_json


def params_sha256(params) -> str:
    """Hash of the parameters (names, dtypes, shapes and bytes), so two runs compare exactly."""
    h = hashlib.sha256()
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        a = np.asarray(leaf)
        h.update(jax.tree_util.keystr(path).encode())
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def git_commit() -> str:
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10)
        if sha.returncode != 0:
            return "unknown"
        return sha.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def environment() -> dict:
    d = jax.devices()[0]
    return {"device": f"{d.platform}:{d.device_kind}", "jax_version": jax.__version__,
            "flax_version": flax.__version__, "optax_version": optax.__version__,
            "python_version": platform.python_version(), "git_commit": git_commit()}


# ----------------------------------------------------------------------------- run directory
# Fields that may differ between two invocations of the same run (where output goes, how it is shown).
RUN_NEUTRAL = {("train", "progress"), ("data", "dir"), ("wandb", "mode"), ("wandb", "project"),
               ("wandb", "group"), ("wandb", "name"), ("wandb", "entity")}


def _diff(a: dict, b: dict, prefix=()) -> list[str]:
    out = []
    for k in sorted(set(a) | set(b)):
        key = prefix + (k,)
        if key in RUN_NEUTRAL:
            continue
        va, vb = a.get(k, "<missing>"), b.get(k, "<missing>")
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _diff(va, vb, key)
        elif va != vb:
            out.append(f"{'.'.join(key)}: {va!r} -> {vb!r}")
    return out


def check_workdir_config(workdir: Path, cfg, write: bool = True) -> None:
    """Refuse a run directory that holds a different run's config; else write config.json."""
    path = workdir / "config.json"
    new = to_dict(cfg)
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except json.JSONDecodeError:
            raise RnnlabError(f"{path} is not valid JSON; move the run directory away or use another --workdir")
        diff = _diff(old, new)
        if diff:
            shown = "; ".join(diff[:3]) + (f"; and {len(diff) - 3} more" if len(diff) > 3 else "")
            raise RnnlabError(f"workdir {workdir} holds a different run's config ({shown}); "
                              f"use another --workdir or the same config")
    if write:
        write_json(path, new)



def finished_summary(workdir) -> dict | None:
    """The run's summary.json if it says status finished, else None."""
    path = Path(workdir) / "summary.json"
    if path.exists():
        try:
            done = json.loads(path.read_text())
        except json.JSONDecodeError:
            return None
        if done.get("status") == "finished":
            return done
    return None



def start_run_dir(workdir, cfg, setup) -> None:
    """Create the run directory and write config.json and vocab.json (once config and data are good)."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    check_workdir_config(workdir, cfg)
    faults.check_vocab(workdir, setup.corpus.vocab.to_json())  # a resumed run must see the same vocabulary
    write_json(workdir / "vocab.json", setup.corpus.vocab.to_json())

