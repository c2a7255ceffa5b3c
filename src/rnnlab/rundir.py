"""The run directory: provenance (parameter hash, git commit, versions), config.json checks, and
what a finished run left (summary.json); one training process at a time (``claim_run_dir``).

What a folder must be to be trained in (``check_workdir_config``): missing or empty; or an rnnlab
run directory (it holds one of ``RUN_MARKERS``) whose config.json, and the config kept in its newest
checkpoint, equal the config given (fields in ``RUN_NEUTRAL`` aside). A folder with other files and
none of the markers (another tool's metrics.jsonl, a study folder) is refused, never overwritten;
so is a run directory whose checkpoints were trained with another config, config.json or not.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import socket
import subprocess
from pathlib import Path

import flax
import jax
import numpy as np
import optax

from . import RnnlabError, faults
from .config import base_config, to_dict
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


def _default(key: tuple):
    """The base_config() value of a dotted key (a tuple of names), or '<missing>'."""
    node = to_dict(base_config())
    for name in key:
        if not isinstance(node, dict) or name not in node:
            return "<missing>"
        node = node[name]
    return node


def _diff(a: dict, b: dict, prefix=()) -> list[str]:
    """Fields that differ between configs a (the run's) and b; a field that a lacks (written before the
    field existed) counts as its default, which is how the code that wrote it behaved."""
    out = []
    for k in sorted(set(a) | set(b)):
        key = prefix + (k,)
        if key in RUN_NEUTRAL:
            continue
        va, vb = a.get(k, "<missing>"), b.get(k, "<missing>")
        if va == "<missing>" and vb == _default(key):
            continue
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _diff(va, vb, key)
        elif va != vb:
            out.append(f"{'.'.join(key)}: {va!r} -> {vb!r}")
    return out


# What only rnnlab writes in a run directory (train, sweep members, the sweep's failure record).
RUN_MARKERS = ("config.json", "checkpoints", "vocab.json", "wandb_run.json", "error.txt", ".train.lock",
               ".sweep.lock")


def _check_is_run_dir(workdir: Path) -> None:
    """Refuse a non-empty folder that is not an rnnlab run directory (nothing of it is overwritten)."""
    if not workdir.is_dir():
        return
    entries = sorted(p.name for p in workdir.iterdir())
    if entries and not any(m in entries for m in RUN_MARKERS):
        shown = ", ".join(entries[:4]) + (f" and {len(entries) - 4} more" if len(entries) > 4 else "")
        raise RnnlabError(f"workdir {workdir} is not empty and is not an rnnlab run directory (no config.json or "
                          f"checkpoints; it holds {shown}); use a new or empty --workdir")


def check_workdir_config(workdir: Path, cfg, write: bool = True) -> None:
    """Refuse a folder that is not an rnnlab run, or a run directory that holds a different run's
    config (in config.json or in its newest checkpoint's meta); else write config.json."""
    from .checkpoint import checkpoint_config

    workdir = Path(workdir)
    _check_is_run_dir(workdir)
    path = workdir / "config.json"
    new = to_dict(cfg)
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except json.JSONDecodeError:
            raise RnnlabError(f"{path} is not valid JSON; move the run directory away or use another --workdir")
        _refuse_diff(workdir, _diff(old, new), "config")
    kept, name = checkpoint_config(workdir)
    if kept is not None:
        _refuse_diff(workdir, _diff(kept, new), f"checkpoint {name} (its config)")
    elif name is not None and not path.exists():
        raise RnnlabError(f"workdir {workdir} has checkpoints but no config.json, and checkpoint {name} keeps no "
                          f"config: which config trained it is unknown; restore config.json or use another --workdir")
    if write:
        write_json(path, new)


def _refuse_diff(workdir, diff: list[str], what: str) -> None:
    if diff:
        shown = "; ".join(diff[:3]) + (f"; and {len(diff) - 3} more" if len(diff) > 3 else "")
        raise RnnlabError(f"workdir {workdir} holds a different run's {what} ({shown}); "
                          f"use another --workdir or the same config")


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



IO_FILE = "io.json"


def start_run_dir(workdir, cfg, setup) -> None:
    """Create the run directory and write config.json, io.json (the kind of sequence and the model's
    input/output sizes: what ``runs.load_run`` rebuilds the model from) and, for token data,
    vocab.json (once config and data are good)."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    check_workdir_config(workdir, cfg)
    vocab = setup.corpus.vocab
    if vocab is not None:
        faults.check_vocab(workdir, vocab.to_json())  # a resumed run must see the same vocabulary
        write_json(workdir / "vocab.json", vocab.to_json())
    write_json(workdir / IO_FILE, {"kind": setup.kind.name, **setup.kind.model_io(setup.corpus)})



# ----------------------------------------------------------------------------- one process per run
LOCK_FILE = ".train.lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def lock_holder(path) -> str | None:
    """Who holds the lock file ``path`` (``host pid``): None when nobody does, or when it is this
    process, or a process of this host that is gone (a stale lock)."""
    try:
        host, pid = Path(path).read_text().split()
        pid = int(pid)
    except (OSError, ValueError):
        return None  # absent, torn or unreadable: nobody holds it
    if host == socket.gethostname() and (pid == os.getpid() or pid <= 0 or not _alive(pid)):
        return None
    return f"host {host} pid {pid}"


def take_lock(path) -> str | None:
    """Create the lock file ``path`` holding ``host pid`` (O_EXCL, so two processes cannot both get
    it); a stale one is taken over. -> None when taken, else who holds it."""
    path = Path(path)
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            holder = lock_holder(path)
            if holder:
                return holder
            path.unlink(missing_ok=True)  # stale (or ours from an earlier call): take it over
            continue
        with os.fdopen(fd, "w") as f:
            f.write(f"{socket.gethostname()} {os.getpid()}")
        return None
    return "another process"


def drop_lock(path) -> None:
    """Remove the lock file ``path`` if this process holds it."""
    path = Path(path)
    try:
        if path.read_text().split() == [socket.gethostname(), str(os.getpid())]:
            path.unlink()
    except (OSError, ValueError):
        pass


class RunDirLock:
    """This process trains ``workdir`` until ``release()`` (``<workdir>/.train.lock``). A folder that
    the claim created and that is still empty when released (the run was refused before it wrote
    anything) is removed."""

    def __init__(self, workdir, created: bool = False):
        self.path, self.created = Path(workdir) / LOCK_FILE, created

    def release(self) -> None:
        drop_lock(self.path)
        if self.created:
            try:
                self.path.parent.rmdir()  # only if empty
            except OSError:
                pass


def claim_run_dir(workdir) -> RunDirLock:
    """One training process per run directory: take ``<workdir>/.train.lock`` (a lock whose process is
    gone is taken over), or raise one line naming the live process that holds it (or a sweep member's
    ``.sweep.lock``). Creates the folder."""
    workdir = Path(workdir)
    path = workdir / ".sweep.lock"
    holder = lock_holder(path)
    created = not workdir.exists()
    if holder is None:
        path = workdir / LOCK_FILE
        try:
            workdir.mkdir(parents=True, exist_ok=True)
            holder = take_lock(path)
        except OSError as e:  # a file in the way, no permission, a full disk: one line
            raise RnnlabError(faults.io_error_message(e, f"could not write to run directory {workdir}")) from None
    if holder:
        raise RnnlabError(f"workdir {workdir} is being trained by another process ({holder}); wait for it to end "
                          f"(re-running then resumes or reports it), or remove {path} if that process is gone")
    return RunDirLock(workdir, created)
