"""What a launcher needs before it trains or submits anything: the study checked and expanded
(``plan_study``), and its members grouped into units of work (``groups``: one member, or the seeds
of one configuration as one vmapped program). The local runner (``runner.run_sweep``) and the
SLURM launcher (``rnnlab.launch.slurm``) share both, so a study means the same members either way.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from .. import RnnlabError
from .fields import get_field
from .index import stored_draws
from .spec import SEED_FIELD, Member, Study, check_sweep, expand
from .status import stale_failure


@dataclasses.dataclass
class Plan:
    """A checked study: ``members`` are those this command runs (the command-line pins applied),
    ``listed`` every member of the study (what sweep.json lists), ``draws`` the random part's rows
    (None without one), ``cli`` the pinned fields' values."""
    study: Study
    members: list[Member]
    listed: list[Member]
    draws: list[dict] | None
    cli: dict


def plan_study(cfg, workdir, sweep: dict, *, pinned=(), zip_choice: str | None = None) -> Plan:
    """Check ``get_sweep()`` against ``cfg``, expand it (the random rows sweep.json recorded are
    reused), and refuse a study directory whose runs hold another config, all before anything is
    trained, submitted or written. Sets each member's W&B group to the study (``wandb.group`` or
    the directory's name)."""
    from ..train import check_workdir_config

    workdir = Path(workdir)
    study = check_sweep(sweep, cfg)
    draws = (stored_draws(workdir, sweep) or study.draws()) if study.random else None
    members = expand(cfg, sweep, pinned=pinned, zip_choice=zip_choice, draws=draws)
    listed = _study_members(cfg, sweep, members, draws)
    # A member that failed before its first checkpoint is retried with whatever config the command gives.
    for m in members:
        if not stale_failure(workdir / m.name):
            check_workdir_config(workdir / m.name, m.config, write=False)
    for m in members:  # W&B: group = the study (a run-neutral field); name = the member's run name
        m.config.wandb.group = cfg.wandb.group or workdir.name
    return Plan(study, members, listed, draws, {f: get_field(cfg, f) for f in pinned})


def groups(members: list[Member], vmap_seeds: bool) -> list[list[Member]]:
    """Members in order; with vmap_seeds, those that differ only in train.seed form one group."""
    if not vmap_seeds:
        return [[m] for m in members]
    out: dict = {}
    for m in members:
        key = repr(sorted((f, repr(v)) for f, v in m.overrides.items() if f != SEED_FIELD))
        out.setdefault(key, []).append(m)
    return list(out.values())


def _study_members(cfg, sweep, selected: list[Member], draws: list[dict] | None) -> list[Member]:
    """Every member of the study (for sweep.json), even when the command line pins a subset."""
    try:
        everyone = expand(cfg, sweep, draws=draws)
    except RnnlabError:
        return selected
    names = {m.name for m in everyone}
    return everyone + [m for m in selected if m.name not in names]
