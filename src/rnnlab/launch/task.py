"""One SLURM array task: ``sweep.run_member`` on one member (or one vmapped seed group), made
preemption-safe with submitit's checkpointing.

``MemberTask`` is a ``submitit.helpers.Checkpointable``: what the task pickles is only the members'
configs and names; the training state lives in the run directories (orbax checkpoints), so
``checkpoint()`` (submitit's default) resubmits the same task and the requeued job resumes from
the newest checkpoint. What happens on each signal:

* SIGUSR2 (``--signal=USR2@N``: the time limit is N seconds away). Inside training,
  ``faults.preemptible`` turns it into a checkpoint at the next step boundary, summary status
  ``preempted`` and W&B ``mark_preempting``, then ``faults.Preempted``; the task then hands the
  signal to submitit's own handler (``SignalHandler.checkpoint_and_try_requeue``, which
  ``preemptible`` restored): it pickles ``checkpoint()``'s resubmission, runs ``scontrol requeue``
  on this job and exits. Outside training (importing, loading data) submitit's handler gets the
  signal directly: nothing new needs saving.
* SIGTERM (preemption with PreemptMode=REQUEUE, ``scontrol requeue``, ``scancel``). SLURM itself
  requeues (or cancels) the job; training checkpoints at the next step boundary as above and the
  task exits with status 143 (KillWait, 30 s by default, is the time it has).

Either way the requeued task trains the same member from its checkpoint and ends bit for bit
where an uninterrupted run ends (``params_sha256``; tests/test_slurm.py).

Locks: the task holds its members' ``.sweep.lock`` (``sweep.locks``) while it trains, so a local
sweep or W&B agent on the same study skips them. A lock left by an earlier run of this same job on
another node (a requeue after SIGKILL) is taken over: ``<run dir>/.slurm_job`` names the job that
last took the member, and a job runs once at a time.
"""
from __future__ import annotations

import os
import signal
import socket
import sys
from pathlib import Path

import submitit

from ..faults import PREEMPT_EXIT, Preempted
from ..sweep import Member, member_status, run_member
from ..sweep.locks import LOCK_FILE, claim, release
from .queue import refresh

JOB_FILE = ".slurm_job"  # in a member's run directory: the SLURM job id that last took it
TRAIN_LOCK = ".train.lock"  # rundir.LOCK_FILE: train_and_evaluate's own lock


def job_id() -> str:
    """This task's SLURM job id (``<array id>_<task>`` in an array), '' outside SLURM."""
    try:
        return str(submitit.JobEnvironment().job_id)
    except RuntimeError:
        return os.environ.get("SLURM_JOB_ID", "")


def take_over_own_locks(run_dir: Path, jid: str) -> None:
    """Locks on another host left by an earlier run of job ``jid`` itself are stale: remove them."""
    try:
        mine = bool(jid) and (run_dir / JOB_FILE).read_text().strip() == jid
    except OSError:
        mine = False
    if not mine:
        return
    for name in (LOCK_FILE, TRAIN_LOCK):
        path = run_dir / name
        try:
            host = path.read_text().split()[0]
        except (OSError, IndexError):
            continue
        if host != socket.gethostname():
            path.unlink(missing_ok=True)


def _print(msg: str) -> None:
    print(msg, flush=True)


class MemberTask(submitit.helpers.Checkpointable):
    """Train ``members`` (one, or seeds of one config to vmap) into ``workdir/<name>``; -> {name:
    status and key numbers}. See the module docstring for signals and requeues."""

    def __init__(self, members: list[Member], workdir, config_file: str = ""):
        self.members = [Member(m.name, dict(m.overrides), m.config) for m in members]
        self.workdir = str(Path(workdir).resolve())
        self.config_file = config_file

    def __call__(self) -> dict:
        workdir, jid = Path(self.workdir), job_id()
        todo, out = [], {}
        for m in self.members:
            run_dir = workdir / m.name
            run_dir.mkdir(parents=True, exist_ok=True)
            take_over_own_locks(run_dir, jid)
            holder = claim(run_dir)
            if holder:
                _print(f"{m.name}: being trained by another process ({holder}); skipped")
                out[m.name] = {"status": "running", "held_by": holder}
                continue
            if jid:
                (run_dir / JOB_FILE).write_text(jid)
            todo.append(m)
        try:
            for m in list(todo):
                if member_status(workdir / m.name)["status"] == "finished":
                    _print(f"{m.name}: finished earlier, skipped")
                    out[m.name] = member_status(workdir / m.name)
                    todo.remove(m)
            if todo:
                _print(f"job {jid or '-'} on {socket.gethostname()}: " + ", ".join(m.name for m in todo))
                results = run_member(todo if len(todo) > 1 else todo[0], workdir, config_file=self.config_file)
                for name, r in results.items():
                    out[name] = r
                    _print(f"{name}: {r.get('status')}" + (f": {r['error']}" if r.get("error") else
                                                            f", test ppl {r.get('test_ppl', float('nan')):.4f}"))
        except Preempted as e:
            preempted = e
        else:
            preempted = None
        finally:
            self._release(todo)
            refresh(workdir)
        if preempted is not None:
            _print(f"{', '.join(m.name for m in todo)}: {preempted}")
            if preempted.signal_name == "SIGUSR2":  # the time limit is near: submitit requeues this job and exits
                handler = signal.getsignal(signal.SIGUSR2)
                if callable(handler):
                    handler(signal.SIGUSR2, None)
            sys.exit(PREEMPT_EXIT)  # SIGTERM: SLURM requeues (preemption, scontrol requeue) or cancels the job
        return out

    def _release(self, members) -> None:
        for m in members:
            release(Path(self.workdir) / m.name)
