"""Export a study as a W&B sweep spec (YAML) for ``wandb sweep`` + ``wandb agent``."""
from __future__ import annotations

import math
from pathlib import Path

from .fields import get_field
from .labels import _fmt, short_names, zip_labels
from .spec import _pin, check_sweep


def wandb_sweep_spec(cfg, sweep: dict, *, config_file: str, workdir: str, pinned=(), program: str = "experiments/sweep.py",
                     zip_choice: str | None = None) -> dict:
    """A W&B sweep spec (method grid, or random with a random part) that runs the same study with
    ``wandb sweep`` + ``wandb agent``.

    Parameters are the swept config fields, named ``config.model.cell`` etc., so the agent's
    ``${args}`` expands to ``--config.model.cell=gru --config.train.seed=1``: absl's override
    syntax. The zipped fields are one categorical parameter ``zip`` whose values label the tuples
    (``mode=scheduled_sampling,kind=linear``): a grid over them separately would pair values that
    the study never pairs. The command runs ``experiments/sweep.py`` (not experiments/train.py):
    given those overrides it pins every swept field, so it trains exactly that one member with
    ``train_and_evaluate`` in the same run directory ``<workdir>/<member name>`` a local sweep
    would use (skip / resume / failure records included); W&B's macros expand whole arguments
    only, so a per-member --workdir could not be spelled in the command itself. Command-line
    overrides of non-swept fields are repeated in the command, and ``--config.wandb.mode=online``
    unless the command line sets wandb.mode.

    With a ``random`` part the method is ``random``: each random field is a parameter with the
    matching W&B distribution (``WANDB_DISTRIBUTIONS``) and ``run_cap`` = grid points x samples.
    W&B then draws every parameter of every run on its own, the product and zip ones too (a random
    sweep has no grid part), so its runs are a random subset of the grid x fresh values rather
    than the local study's crossing of the grid with one set of draws; each agent run still pins
    every field and trains the member named from its values (``lr=0.00012345678``)."""
    study = check_sweep(sweep, cfg)
    product, zipped = _pin(study.product, study.zipped, cfg,
                           [f for f in pinned if f in study.product or f in study.zipped], zip_choice)
    params = {f"config.{f}": {"values": [_yaml_value(v) for v in vals]} for f, vals in product.items()}
    if zipped:
        params["zip"] = {"values": zip_labels(zipped, short_names(list(product) + list(zipped)))}
    grid = math.prod(len(v["values"]) for v in params.values()) if params else 1
    random = {f: d for f, d in study.random.items() if f not in pinned}
    params.update({f"config.{f}": _wandb_distribution(d) for f, d in random.items()})
    fixed = [f for f in pinned if f not in product and f not in zipped]  # pinned random fields too
    command = ["${env}", "${interpreter}", "${program}", f"--config={config_file}", f"--workdir={workdir}"]
    command += [f"--config.{f}={_fmt_flag(get_field(cfg, f))}" for f in fixed]
    if "wandb.mode" not in pinned:
        command += ["--config.wandb.mode=online"]  # an agent's runs must report to the sweep
    command += ["${args}"]
    if random:
        desc = (f"rnnlab study {Path(workdir).name} from {config_file}: {grid} grid points x {study.samples} "
                f"samples of {', '.join(random)} (random; W&B draws every parameter per run)")
    else:
        desc = f"rnnlab study {Path(workdir).name} from {config_file}: {grid} members (grid)"
    if zipped:
        desc += "; zip = " + "; ".join(f"{lb}" for lb in params["zip"]["values"])
    spec = {"name": Path(workdir).name, "description": desc, "program": program,
            "method": "random" if random else "grid", "metric": {"name": "val/ppl", "goal": "minimize"},
            "parameters": params, "command": command}
    if random:
        spec["run_cap"] = grid * study.samples
    return spec


# rnnlab distribution -> the W&B sweep parameter ``distribution`` (wandb 0.31 sweep config keys;
# log_uniform_values takes min / max as values, W&B's log_uniform takes their logs); choice -> values
WANDB_DISTRIBUTIONS = {"log_uniform": "log_uniform_values", "uniform": "uniform", "int_uniform": "int_uniform"}


def _wandb_distribution(d) -> dict:
    if d.kind == "choice":
        return {"values": [_yaml_value(v) for v in d.args]}
    lo, hi = d.args if d.kind == "int_uniform" else map(float, d.args)
    return {"distribution": WANDB_DISTRIBUTIONS[d.kind], "min": lo, "max": hi}


def _yaml_value(v):
    return v if isinstance(v, (bool, int, float, str)) or v is None else _fmt(v)


def _fmt_flag(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def write_wandb_sweep(path, spec: dict) -> None:
    import yaml

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(yaml.safe_dump(spec, sort_keys=False, default_flow_style=False))
