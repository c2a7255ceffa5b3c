"""Run a study's members, one run directory each: skip finished ones, resume partial ones, retry
failed ones, one process per member (``locks``), seeds optionally vmapped as one program.

``run_member`` trains one member, or one vmapped group of seeds, into its run directory and
records a failure there; it holds no locks and writes no index, so another launcher (a job array
task in its own process) can call it on members from ``spec.expand``.
"""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Callable

from .. import RnnlabError
from .index import write_index
from .locks import claim, release
from .plan import groups, plan_study
from .spec import Member
from .status import clear_failure, member_status, record_failure



def _test_metric(summary: dict) -> str:
    """'test ppl 1.5234' for token data, 'test nll 8.7012' (nats per frame) for frame data."""
    if "test_ppl" in summary or "test_nll" not in summary:
        return f"test ppl {summary.get('test_ppl', math.nan):.4f}"
    return f"test nll {summary['test_nll']:.4f}"

def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_member(members: Member | list[Member], workdir, *, config_file: str = "",
               train_fn: Callable | None = None) -> dict:
    """Train one member (or a list of members that differ only in train.seed, as one vmapped
    program: ``multiseed.train_seeds``) into ``<workdir>/<member name>``.

    A failed member's old summary is cleared first; a member that raises gets its failure recorded
    (``status.record_failure``). Returns {name: {'status': finished | failed | diverged, and the
    summary's numbers or 'error'}}; a vmapped group that raised as a whole also has 'group_error'.
    ``train_fn(cfg, run_dir, run_name=, config_file=)`` defaults to ``train.train_and_evaluate``
    (single members only)."""
    members = [members] if isinstance(members, Member) else list(members)
    workdir = Path(workdir)
    if len({m.config.train.seed for m in members}) != len(members) or len(groups(members, True)) > 1:
        raise RnnlabError("run_member: a vmapped group needs members that differ only in train.seed; got "
                          + ", ".join(m.name for m in members))
    for m in members:
        clear_failure(workdir / m.name)
    if len(members) > 1:
        return _run_seeds(members, workdir, config_file)
    if train_fn is None:
        from ..train import train_and_evaluate as train_fn
    (m,) = members
    try:
        s = train_fn(m.config, workdir / m.name, run_name=m.name, config_file=config_file)
        return {m.name: {**s, "status": s.get("status", "finished")}}
    except Exception as e:
        msg = record_failure(workdir / m.name, m, e)
        return {m.name: {"status": member_status(workdir / m.name)["status"], "error": msg}}


def _run_seeds(members: list[Member], workdir: Path, config_file: str) -> dict:
    from ..multiseed import train_seeds

    seeds = {m.config.train.seed: m for m in members}
    try:
        out = train_seeds(members[0].config, {s: workdir / m.name for s, m in seeds.items()},
                          run_names={s: m.name for s, m in seeds.items()}, config_file=config_file)
    except Exception as e:
        msgs = {m.name: record_failure(workdir / m.name, m, e) for m in members}
        return {n: {"status": "failed", "error": msg, "group_error": msg} for n, msg in msgs.items()}
    return {m.name: {**out[s], "vmapped_with": [x.name for x in members]} for s, m in seeds.items()}


def run_sweep(cfg, workdir, sweep: dict, *, config_file: str = "", pinned=(), zip_choice: str | None = None,
              vmap_seeds: bool = False, say: Callable[[str], None] = _say,
              train_fn: Callable | None = None) -> dict:
    """Run every member of the study (see the package docstring), or those the command line pins;
    returns the sweep.json index (every member of the study) plus ``selected``: the names run here.
    ``train_fn(cfg, workdir, run_name=, config_file=)`` defaults to ``train.train_and_evaluate``."""
    workdir = Path(workdir)
    plan = plan_study(cfg, workdir, sweep, pinned=pinned, zip_choice=zip_choice)
    members, listed, draws, cli = plan.members, plan.listed, plan.draws, plan.cli
    workdir.mkdir(parents=True, exist_ok=True)
    extra: dict = {}

    def index(running=()):
        return write_index(workdir, listed, config_file=config_file, cli=cli, sweep=sweep, vmap_seeds=vmap_seeds,
                           extra=extra, running={m.name for m in running}, draws=draws)

    before = {m.name: member_status(workdir / m.name)["status"] for m in members}
    index()
    n = len(members)
    say(f"study {workdir}: {n} members; " + ", ".join(f"{sum(1 for s in before.values() if s == k)} {k}"
                                                        for k in ("finished", "partial", "failed", "diverged",
                                                                  "pending")
                                                        if any(s == k for s in before.values())))
    done = 0
    for group in groups(members, vmap_seeds):
        todo = [m for m in group if before[m.name] != "finished"]
        for m in group:
            if before[m.name] == "finished":
                done += 1
                say(f"[{done}/{n}] {m.name}: finished earlier, skipped")
        held = {m.name: claim(workdir / m.name) for m in todo}
        for m in todo:
            if held[m.name]:
                done += 1
                say(f"[{done}/{n}] {m.name}: being trained by another process ({held[m.name]}), skipped")
        todo = [m for m in todo if not held[m.name]]
        for m in list(todo):  # the status may have changed while another process held the member
            before[m.name] = member_status(workdir / m.name)["status"]
            if before[m.name] == "finished":
                done += 1
                say(f"[{done}/{n}] {m.name}: finished by another process, skipped")
                release(workdir / m.name)
                todo.remove(m)
        if not todo:
            continue
        try:
            done = _run_group(todo, workdir, before, vmap_seeds, done, n, say, train_fn, config_file, index, extra)
        finally:
            for m in todo:
                release(workdir / m.name)
        index()
    return {**index(), "selected": [m.name for m in members]}


def _run_group(todo, workdir, before, vmap_seeds, done, n, say, train_fn, config_file, index, extra) -> int:
    """Train the members of one group (this process holds their locks) and say how it went;
    returns the new count done."""
    t0 = time.perf_counter()
    if vmap_seeds and len(todo) > 1:
        say(f"[{done + 1}-{done + len(todo)}/{n}] " + ", ".join(m.name for m in todo)
            + f": {len(todo)} seeds as one vmapped program")
        index(running=todo)
        out = run_member(todo, workdir, config_file=config_file)
        if "group_error" in out[todo[0].name]:
            say(f"  FAILED ({len(todo)} seeds): {out[todo[0].name]['group_error']}")
        else:
            for m in todo:
                r = out[m.name]
                extra[m.name] = {"vmapped_with": r["vmapped_with"]}
                say(f"  {m.name}: " + (_test_metric(r) if r.get("status") == "finished"
                                       else f"{str(r.get('status', '?')).upper()}: {r.get('error', '')}"))
        say(f"  {len(todo)} seeds in {time.perf_counter() - t0:.1f} s")
        return done + len(todo)
    for m in todo:
        done += 1
        say(f"[{done}/{n}] {m.name}: {'resuming' if before[m.name] == 'partial' else 'training'}")
        index(running=[m])
        r = run_member(m, workdir, config_file=config_file, train_fn=train_fn)[m.name]
        if "error" not in r:
            say(f"[{done}/{n}] {m.name}: {_test_metric(r)}, "
                f"{r.get('wall_s', math.nan):.1f} s")
        elif r["status"] == "diverged":
            say(f"[{done}/{n}] {m.name}: DIVERGED: {r['error']}")
        else:
            say(f"[{done}/{n}] {m.name}: FAILED: {r['error']} (traceback in {workdir / m.name / 'error.txt'})")
        index()
    return done
