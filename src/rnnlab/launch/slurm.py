"""A study on SLURM: one job-array task per member (or per vmapped seed group), submitted with
submitit, logs under the study folder, job ids and states in sweep.json.

    python -m experiments.sweep --config=configs/quickstart.py --workdir=runs/qs --launcher=slurm \\
        [--slurm.partition=P --slurm.gpus_per_task=N --slurm.cpus_per_task=N --slurm.time=MIN \\
         --slurm.mem=GB --slurm.array_parallelism=N] [--vmap_seeds] [--wait]

``submit_study`` plans the study exactly as the local runner does (``sweep.plan.plan_study``:
same members, names, checks), leaves out the members that are finished, diverged, running
(another process holds them) or queued (their job, recorded in sweep.json, is still in squeue),
and submits the others as one array through ``submitit.SlurmExecutor`` (``executor.batch()``).
Each task runs ``task.MemberTask``: ``sweep.run_member`` on its member(s), so a task's run
directory is the one a local sweep writes, bit for bit. ``wait_study`` polls until the jobs have
left the queue, refreshing sweep.json (``refresh``).

Files: ``<workdir>/slurm/<job id>/`` holds submitit's pickles and each task's stdout / stderr
(``<job>_<task>_0_log.out`` / ``.err``, appended to across requeues).

State: from squeue (pending, running) and the run directories (finished, failed, diverged,
partial), never from sacct: sacct needs slurmdbd (accounting), which small clusters and the test
cluster (scripts/slurm/cluster.sh) lack; there it fails and submitit's watcher logs "Bypassing
sacct error" on every poll. This launcher never asks submitit's watcher (no ``job.result()`` /
``job.state``), and that known warning is filtered from submitit's logger (``_quiet_sacct``)
should anything else trigger it.

Preemption and time limits: each task is submitted with ``--signal=USR2@<signal_delay_s>``;
training turns SIGUSR2 (time limit near) and SIGTERM (preemption, ``scontrol requeue``) into a
checkpoint at the next step boundary, status ``preempted`` and a W&B ``mark_preempting``
(``faults.preemptible``, ``tracking``); see ``task.MemberTask`` for the requeue.
"""
from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Callable

import ml_collections

from .. import RnnlabError
from ..sweep import write_index
from ..sweep.index import INDEX_FILE, stored_jobs
from ..sweep.plan import groups, plan_study
from .queue import ACTIVE, member_entry, queue_states, refresh
from .task import MemberTask

LOG_DIR = "slurm"  # under the study folder


# The ``--slurm.<name>`` flags of experiments/sweep.py (launcher options, not run config): name -> (default, help).
OPTIONS = {
    "partition": ("", "partition (--partition); '' = the cluster's default"),
    "gpus_per_task": (0, "GPUs per task (--gpus-per-task); set parallel.data to use several in one run"),
    "cpus_per_task": (1, "CPUs per task (--cpus-per-task)"),
    "time": (120, "minutes: each task's time limit (--time); a task near it checkpoints and is requeued"),
    "mem": (0, "GB per task (--mem); 0 = the cluster's default"),
    "array_parallelism": (0, "most tasks running at once (--array=0-N%P); 0 = submitit's default (256)"),
    "signal_delay_s": (120, "SLURM sends USR2 this long before the time limit (--signal=USR2@N): checkpoint, requeue"),
    "max_requeues": (3, "requeues after time limits per task (submitit's max_num_timeout); preemptions are free"),
    "job_name": ("", "job name; '' = rnnlab-<study folder name>"),
}


def slurm_options(**values) -> ml_collections.ConfigDict:
    """The launcher options (``OPTIONS``' defaults, then ``values``)."""
    unknown = sorted(set(values) - set(OPTIONS))
    if unknown:
        raise RnnlabError(f"unknown SLURM option {unknown[0]!r}; the options are {', '.join(OPTIONS)}")
    return ml_collections.ConfigDict({k: values.get(k, d) for k, (d, _) in OPTIONS.items()})


def check_options(o) -> None:
    for f in ("cpus_per_task", "time", "signal_delay_s"):
        if not isinstance(o[f], int) or o[f] < 1:
            raise RnnlabError(f"--slurm.{f}={o[f]!r} is not valid; it must be an integer >= 1")
    for f in ("gpus_per_task", "mem", "array_parallelism", "max_requeues"):
        if not isinstance(o[f], int) or o[f] < 0:
            raise RnnlabError(f"--slurm.{f}={o[f]!r} is not valid; it must be an integer >= 0")
    if o.signal_delay_s >= o.time * 60:
        raise RnnlabError(f"--slurm.signal_delay_s={o.signal_delay_s} is not below the time limit "
                          f"(--slurm.time={o.time} minutes); lower it or raise --slurm.time")


class _QuietSacct(logging.Filter):
    """submitit's watcher calls sacct, which fails without accounting (slurmdbd): drop that one
    known warning ('Bypassing sacct error ...'); states come from squeue here."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Bypassing sacct error" not in record.getMessage()


def _quiet_sacct() -> None:
    log = logging.getLogger("submitit")
    if not any(isinstance(f, _QuietSacct) for f in log.filters):
        log.addFilter(_QuietSacct())


def make_executor(workdir: Path, o):
    """A ``submitit.SlurmExecutor`` writing under ``<workdir>/slurm/<job id>`` with ``o``'s options."""
    import submitit

    check_options(o)
    _quiet_sacct()
    ex = submitit.SlurmExecutor(folder=str(Path(workdir) / LOG_DIR / "%j"), max_num_timeout=o.max_requeues)
    params = dict(job_name=o.job_name or f"rnnlab-{Path(workdir).name}", time=o.time, cpus_per_task=o.cpus_per_task,
                  signal_delay_s=o.signal_delay_s, nodes=1, ntasks_per_node=1)
    if o.partition:
        params["partition"] = o.partition
    if o.gpus_per_task:
        params["gpus_per_task"] = o.gpus_per_task
    if o.mem:
        params["mem"] = f"{o.mem}GB"
    if o.array_parallelism:
        params["array_parallelism"] = o.array_parallelism
    ex.update_parameters(**params)
    return ex


# ----------------------------------------------------------------------------- submit and wait
def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def submit_study(cfg, workdir, sweep: dict, *, options, config_file: str = "", pinned=(), zip_choice=None,
                 vmap_seeds: bool = False, say: Callable[[str], None] = _say) -> dict:
    """Submit the study's members that are neither finished (nor diverged) nor running nor queued
    as one SLURM job array (see the module docstring); -> the sweep.json index plus ``selected``
    (the names this command covers) and ``submitted`` ({member name: job id} of this call)."""
    workdir = Path(workdir).resolve()  # tasks may start in another directory
    check_options(options)
    plan = plan_study(cfg, workdir, sweep, pinned=pinned, zip_choice=zip_choice)
    queue = queue_states()
    workdir.mkdir(parents=True, exist_ok=True)
    jobs = stored_jobs(workdir)
    units, n = [], len(plan.members)
    for group in groups(plan.members, vmap_seeds):
        todo = []
        for m in group:
            e = member_entry(workdir / m.name, jobs.get(m.name), queue)
            if e["status"] in ("finished", "diverged"):
                say(f"{m.name}: {e['status']} earlier, not submitted")
            elif e["status"] in ("queued", "running") and e.get("job_state"):
                say(f"{m.name}: job {e['job_id']} is {e['job_state']}, not submitted again")
            elif e["status"] == "running":
                say(f"{m.name}: being trained by another process, not submitted")
            else:
                todo.append(m)
        if todo:
            units.append(todo)
    submitted: dict = {}
    if units:
        ex = make_executor(workdir, options)
        with ex.batch():
            handles = [ex.submit(MemberTask(unit, workdir, config_file)) for unit in units]
        for unit, job in zip(units, handles):
            for m in unit:
                submitted[m.name] = job.job_id
        first = handles[0].job_id.split("_")[0]
        say(f"study {workdir}: {n} members; submitted {len(units)} task(s) as SLURM job {first}: "
            + ", ".join(f"{m.name}={submitted[m.name]}" for u in units for m in u)
            + f"; logs in {workdir / LOG_DIR}")
    else:
        say(f"study {workdir}: {n} members; nothing to submit")
    queue = {**queue, **{j: "PENDING" for j in submitted.values() if j not in queue}}
    extra = {}
    for m in plan.listed:
        job = submitted.get(m.name) or jobs.get(m.name)
        extra[m.name] = member_entry(workdir / m.name, job, queue)
        if vmap_seeds:
            unit = next((u for u in units if any(x.name == m.name for x in u)), None)
            if unit and len(unit) > 1:
                extra[m.name]["vmapped_with"] = [x.name for x in unit]
    index = write_index(workdir, plan.listed, config_file=config_file, cli=plan.cli, sweep=sweep,
                        vmap_seeds=vmap_seeds, extra=extra, draws=plan.draws)
    return {**index, "selected": [m.name for m in plan.members], "submitted": submitted}


def wait_study(workdir, job_ids, *, poll_s: float = 5.0, say: Callable[[str], None] = _say,
               timeout_s: float | None = None) -> dict:
    """Poll squeue until none of ``job_ids`` is queued or running, refreshing sweep.json and saying
    what changed; -> the final index. A requeued job (preemption, time limit) counts as queued.
    ``timeout_s``: give up waiting (the jobs go on) with a RnnlabError."""
    workdir = Path(workdir)
    job_ids = set(job_ids)
    t0, last = time.monotonic(), None
    while True:
        queue = queue_states()
        index = refresh(workdir, queue)
        live = sorted(j for j in job_ids if queue.get(j, "") in ACTIVE)
        counts: dict = {}
        for m in (index or {}).get("members", []):
            counts[m["status"]] = counts.get(m["status"], 0) + 1
        line = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
        if line != last:
            say(f"[{time.monotonic() - t0:.0f} s] {line}" + (f"; {len(live)} job(s) in the queue" if live else ""))
            last = line
        if not live:
            return index or {}
        if timeout_s is not None and time.monotonic() - t0 > timeout_s:
            raise RnnlabError(f"still waiting after {timeout_s:.0f} s for jobs {', '.join(live)}; they go on "
                              f"(re-run the command, or read {workdir / INDEX_FILE})")
        time.sleep(poll_s)


def launch(cfg, workdir, sweep: dict, *, options, wait: bool = False, say: Callable[[str], None] = _say,
           **kwargs) -> dict | None:
    """What ``experiments.sweep --launcher=slurm`` does: ``submit_study`` (``kwargs``: config_file,
    pinned, zip_choice, vmap_seeds), print the job ids; with ``wait``, ``wait_study`` and return the
    final index (with ``selected``) for the table; else None."""
    index = submit_study(cfg, workdir, sweep, options=options, say=say, **kwargs)
    jobs = sorted({m["job_id"] for m in index["members"] if m["name"] in index["selected"] and m.get("job_id")
                   and m.get("job_state") in ACTIVE})
    print("jobs: " + (" ".join(jobs) if jobs else "none (nothing queued or running)"))
    if not wait:
        print(f"follow with: squeue --me, or {Path(workdir) / INDEX_FILE} (re-running this command refreshes it "
              f"and submits what is neither finished nor queued)")
        return None
    return {**wait_study(workdir, jobs, say=say), "selected": index["selected"]}

