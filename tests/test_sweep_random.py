"""Random search in studies (rnnlab.sweep.random_search): reproducible draws, their distributions,
members = grid x samples with readable unique names, one-line errors, sweep.json, the W&B export."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from rnnlab import RnnlabError
from rnnlab import sweep as sw
from rnnlab.config import base_config
from rnnlab.sweep.random_search import _short
from rnnlab.sweep.plan import groups as _groups

ROOT = Path(__file__).resolve().parents[1]
LR = {"train.lr": {"log_uniform": [1e-4, 1e-2]}}
STUDY = {"product": {"model.cell": ["gru", "lstm"], "train.seed": [0, 1]},
         "zip": {"train.mode": ["teacher_forcing", "always_sampling"], "model.hidden_size": [16, 32]},
         "random": {**LR, "model.dropout": {"uniform": [0.0, 0.5]}}, "samples": 3, "seed": 0}


def rows(dists: dict, samples: int, seed: int = 0) -> list[dict]:
    return sw.draw({f: sw.check_random({"random": {f: d}, "samples": 1})[0][f] for f, d in dists.items()},
                   samples, seed)


# ----------------------------------------------------------------------------- draws
def test_draws_are_reproducible_from_the_seed():
    # numpy's PCG64 stream for seed 0 (a change here means studies without sweep.json get new members)
    assert [r["train.lr"] for r in rows(LR, 4, seed=0)] == [0.0019, 0.00035, 0.00012, 0.00011]
    assert rows(LR, 4, seed=0) == rows(LR, 4, seed=0)
    assert [r["train.lr"] for r in rows(LR, 4, seed=1)] == [0.0011, 0.008, 0.00019, 0.0079]
    # row i depends only on the rows before it: more samples keep the earlier members
    assert rows(LR, 20, seed=3)[:5] == rows(LR, 5, seed=3)
    # no 'seed' = seed 0
    study = {"random": LR, "samples": 4}
    assert [m.overrides for m in sw.expand(base_config(), study)] == rows(LR, 4, seed=0)


def test_distributions_bounds_and_spread():
    n = 4000
    got = rows({"a": {"log_uniform": [1e-5, 1e-1]}, "b": {"uniform": [0.1, 0.5]},
                "c": {"int_uniform": [1, 4]}, "d": {"choice": ["x", "y"]}}, n, seed=0)
    a, b = (np.array([r[k] for r in got]) for k in "ab")
    assert 1e-5 <= a.min() and a.max() <= 1e-1 and 0.1 <= b.min() and b.max() <= 0.5
    # log10 of a log-uniform on 4 decades: U(-5, -1), mean -3, std 4 / sqrt(12) = 1.155, 1/4 per decade
    la = np.log10(a)
    assert abs(la.mean() + 3) < 0.06 and abs(la.std() - 4 / math.sqrt(12)) < 0.03
    assert np.allclose(np.histogram(la, bins=4, range=(-5, -1))[0] / n, 0.25, atol=0.03)
    assert abs(b.mean() - 0.3) < 0.01 and abs(b.std() - 0.4 / math.sqrt(12)) < 0.005
    c = [r["c"] for r in got]
    assert sorted(set(c)) == [1, 2, 3, 4] and all(isinstance(x, int) for x in c)  # both ends included
    assert all(abs(c.count(k) / n - 0.25) < 0.03 for k in (1, 2, 3, 4))
    assert abs([r["d"] for r in got].count("x") / n - 0.5) < 0.03
    assert len(set(a)) == len(set(b)) == n  # continuous values never repeat


def test_values_are_rounded_to_the_fewest_digits_that_keep_them_apart():
    assert _short(0.123456, set(), 0, 1) == 0.12
    assert _short(0.123456, {0.12}, 0, 1) == 0.123
    assert _short(0.123456, {0.12, 0.123}, 0, 1) == 0.1235
    assert _short(0.19996, set(), 0.1, 0.19997) == 0.19996  # 0.2 would leave [lo, hi]
    assert _short(0.1234567890123, {0.12, 0.123, 0.1235, 0.12346}, 0, 1) == 0.123457
    few = [r["train.lr"] for r in rows(LR, 6, seed=0)]
    assert all(float(f"{v:.2g}") == v for v in few)  # 6 draws on 2 decades: 2 digits are enough


def test_rounding_stays_inside_the_bounds_and_discrete_repeats_are_redrawn():
    tight = rows({"x": {"uniform": [1.2345, 1.2346]}}, 50, seed=0)
    assert all(1.2345 <= r["x"] <= 1.2346 for r in tight) and len({r["x"] for r in tight}) == 50
    # a discrete space of 2 x 3 points, all 6 drawn: every row once
    six = rows({"a": {"choice": ["u", "v"]}, "b": {"int_uniform": [0, 2]}}, 6, seed=0)
    assert sorted((r["a"], r["b"]) for r in six) == [(a, b) for a in "uv" for b in range(3)]


# ----------------------------------------------------------------------------- members
def test_members_are_the_grid_times_the_same_samples():
    members = sw.expand(base_config(), STUDY)
    assert len(members) == 2 * 2 * 2 * 3
    names = [m.name for m in members]
    assert len(set(names)) == len(names)
    draws = rows(STUDY["random"], 3, seed=0)
    assert names[:3] == [f"cell=gru,seed=0,mode=teacher_forcing,hidden_size=16,lr={r['train.lr']!r},"
                         f"dropout={r['model.dropout']!r}" for r in draws]
    assert names[0] == "cell=gru,seed=0,mode=teacher_forcing,hidden_size=16,lr=0.0019,dropout=0.13"
    # every grid point gets the same three (lr, dropout) rows, and the name is the member's value
    by_point: dict = {}
    for m in members:
        point = (m.config.model.cell, m.config.train.seed, m.config.train.mode)
        by_point.setdefault(point, []).append((m.config.train.lr, m.config.model.dropout))
        assert f"lr={m.config.train.lr!r}," in m.name
    assert len(by_point) == 8
    assert all(v == [(r["train.lr"], r["model.dropout"]) for r in draws] for v in by_point.values())
    # vmap_seeds groups the seeds of one (cell, mode, lr, dropout): 12 groups of 2
    groups = _groups(members, vmap_seeds=True)
    assert len(groups) == 12 and all(len({m.config.train.lr for m in g}) == 1 and
                                     [m.config.train.seed for m in g] == [0, 1] for g in groups)


def test_pinning_a_random_field():
    cfg = base_config()
    cfg.train.lr = 0.001
    study = {"product": {"model.cell": ["gru", "lstm"]}, "random": LR, "samples": 5}
    assert [m.name for m in sw.expand(cfg, study, pinned=["train.lr"])] == ["cell=gru,lr=0.001", "cell=lstm,lr=0.001"]
    both = {**study, "random": {**LR, "model.dropout": {"uniform": [0.0, 0.5]}}}
    pinned = sw.expand(cfg, both, pinned=["train.lr"])  # the dropout draws still tell the rows apart
    assert len(pinned) == 10 and {m.config.train.lr for m in pinned} == {0.001}
    assert [m.config.model.dropout for m in pinned[:5]] == [r["model.dropout"] for r in rows(both["random"], 5)]


@pytest.mark.parametrize("sweep, message", [
    ({"random": {"train.lr": {"normal": [0, 1]}}, "samples": 2},
     "get_sweep()['random']['train.lr']: unknown distribution 'normal'; use one of log_uniform, uniform"),
    ({"random": {"train.lr": {"uniform": [0.5, 0.1]}}, "samples": 2}, "= [0.5, 0.1]: lo must be below hi"),
    ({"random": {"train.lr": {"log_uniform": [0.1, 0.1]}}, "samples": 2}, "lo must be below hi"),
    ({"random": {"train.lr": {"log_uniform": [0, 0.1]}}, "samples": 2}, "lo must be > 0 for a log-uniform"),
    ({"random": {"train.lr": {"log_uniform": [-1.0, 0.1]}}, "samples": 2}, "lo must be > 0"),
    ({"random": {"train.lr": {"uniform": [0.1]}}, "samples": 2}, "must be [lo, hi], two finite numbers"),
    ({"random": {"model.num_layers": {"int_uniform": [1, 2.5]}}, "samples": 2}, "two integers"),
    ({"random": {"model.cell": {"choice": []}}, "samples": 2}, "['choice'] must be a non-empty list"),
    ({"random": LR}, "has a 'random' part but no 'samples'"),
    ({"random": LR, "samples": 0}, "get_sweep()['samples'] must be an integer >= 1; got 0"),
    ({"random": LR, "samples": 2.0}, "must be an integer >= 1; got 2.0"),
    ({"random": LR, "samples": 2, "seed": -1}, "get_sweep()['seed'] must be an integer >= 0"),
    ({"product": {"model.cell": ["gru"]}, "samples": 2}, "has 'samples' but no 'random' part"),
    ({"random": {"train.lrr": {"uniform": [0.1, 0.2]}}, "samples": 2},
     "get_sweep()['random']: 'train.lrr' is not a config field (did you mean train.lr?)"),
    ({"product": {"train.lr": [0.1]}, "random": LR, "samples": 2}, "train.lr is in both 'random' and 'product'"),
    ({"zip": {"train.lr": [0.1]}, "random": LR, "samples": 2}, "train.lr is in both 'random' and 'zip'"),
    ({"random": LR, "samples": 2, "sample": 3}, "keys 'product' and/or 'zip'"),
    ({"random": {"model.cell": {"choice": ["gru", "lstm"]}}, "samples": 3}, "samples=3 but the random part has only 2"),
    ({"random": {"model.hidden_size": {"log_uniform": [16, 256]}}, "samples": 2}, "model.hidden_size=")
])
def test_bad_random_parts_are_one_line_errors(sweep, message):
    with pytest.raises(RnnlabError) as e:
        sw.expand(base_config(), sweep)
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def _cli(*args):
    env = dict(os.environ, WANDB_MODE="disabled", JAX_PLATFORMS="cpu")
    return subprocess.run([sys.executable, "-m", "experiments.sweep", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def _study_file(tmp_path, sweep: dict) -> Path:
    path = tmp_path / "study.py"
    path.write_text(f"from rnnlab.config import base_config\n\n\ndef get_config():\n    return base_config()\n\n\n"
                    f"def get_sweep():\n    return {sweep!r}\n")
    return path


def test_cli_bad_random_part_is_one_line_before_training(tmp_path):
    path = _study_file(tmp_path, {"random": {"train.lr": {"log_uniform": [0.0, 0.1]}}, "samples": 4})
    r = _cli(f"--config={path}", f"--workdir={tmp_path / 'w'}")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "error: get_sweep()['random']['train.lr']['log_uniform'] = [0.0, 0.1]: lo must be > 0 for a log-uniform "
        "distribution"]
    assert not (tmp_path / "w").exists()


# ----------------------------------------------------------------------------- sweep.json
def _fake_train(cfg, run_dir, run_name, config_file):
    """Stands in for train_and_evaluate: writes the finished summary a real run would."""
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    s = {"status": "finished", "run_name": run_name, "test_ppl": 1 + cfg.train.lr, "wall_s": 0.0}
    (Path(run_dir) / "summary.json").write_text(json.dumps(s))
    return s


def test_sweep_json_records_the_draws_and_a_rerun_uses_them(tmp_path):
    study = {"product": {"model.cell": ["gru", "lstm"]}, "random": LR, "samples": 2, "seed": 5}
    index = sw.run_sweep(base_config(), tmp_path, study, say=lambda s: None, train_fn=_fake_train)
    drawn = rows(LR, 2, seed=5)
    saved = json.loads((tmp_path / "sweep.json").read_text())
    assert saved["random_draws"] == drawn and saved["sweep"]["seed"] == 5
    assert [m["overrides"]["train.lr"] for m in saved["members"]] == [r["train.lr"] for r in drawn] * 2
    assert [m["status"] for m in index["members"]] == ["finished"] * 4
    # a re-run of the same random part takes the rows from sweep.json, so it runs the same members
    saved["random_draws"] = [{"train.lr": 0.005}, {"train.lr": 0.006}]
    (tmp_path / "sweep.json").write_text(json.dumps(saved))
    index = sw.run_sweep(base_config(), tmp_path, study, say=lambda s: None, train_fn=_fake_train)
    assert index["selected"] == ["cell=gru,lr=0.005", "cell=gru,lr=0.006", "cell=lstm,lr=0.005", "cell=lstm,lr=0.006"]
    assert json.loads((tmp_path / "cell=lstm,lr=0.006" / "summary.json").read_text())["test_ppl"] == 1.006
    # ...but another seed is another random part: fresh draws
    index = sw.run_sweep(base_config(), tmp_path, {**study, "seed": 6}, say=lambda s: None, train_fn=_fake_train)
    assert [m["overrides"]["train.lr"] for m in index["members"][:2]] == [r["train.lr"] for r in rows(LR, 2, 6)]


# ----------------------------------------------------------------------------- W&B
def test_wandb_export_of_a_random_study(tmp_path):
    study = {"product": {"model.cell": ["gru", "lstm"], "train.seed": [0, 1, 2]},
             "random": {**LR, "model.dropout": {"uniform": [0, 0.5]}, "model.num_layers": {"int_uniform": [1, 3]},
                        "train.optimizer": {"choice": ["adam", "sgd"]}}, "samples": 10, "seed": 0}
    path = _study_file(tmp_path, study)
    out = tmp_path / "spec.yaml"
    r = _cli(f"--config={path}", "--workdir=runs/r", "--config.model.dropout=0.1", f"--wandb_sweep={out}")
    assert r.returncode == 0, r.stderr
    spec = yaml.safe_load(out.read_text())
    assert spec["method"] == "random" and spec["run_cap"] == 6 * 10
    assert spec["parameters"] == {  # the pinned dropout is a fixed argument, not a parameter
        "config.model.cell": {"values": ["gru", "lstm"]}, "config.train.seed": {"values": [0, 1, 2]},
        "config.train.lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-2},
        "config.model.num_layers": {"distribution": "int_uniform", "min": 1, "max": 3},
        "config.train.optimizer": {"values": ["adam", "sgd"]}}
    assert "--config.model.dropout=0.1" in spec["command"]
    uniform = sw.wandb_sweep_spec(base_config(), study, config_file=str(path), workdir="runs/r")
    assert uniform["parameters"]["config.model.dropout"] == {"distribution": "uniform", "min": 0.0, "max": 0.5}
    # an agent run passes W&B's own draws; they pin every field: exactly one member, named from them
    from wandb.sdk.launch.sweeps.utils import create_sweep_command_args

    point = {"config.model.cell": "lstm", "config.train.seed": 2, "config.train.lr": 0.000123456789,
             "config.model.num_layers": 2, "config.train.optimizer": "sgd"}
    argv = create_sweep_command_args({"args": {k: {"value": v} for k, v in point.items()}})["args"]
    cfg = base_config()
    cfg.model.cell, cfg.train.seed, cfg.train.lr, cfg.model.num_layers, cfg.train.optimizer = "lstm", 2, 0.000123456789, 2, "sgd"
    cfg.model.dropout = 0.1
    (m,) = sw.expand(cfg, study, pinned=sw.cli_fields(argv) + ["model.dropout"])
    assert m.name == "cell=lstm,seed=2,lr=0.000123456789,dropout=0.1,num_layers=2,optimizer=sgd"
    assert m.config.train.lr == 0.000123456789


def test_exported_specs_pass_wandbs_sweep_schema():
    """wandb 0.31 does not ship the sweep config schema: it is in the `sweeps` package
    (pip install sweeps), which the agent's local controller imports."""
    config = pytest.importorskip("sweeps.config")
    cfg = base_config()
    grid = sw.wandb_sweep_spec(cfg, {"product": {"model.cell": ["gru", "lstm"]}, "zip": STUDY["zip"]},
                               config_file="c.py", workdir="runs/g")
    random = sw.wandb_sweep_spec(cfg, {**STUDY, "random": {**STUDY["random"], "model.num_layers":
                                                          {"int_uniform": [1, 3]},
                                                          "train.optimizer": {"choice": ["adam", "sgd"]}}},
                                 config_file="c.py", workdir="runs/r")
    assert grid["method"] == "grid" and random["method"] == "random"
    for spec in (grid, random):
        assert config.schema_violations_from_proposed_config(spec) == []
    bad = {**random, "parameters": {"config.train.lr": {"distribution": "log_uniform_values", "min": 0, "max": 1}}}
    assert config.schema_violations_from_proposed_config(bad) != []
