"""What SLURM and the run directories say about a study's members: ``queue_states`` (squeue),
``member_entry`` (one member's sweep.json fields), ``refresh`` (sweep.json rewritten from both).

squeue, not sacct: sacct needs accounting (slurmdbd), which small clusters and the test cluster
lack; a job that has left squeue is over, and its run directory says how it ended.
"""
from __future__ import annotations

import getpass
import json
import os
import subprocess
from pathlib import Path

from .. import RnnlabError
from ..sweep import Member, member_status, write_index
from ..sweep.index import INDEX_FILE, stored_jobs

ACTIVE = ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED",
          "RESIZING", "SUSPENDED", "STAGE_OUT", "SIGNALING", "PREEMPTED")  # squeue states of a job not yet over


def queue_states() -> dict[str, str]:
    """{job id: state} of this user's jobs in squeue (array tasks as ``<array id>_<task>``).
    Raises RnnlabError when squeue cannot run (no SLURM here)."""
    cmd = ["squeue", "-h", "-r", "-u", getpass.getuser(), "-o", "%i|%T"]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise RnnlabError(f"squeue could not run ({e}); is SLURM installed here (and SLURM_CONF set)?") from None
    if out.returncode != 0:  # squeue's last line says why (its first ones are often DNS lookups of a controller)
        last = (out.stderr.strip().splitlines() or ["no output"])[-1]
        raise RnnlabError(f"squeue failed: {last} (SLURM_CONF={os.environ.get('SLURM_CONF', 'unset')}; "
                          f"is a controller reachable from here?)")
    states = {}
    for line in out.stdout.splitlines():
        jid, _, state = line.strip().partition("|")
        if jid:
            states[jid] = state
    return states


def member_entry(run_dir: Path, job_id: str | None, queue: dict) -> dict:
    """A member's sweep.json fields: ``status`` from its run directory, or ``queued`` / ``running``
    while its job waits / runs; ``job_id`` and ``job_state`` (the squeue state, '' once gone)."""
    st = member_status(run_dir)
    out = dict(st)
    if job_id:
        state = queue.get(job_id, "")
        out.update(job_id=job_id, job_state=state)
        if st["status"] not in ("finished", "failed", "diverged") and state in ACTIVE:
            out["status"] = "running" if state in ("RUNNING", "COMPLETING") else "queued"
    return out


def refresh(workdir, queue: dict | None = None) -> dict | None:
    """Rewrite sweep.json from the run directories and the queue (squeue when ``queue`` is None,
    skipped when squeue cannot run); -> the index, or None when there is none yet."""
    workdir = Path(workdir)
    try:
        index = json.loads((workdir / INDEX_FILE).read_text())
    except (OSError, ValueError):
        return None
    if queue is None:
        try:
            queue = queue_states()
        except RnnlabError:
            queue = {}
    members = [Member(m["name"], m.get("overrides", {}), None) for m in index.get("members", [])]
    extra = {m["name"]: {k: m[k] for k in ("vmapped_with",) if k in m} for m in index.get("members", [])}
    jobs = stored_jobs(workdir)
    for m in members:
        extra[m.name].update(member_entry(workdir / m.name, jobs.get(m.name), queue))
    return write_index(workdir, members, config_file=index.get("config_file", ""), cli=index.get("cli_overrides", {}),
                       sweep=index.get("sweep", {}), vmap_seeds=index.get("vmap_seeds", False), extra=extra,
                       draws=index.get("random_draws"))
