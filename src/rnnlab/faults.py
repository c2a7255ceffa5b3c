"""What a run does when something goes wrong: non-finite numbers, a full disk, a kill.

* **Non-finite loss or gradient.** ``finite_step`` (read from the gradient norm) is computed inside
  the jitted step; every step reports ``nonfinite`` (0 or 1) in its metrics. By default
  (``train.skip_nonfinite=False``) the loop hands these flags to a ``NonFiniteGuard``, which checks
  them (one host transfer) before anything is logged, evaluated or saved and raises ``Diverged``
  naming the first bad step: the run stops, its last checkpoint (saved before the bad step) stays
  the last good one, and summary.json gets ``status: diverged``. With ``train.skip_nonfinite=True``
  the optimizer is wrapped in ``optax.apply_if_finite``: a bad update is skipped (parameters,
  optimizer state and carries unchanged; its loss is left out of the train metrics) and counted;
  more than ``train.max_skips_in_a_row`` skips in a row is a divergence too.
* **Full disk / failed writes.** ``io_error_message`` turns an OSError or orbax/tensorstore's
  ``RESOURCE_EXHAUSTED ... No space left on device`` into one line.
* **SIGTERM** (what schedulers send before they kill): inside ``preemptible()`` (train_and_evaluate)
  the signal sets a flag that the loop reads at the next step boundary (``preempted``): it saves a
  checkpoint there, writes ``summary.json`` with ``status: preempted`` and raises ``Preempted``,
  which the CLI prints as one line with exit status 143 (128 + SIGTERM). Outside the step loop
  (loading, restoring, compiling the first step, the final evaluation) nothing new needs saving, so
  ``Preempted`` is raised at once. The same command resumes exactly.
* **Kills.** Nothing here: checkpoints are written to a temporary folder and renamed (orbax), JSON
  files are written to a temporary file and renamed (``tracking.write_json``), and metrics.jsonl is
  cut back on resume to its length at the checkpoint (``truncate_file``), so a kill at any moment
  leaves the last complete checkpoint and everything written before it intact.
* **Fault injection** for tests and ``experiments/kill_resume.py``: ``RNNLAB_KILL_AT=point:n``
  makes the training process SIGKILL itself at the n-th time it passes ``point`` (``step``: after a
  train step is dispatched; ``eval``: inside a validation; ``save``: inside an orbax save, after the
  data is written and before the temporary folder is renamed; ``final``: at the start of the final
  evaluation, after the last checkpoint). ``point:n:TERM`` sends SIGTERM instead (a scheduler's
  preemption). Unset, ``kill_point`` is a dict lookup.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import threading
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from . import RnnlabError

# ----------------------------------------------------------------------------- non-finite numbers


class Diverged(RnnlabError):
    """Training produced a non-finite loss or gradient at ``step`` (1-based: the step-th update)."""

    def __init__(self, message: str, step: int):
        super().__init__(message)
        self.step = step


def finite_step(loss, grad_norm) -> jax.Array:
    """True (a traced bool scalar) when the loss and every gradient are finite, read from the global
    gradient norm the step computes anyway: a NaN or an inf anywhere in the gradients makes their norm
    NaN or inf, so no other pass over every gradient is needed (it cost ~2% of a CPU step at size S,
    docs/perf_notes.md). One case more counts as non-finite: finite gradients whose sum of squares
    overflows float32 (|g| ~ 1e19), whose clipped update is 0."""
    return jnp.isfinite(loss) & jnp.isfinite(grad_norm)


def poison_unless(ok, grads):
    """Gradients made NaN when ``ok`` is False, so ``optax.apply_if_finite`` (which looks only at
    the gradients) also skips an update whose loss alone is non-finite."""
    return jax.tree_util.tree_map(lambda g: jnp.where(ok, g, jnp.full_like(g, jnp.nan)), grads)


def select_tree(ok, new, old):
    """``new`` where ``ok`` else ``old``, leaf by leaf (ok is a scalar bool)."""
    return jax.tree_util.tree_map(lambda a, b: jnp.where(ok, a, b), new, old)


def mask_metrics(ok, metrics: dict) -> dict:
    """A skipped step's sums (NaN or not) are replaced by 0, so the logged train loss averages the
    applied updates only; ``steps`` counts applied updates and ``skipped`` the skipped ones."""
    out = {k: jnp.where(ok, v, jnp.zeros_like(v)) for k, v in metrics.items()}
    out["skipped"] = jnp.where(ok, 0.0, 1.0).astype(jnp.float32)
    return out


def consecutive_skips(opt_state, runs: int = 1) -> np.ndarray:
    """``notfinite_count`` of an ``optax.apply_if_finite`` state, one per run: int [runs] (zeros
    when the optimizer has none)."""
    count = getattr(opt_state, "notfinite_count", None)
    if count is None:
        return np.zeros(runs, np.int64)
    return np.broadcast_to(np.asarray(jax.device_get(count)).reshape(-1), (runs,)).astype(np.int64)


class NonFiniteGuard:
    """Collects the per-step ``nonfinite`` flags (device scalars, or [R] when R runs are vmapped;
    no host sync per step); ``first_bad()`` fetches them at once and returns, per run, the first
    non-finite step (1-based: the step-th update) or 0."""

    def __init__(self, first_step: int, runs: int = 1):
        self.first, self.runs = first_step, runs  # steps taken before the first pending flag
        self.pending: list = []

    def add(self, flag) -> None:
        if flag is not None:
            self.pending.append(flag)

    def first_bad(self) -> np.ndarray:
        out = np.zeros(self.runs, np.int64)
        if self.pending:
            flags = np.asarray(jax.device_get(self.pending)).reshape(len(self.pending), -1)  # [n, R or 1]
            for r in range(self.runs):
                bad = np.flatnonzero(flags[:, min(r, flags.shape[1] - 1)] > 0)
                out[r] = self.first + int(bad[0]) + 1 if bad.size else 0
            self.first += len(self.pending)
            self.pending = []
        return out


def check_runs(guard: NonFiniteGuard, recorders, opt_state, cfg, step: int) -> bool:
    """At a log / eval / checkpoint boundary: mark each run that diverged since the last check
    (``recorder.diverge(step, message)``). Without ``train.skip_nonfinite`` a run diverges at its
    first non-finite step; with it, when more than ``train.max_skips_in_a_row`` updates in a row
    were skipped. Returns True when every run has diverged (the loop stops)."""
    skip = bool(cfg.train.get("skip_nonfinite", False))
    bad = guard.first_bad()
    skips = consecutive_skips(opt_state, len(recorders)) if skip else None
    for i, r in enumerate(recorders):
        if r.diverged is not None:
            continue
        if not skip and bad[i]:
            r.diverge(int(bad[i]), diverged_message(int(bad[i]), r.ckpt.latest_complete_step()))
        elif skip and skips[i] > cfg.train.max_skips_in_a_row:
            r.diverge(step, diverged_message(step, r.ckpt.latest_complete_step(), skips=int(skips[i])))
    return all(r.diverged is not None for r in recorders)


def diverged_message(step: int, last_good_checkpoint, skips: int | None = None) -> str:
    what = (f"{skips} updates in a row had a non-finite loss or gradient (up to step {step})" if skips
            else f"non-finite loss or gradient at step {step}")
    kept = (f"last good checkpoint: step {last_good_checkpoint}" if last_good_checkpoint is not None
            else "no checkpoint was saved before it")
    fix = ("raise train.max_skips_in_a_row or lower train.lr" if skips else
           "lower train.lr, set train.clip_norm, or set train.skip_nonfinite=True to skip such updates")
    return f"training diverged: {what}; {kept}; {fix} (in a new --workdir)"


def diverged_summary(workdir) -> dict | None:
    """The run's summary.json if it says status diverged, else None."""
    path = Path(workdir) / "summary.json"
    try:
        summary = json.loads(path.read_text()) if path.exists() else None
    except (OSError, ValueError):
        return None
    return summary if isinstance(summary, dict) and summary.get("status") == "diverged" else None


def raise_if_diverged(workdir) -> None:
    """A run directory whose summary.json says diverged: raise its Diverged again (re-running the
    same config would diverge the same way; a sweep re-run reports it without training again)."""
    summary = diverged_summary(workdir)
    if summary is not None:
        raise Diverged(str(summary.get("error") or f"training diverged at step {summary.get('diverged_step')}"),
                       int(summary.get("diverged_step") or 0))


# ----------------------------------------------------------------------------- run directory checks
def check_vocab(workdir, vocab_json: dict) -> None:
    """Refuse to resume a run whose checkpoints were trained on another vocabulary (the data changed
    since the run started): vocab.json must equal the vocabulary the data gives now."""
    workdir = Path(workdir)
    path, ckpts = workdir / "vocab.json", workdir / "checkpoints"
    if not path.exists() or not ckpts.is_dir() or not any(ckpts.glob("*/[0-9]*")):
        return
    try:
        old = json.loads(path.read_text())
        old_itos = list(old["itos"])
    except (OSError, ValueError, KeyError, TypeError):
        raise RnnlabError(f"{path} is not a vocabulary (unreadable JSON or no itos); move the run directory away "
                          f"or use another --workdir") from None
    new_itos = list(vocab_json["itos"])
    if old == vocab_json:
        return
    if len(old_itos) != len(new_itos):
        what = f"{len(old_itos)} tokens in vocab.json, {len(new_itos)} in the data now"
    else:
        i = next((k for k, (a, b) in enumerate(zip(old_itos, new_itos)) if a != b), None)
        what = (f"token {i} is {old_itos[i]!r} in vocab.json, {new_itos[i]!r} in the data now" if i is not None
                else "its level or unk token differs")
    raise RnnlabError(f"workdir {workdir} was trained on a different vocabulary ({what}); the data changed since "
                      f"the run started: use the original data or another --workdir")


# ----------------------------------------------------------------------------- disk errors
_DISK_FULL_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


def is_disk_full(e: BaseException) -> bool:
    """An OSError ENOSPC/EDQUOT, or tensorstore's RESOURCE_EXHAUSTED / 'No space left on device'
    (orbax raises those as ValueError), anywhere in the exception's chain."""
    seen = 0
    while e is not None and seen < 10:
        if isinstance(e, OSError) and e.errno in _DISK_FULL_ERRNOS:
            return True
        text = str(e)
        if "No space left on device" in text or "os_error_code='28'" in text or "Disk quota exceeded" in text:
            return True
        e = e.__cause__ or e.__context__
        seen += 1
    return False


def io_error_message(e: BaseException, what: str) -> str:
    """One line: what could not be written and why."""
    if is_disk_full(e):
        return f"{what}: no space left on device"
    if isinstance(e, OSError) and e.strerror:
        name = f" {e.filename}" if e.filename else ""
        return f"{what}: {e.strerror}{name}"
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return f"{what}: {type(e).__name__}: {lines[0][:300] if lines else ''}".rstrip(": ")


# ----------------------------------------------------------------------------- metrics.jsonl
def file_size(path) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def truncate_file(path, size) -> None:
    """Cut ``path`` back to ``size`` bytes (its length when the checkpoint was saved): lines logged
    after the checkpoint, and a torn last line, are dropped; they are logged again on resume."""
    path = Path(path)
    if size is None or not path.exists() or file_size(path) <= int(size):
        return
    with open(path, "r+b") as f:
        f.truncate(int(size))
        f.flush()
        os.fsync(f.fileno())


# ----------------------------------------------------------------------------- fault injection
KILL_ENV = "RNNLAB_KILL_AT"
POINTS = ("step", "eval", "save", "final")
SIGNALS = {"KILL": signal.SIGKILL, "TERM": signal.SIGTERM}
_counts: dict[str, int] = {}
_target: tuple[str, int, int] | None = None
_installed = False


def _parse(spec: str) -> tuple[str, int, int] | None:
    """'point:n[:KILL|TERM]' -> (point, n, signal number)."""
    if not spec:
        return None
    point, n, sig = (spec.split(":") + ["KILL"])[:3] if spec.count(":") <= 2 else ("", "", "")
    if point not in POINTS or not n.isdigit() or int(n) < 1 or sig not in SIGNALS:
        raise RnnlabError(f"{KILL_ENV}={spec!r} is not valid; use POINT:N[:TERM] with POINT one of "
                          f"{', '.join(POINTS)} and N >= 1")
    return point, int(n), SIGNALS[sig]


def kill_point(name: str) -> None:
    """SIGKILL (or SIGTERM) this process at the n-th pass through ``name`` when ``RNNLAB_KILL_AT=name:n``."""
    if _target is None or _target[0] != name:
        return
    _counts[name] = _counts.get(name, 0) + 1
    if _counts[name] == _target[1]:
        os.kill(os.getpid(), _target[2])


def install_from_env() -> None:
    """Read ``RNNLAB_KILL_AT`` (once per process); for ``save``, hook orbax's finalize (the rename
    of the temporary checkpoint folder) so the kill lands inside a save."""
    global _target, _installed
    if _installed:
        return
    _installed = True
    _target = _parse(os.environ.get(KILL_ENV, ""))
    if _target is None or _target[0] != "save":
        return
    from orbax.checkpoint._src.path import atomicity

    original = atomicity.AtomicRenameTemporaryPath.finalize

    async def finalize(self, *args, **kwargs):
        if self.get_final().name.isdigit():  # the step folder (its items are finalized before it)
            kill_point("save")
        return await original(self, *args, **kwargs)

    atomicity.AtomicRenameTemporaryPath.finalize = finalize


# ----------------------------------------------------------------------------- SIGTERM (preemption)
PREEMPT_EXIT = 128 + signal.SIGTERM  # 143: the shell's status of a process ended by SIGTERM
# SIGUSR2 is handled the same way: what SLURM sends before a job's time limit (sbatch --signal=USR2@N,
# submitit's default), so the job checkpoints and is requeued (rnnlab.launch.slurm)
PREEMPT_SIGNALS = (signal.SIGTERM, signal.SIGUSR2)
_sigterm = {"requested": False, "phase": None, "signal": "SIGTERM"}  # phase: None (no handler), "setup", "loop", "final"


class Preempted(BaseException):
    """SIGTERM stopped the run. A BaseException (like KeyboardInterrupt), so that code catching
    Exception (a sweep recording a failed member) lets it through; the CLI exits with 143."""

    def __init__(self, message: str, step: int | None = None, signal_name: str = "SIGTERM"):
        super().__init__(message)
        self.step = step
        self.signal_name = signal_name  # SIGTERM or SIGUSR2 (PREEMPT_SIGNALS)


def _on_sigterm(signum, frame):
    _sigterm["requested"] = True
    _sigterm["signal"] = signal.Signals(signum).name
    if _sigterm["phase"] != "loop":  # nothing trained since the last checkpoint: stop now
        what = "during the final evaluation (every step is checkpointed)" if _sigterm["phase"] == "final" else \
            "before the first step of this process (nothing new to save)"
        raise Preempted(f"stopped by {_sigterm['signal']} {what}; re-run the same command to resume from the last "
                        f"checkpoint", signal_name=_sigterm["signal"])


@contextlib.contextmanager
def preemptible():
    """While inside, SIGTERM is turned into a checkpoint at the next step boundary and ``Preempted``
    (see the module docstring); the previous handler comes back on exit. A no-op outside the main
    thread (signals reach only the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _on_sigterm) for s in PREEMPT_SIGNALS}
    _sigterm.update(requested=False, phase="setup", signal="SIGTERM")
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        _sigterm.update(requested=False, phase=None)


def preempted(step: int, total_steps: int) -> bool:
    """Called by the loop after each step (``step`` updates done): True when a SIGTERM arrived and the
    loop must checkpoint now and call ``stop_preempted``. After the last step, a later SIGTERM (in
    the final evaluation) stops the process at once."""
    if _sigterm["phase"] is None:
        return False
    _sigterm["phase"] = "final" if step >= total_steps else "loop"
    return _sigterm["requested"]


def stop_preempted(recorders, step: int) -> None:
    """After the checkpoint of ``step``: summary.json of each run gets ``status: preempted`` (its step
    and last checkpoint), then ``Preempted`` is raised."""
    for r in recorders:
        if r.diverged is None:
            r.logger.summary({"status": "preempted", "signal": _sigterm["signal"], "step": step,
                              "run_name": r.run_name, "last_checkpoint_step": r.ckpt.latest_complete_step()})
    raise Preempted(f"stopped by {_sigterm['signal']} at step {step}: checkpoint saved; re-run the same command to "
                    f"resume exactly from it", step, signal_name=_sigterm["signal"])


# ----------------------------------------------------------------------------- durability
def fsync_path(path, recursive: bool = True) -> None:
    """fsync a file, or a folder (its entries, so a rename inside it is durable) and, with
    ``recursive``, everything under it."""
    path = Path(path)
    if not path.exists():
        return
    paths = [path] if path.is_file() or not recursive else [*sorted(path.rglob("*")), path]
    for p in paths:
        try:
            fd = os.open(p, os.O_RDONLY)
        except OSError:
            continue
        try:
            os.fsync(fd)
        except OSError:
            pass  # some file systems refuse fsync on folders
        finally:
            os.close(fd)
