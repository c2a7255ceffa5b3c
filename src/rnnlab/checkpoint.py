"""Checkpoints with orbax's CheckpointManager: save every N steps and at epoch ends, keep the last
k, keep the best by validation perplexity in its own folder, restore the latest to resume.

A checkpoint holds two items: ``state`` (parameters, optimizer state, step, and the carries, so a
run resumed mid-epoch continues the data stream exactly) and ``meta`` (JSON: the host-side loop
state: best validation perplexity, per-epoch history, running metric sums, elapsed time).
The data position and every schedule are functions of ``state.step``, so nothing else is needed.
Saves are synchronous: when ``save`` returns, the checkpoint is complete on disk (orbax writes to a
temporary folder and renames it, so a killed save never looks complete).
"""
from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp


def _manager(directory: Path, keep: int) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True, enable_async_checkpointing=False)
    return ocp.CheckpointManager(directory.absolute(), options=options)


def _host(tree):
    return jax.tree_util.tree_map(np.asarray, tree)


class Checkpointer:
    def __init__(self, workdir, keep: int = 2):
        self.dir = Path(workdir) / "checkpoints"
        self.latest = _manager(self.dir / "latest", max(1, keep))
        self.best = _manager(self.dir / "best", 1)

    def save(self, step: int, state, meta: dict, *, best: bool = False) -> None:
        args = ocp.args.Composite(state=ocp.args.StandardSave(_host(state)), meta=ocp.args.JsonSave(meta))
        if self.latest.latest_step() != step:
            self.latest.save(step, args=args)
            self.latest.wait_until_finished()
        if best:
            args = ocp.args.Composite(state=ocp.args.StandardSave(_host(state)), meta=ocp.args.JsonSave(meta))
            if self.best.latest_step() is not None and self.best.latest_step() >= step:
                return
            self.best.save(step, args=args, force=True)
            self.best.wait_until_finished()

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
