"""Checkpoints with orbax's CheckpointManager: save every N steps and at epoch ends, keep the last
k, keep the best by validation perplexity in its own folder, restore the latest to resume.

A checkpoint holds two items: ``state`` (parameters, optimizer state, step, and the carries, so a
run resumed mid-epoch continues the data stream exactly) and ``meta`` (JSON: the host-side loop
state: best validation perplexity, per-epoch history, running metric sums, elapsed time; and
``config``, the run's config.json, so a run directory that lost its config.json still says which
config trained it: ``checkpoint_config``).
The data position and every schedule are functions of ``state.step``, so nothing else is needed.
Saves are synchronous: when ``save`` returns, the checkpoint is complete on disk (orbax writes to a
temporary folder and renames it, so a killed save never looks complete; leftover temporary folders
are removed when the next process opens the managers), and durable: ``metrics.jsonl`` (what the
checkpoint covers), the checkpoint's files and its folder's entry are fsynced, so a power loss
after ``save`` returns loses neither.

Faults (see faults.py): ``save`` writes best/ before latest/, so a kill between the two leaves the
newer step in best/, and ``resume`` considers both. ``resume`` restores the newest checkpoint that
reads back whole; a corrupt or partial one (truncated file, missing item, unreadable JSON) is moved
to ``checkpoints/unusable/`` with a warning and the previous one is used; when none is usable it
says so in one line. A checkpoint that reads back but does not fit the config (parameter shapes,
vocabulary size, optimizer state) is refused, not skipped. A failed save (full disk, ...) removes
its temporary folder and raises one line naming the step, the reason and the last complete
checkpoint.
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp

from . import RnnlabError
from .faults import fsync_path, io_error_message


def _manager(directory: Path, keep: int) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True, enable_async_checkpointing=False,
                                           cleanup_tmp_directories=True)
    return ocp.CheckpointManager(directory.absolute(), options=options)


def _host(tree):
    return jax.tree_util.tree_map(np.asarray, tree)


class CheckpointMismatch(RnnlabError):
    """A checkpoint that reads back but does not fit the model/optimizer the config builds."""


def _save_args(host_state, meta):
    return ocp.args.Composite(state=ocp.args.StandardSave(host_state), meta=ocp.args.JsonSave(meta))


def _warn(msg: str) -> None:
    print(f"warning: {msg}", file=sys.stderr, flush=True)


def _one_line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return f"{type(e).__name__}: {lines[0][:160] if lines else ''}".rstrip(": ")


def _quiet_closed_loop_errors() -> None:
    """After a failed read of a damaged checkpoint, tensorstore finishes the reads still in flight
    and calls back into the event loop orbax has already closed; asyncio raises 'Event loop is
    closed' in tensorstore's thread, which Python prints as an 'Exception ignored' traceback on
    stderr. Drop exactly that exception (it is harmless: the read had already failed)."""
    previous = sys.unraisablehook
    if getattr(previous, "_rnnlab_quiet", False):
        return

    def hook(unraisable):
        e = unraisable.exc_value
        if isinstance(e, RuntimeError) and str(e) == "Event loop is closed":
            return
        previous(unraisable)

    hook._rnnlab_quiet = True
    sys.unraisablehook = hook


def _is_tree_mismatch(e: BaseException) -> bool:
    return isinstance(e, ValueError) and "tree structures do not match" in str(e)


def _check_fits(state, target, name: str, directory) -> None:
    """Same tree, shapes and dtypes as ``target`` (orbax restores the saved shapes silently)."""
    got = jax.tree_util.tree_flatten_with_path(state)[0]
    want = jax.tree_util.tree_flatten_with_path(target)[0]
    if [p for p, _ in got] != [p for p, _ in want]:
        raise CheckpointMismatch(f"checkpoint {name} in {directory} does not match this config: its state tree "
                                 f"differs; use another --workdir (a run directory holds one run)")
    for (path, a), (_, b) in zip(got, want):
        a_shape, b_shape = np.shape(a), np.shape(b)
        a_dtype, b_dtype = np.asarray(a).dtype, np.asarray(b).dtype
        if a_shape != b_shape or a_dtype != b_dtype:
            key = jax.tree_util.keystr(path)
            hint = (" (the vocabulary size differs: the data changed since the checkpoint)"
                    if "embed" in key.lower() or "readout" in key.lower() else "")
            raise CheckpointMismatch(
                f"checkpoint {name} in {directory} does not match the config and data: {key} is "
                f"{a_dtype}{list(a_shape)} there, {b_dtype}{list(b_shape)} here{hint}; use another --workdir "
                f"or the config and data that wrote it")


_META_KEYS = ("history", "acc", "train_time", "train_tokens", "wall_s")  # + best_val_<ppl | nll> (the kind's)


def _check_sound(state, meta) -> None:
    """A restored checkpoint must be whole: every meta field, finite numbers everywhere."""
    if (not isinstance(meta, dict) or any(k not in meta for k in _META_KEYS)
            or not any(str(k).startswith("best_val_") for k in meta)):
        raise ValueError("meta item is incomplete")
    for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
        a = np.asarray(leaf)
        if np.issubdtype(a.dtype, np.floating) and not np.all(np.isfinite(a)):
            raise ValueError(f"non-finite values in {jax.tree_util.keystr(path)}")


def checkpoint_config(workdir) -> tuple[dict | None, str | None]:
    """(config, 'latest/<step>') kept in the meta of the run's newest checkpoint (latest/ or best/),
    read as plain JSON without orbax; (None, name) when that checkpoint has no config (written before
    checkpoints kept it) or its meta is unreadable; (None, None) when there is no checkpoint."""
    ck = Path(workdir) / "checkpoints"
    found = sorted(((int(p.name), p) for sub in ("latest", "best") if (ck / sub).is_dir()
                    for p in (ck / sub).iterdir() if p.name.isdigit()), key=lambda t: -t[0])
    for _, p in found:
        name = f"{p.parent.name}/{p.name}"
        try:
            meta = json.loads((p / "meta" / "metadata").read_text())
        except (OSError, ValueError):
            continue  # damaged: resume sets it aside; an older one may say
        config = meta.get("config") if isinstance(meta, dict) else None
        return (config, name) if isinstance(config, dict) else (None, name)
    return None, None


class Checkpointer:
    """``config``: the run's config (``config.to_dict``), kept in every checkpoint's meta."""

    def __init__(self, workdir, keep: int = 2, config: dict | None = None):
        self.config = config
        self.dir = Path(workdir) / "checkpoints"
        self.latest = _manager(self.dir / "latest", max(1, keep))
        self.best = _manager(self.dir / "best", 1)

    def save(self, step: int, state, meta: dict, *, best: bool = False) -> None:
        """Save ``state`` and ``meta`` as step ``step`` in latest/ (and in best/ when ``best``).
        best/ goes first: a kill between the two saves leaves the newer step there (resume finds
        it). Any failure raises RnnlabError (one line) after removing the partial save."""
        host = _host(state)
        if self.config is not None:
            meta = dict(meta, config=self.config)
        fsync_path(self.dir.parent / "metrics.jsonl")  # the lines this checkpoint covers survive a power loss
        try:
            if best and (self.best.latest_step() is None or self.best.latest_step() < step):
                self.best.save(step, args=_save_args(host, meta), force=True)
                self.best.wait_until_finished()
            if self.latest.latest_step() != step:
                self.latest.save(step, args=_save_args(host, meta), force=True)
                self.latest.wait_until_finished()
            for sub in ("best", "latest"):  # the files, then the folder entry of the rename
                if (self.dir / sub / str(step)).is_dir():
                    fsync_path(self.dir / sub / str(step))
                    fsync_path(self.dir / sub, recursive=False)
        except Exception as e:  # noqa: BLE001 (full disk, permissions, tensorstore errors: one line)
            self.remove_temporary()
            last = self.latest_complete_step()
            kept = (f"the last complete checkpoint (step {last}) and the metrics logged so far are intact"
                    if last is not None else "no earlier checkpoint exists; the metrics logged so far are intact")
            raise RnnlabError(io_error_message(e, f"could not save checkpoint step {step} in {self.dir}") +
                              f"; {kept}; fix the cause and re-run the same command to resume") from None

    def remove_temporary(self) -> None:
        """Delete the temporary folders of unfinished saves (a failed or killed save leaves one)."""
        for sub in (self.dir / "latest", self.dir / "best"):
            if sub.is_dir():
                for p in sub.iterdir():
                    if ".orbax-checkpoint-tmp" in p.name:
                        shutil.rmtree(p, ignore_errors=True)

    def latest_complete_step(self):
        steps = [s for s in (self.latest.latest_step(), self.best.latest_step()) if s is not None]
        return max(steps) if steps else None

    def candidates(self) -> list[tuple[int, str]]:
        """(step, 'latest' | 'best') of every finalized checkpoint, newest first (latest/ before best/)."""
        self.latest.reload()
        self.best.reload()
        found = [(s, "latest") for s in self.latest.all_steps()] + [(s, "best") for s in self.best.all_steps()]
        return sorted(found, key=lambda c: (-c[0], c[1] != "latest"))

    def resume(self, target_state, warn=None):
        """-> (state, meta, step) of the newest usable checkpoint, or None when there is none.

        A checkpoint that cannot be read back whole is moved to checkpoints/unusable/ (after a
        usable one is found) with one warning line, and the next older one is tried; if none is
        usable, RnnlabError says so (nothing is moved). A checkpoint that reads back but does not
        fit ``target_state`` raises RnnlabError at once (a different model or data, not damage)."""
        warn = warn or _warn
        bad = []
        for step, which in self.candidates():
            try:
                state, meta = self.restore(target_state, step, which=which)
                _check_fits(state, target_state, f"{which}/{step}", self.dir)
                _check_sound(state, meta)
            except CheckpointMismatch:
                raise
            except Exception as e:  # noqa: BLE001 (orbax/tensorstore/json errors of a damaged checkpoint)
                if _is_tree_mismatch(e):
                    raise CheckpointMismatch(
                        f"checkpoint {which}/{step} in {self.dir} does not match this config: its parameter or "
                        f"optimizer-state tree differs; use another --workdir (a run directory holds one run)") from None
                _quiet_closed_loop_errors()
                bad.append((which, step, _one_line(e)))
                continue
            if bad:
                moved = [self._set_aside(w, s) for w, s, _ in bad]
                shown = "; ".join(f"{w}/{s}: {r}" for w, s, r in bad)
                warn(f"unusable checkpoint(s) in {self.dir} ({shown[:400]}); moved to {moved[0].parent}; "
                     f"resuming from {which}/{step}")
            return state, meta, step
        if bad:
            shown = "; ".join(f"{w}/{s}: {r}" for w, s, r in bad)
            raise RnnlabError(f"no usable checkpoint in {self.dir} ({shown[:400]}); move {self.dir} away to "
                              f"train this run from the start")
        return None

    def _set_aside(self, which: str, step: int) -> Path:
        dest_dir = self.dir / "unusable"
        dest_dir.mkdir(parents=True, exist_ok=True)
        dest = dest_dir / f"{which}_{step}"
        k = 1
        while dest.exists():
            dest, k = dest_dir / f"{which}_{step}.{k}", k + 1
        (self.dir / which / str(step)).rename(dest)
        (self.latest if which == "latest" else self.best).reload()
        return dest

    def latest_step(self):
        return self.latest.latest_step()

    def restore(self, target_state, step: int | None = None, *, which: str = "latest"):
        """-> (state, meta) of the given (default: latest) checkpoint, shaped like target_state."""
        mgr = self.latest if which == "latest" else self.best
        step = mgr.latest_step() if step is None else step
        if step is None:
            return None
        abstract = jax.tree_util.tree_map(np.asarray, target_state)
        out = mgr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract),
                                                         meta=ocp.args.JsonRestore()))
        return out.state, out.meta

    def close(self):
        self.latest.close()
        self.best.close()
