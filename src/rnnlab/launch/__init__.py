"""Launchers beyond one process: a study as a SLURM job array through submitit (``slurm``), each
task training one member or one vmapped seed group with ``sweep.run_member`` (``task``).

Modules: ``queue`` (queue_states: squeue; refresh: sweep.json with job ids and states), ``slurm``
(options, submit_study, wait_study), ``task`` (MemberTask: the array task, preemption and requeue). The one-node test
cluster: ``scripts/slurm/cluster.sh``. README, "Many machines".
"""
from .queue import queue_states, refresh
from .slurm import LOG_DIR, check_options, launch, make_executor, slurm_options, submit_study, wait_study
from .task import MemberTask

__all__ = ["LOG_DIR", "MemberTask", "check_options", "launch", "make_executor", "queue_states", "refresh", "slurm_options",
           "submit_study", "wait_study"]
