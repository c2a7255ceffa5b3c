"""Studies (rnnlab.sweep, experiments/sweep.py): expansion, names, errors, skip / resume / failed
members, seeds vmapped through the runner, and the W&B sweep spec."""
from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rnnlab import RnnlabError
from rnnlab import sweep as sw
from rnnlab import train
from rnnlab.config import base_config

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "configs" / "quickstart.py"

STUDY = '''
from rnnlab.config import base_config


def get_config():
    c = base_config()
    c.data.name = "reber"
    c.data.num_train, c.data.num_valid, c.data.num_test = 3000, 400, 400
    c.model.cell = "gru"
    c.model.hidden_size, c.model.embed_size, c.model.num_layers = 8, 4, 1
    c.train.batch_size, c.train.bptt, c.train.epochs = 4, 10, 1
    c.train.optimizer, c.train.lr = "adam", 0.01
    c.train.log_every, c.train.progress = 10, False
    c.checkpoint.every_steps = 25
    c.eval.batch_size = 4
    c.wandb.mode = "disabled"
    return c


def get_sweep():
    return {SWEEP}
'''


def study_file(tmp_path, sweep: dict, name="study.py") -> Path:
    path = tmp_path / name
    path.write_text(STUDY.replace("{SWEEP}", repr(sweep)))
    return path


def load_config(path: Path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("_study_cfg", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.get_config()


# ----------------------------------------------------------------------------- expansion
def test_quickstart_expands_to_three_cells_by_two_seeds():
    sweep = sw.load_sweep(QUICKSTART)
    members = sw.expand(base_config(), sweep)
    assert [m.name for m in members] == ["cell=rnn,seed=0", "cell=rnn,seed=1", "cell=gru,seed=0",
                                         "cell=gru,seed=1", "cell=lstm,seed=0", "cell=lstm,seed=1"]
    assert members[3].overrides == {"model.cell": "gru", "train.seed": 1}
    assert (members[3].config.model.cell, members[3].config.train.seed) == ("gru", 1)


def test_product_times_zip_names_unique_and_safe():
    cfg = base_config()
    sweep = {"product": {"model.cell": ["rnn", "lstm"], "train.lr": [0.1, 1]},
             "zip": {"train.mode": ["teacher_forcing", "always_sampling"], "model.hidden_size": [16, 32]}}
    members = sw.expand(cfg, sweep)
    assert len(members) == 2 * 2 * 2
    names = [m.name for m in members]
    assert len(set(names)) == len(names)
    assert names[0] == "cell=rnn,lr=0.1,mode=teacher_forcing,hidden_size=16"
    # zipped fields move together, never crossed
    assert {(m.config.train.mode, m.config.model.hidden_size) for m in members} == {
        ("teacher_forcing", 16), ("always_sampling", 32)}
    assert all(m.config.train.lr in (0.1, 1.0) for m in members)
    # names that collide once made filesystem-safe get distinct suffixes
    weird = sw.expand(cfg, {"product": {"wandb.project": ["a/b", "a b", "a_b"]}})
    assert len({m.name for m in weird}) == 3 and all("/" not in m.name and " " not in m.name for m in weird)
    assert sw.short_names(["model.dropout", "x.dropout", "train.seed"]) == {
        "model.dropout": "model.dropout", "x.dropout": "x.dropout", "train.seed": "seed"}


@pytest.mark.parametrize("sweep, message", [
    ({"product": {"model.cel": ["gru"]}}, "'model.cel' is not a config field (did you mean model.cell?)"),
    ({"product": {"model": ["gru"]}}, "'model' is not a config field"),
    ({"product": {"model.cell": "gru"}}, "must be a non-empty list of values"),
    ({"grid": {"model.cell": ["gru"]}}, "keys 'product' and/or 'zip'"),
    ({"zip": {"model.cell": ["gru", "rnn"], "train.seed": [0]}}, "lists must have equal lengths"),
    ({"product": {"train.seed": [0]}, "zip": {"train.seed": [1]}}, "in both 'product' and 'zip'"),
    ({"product": {"model.hidden_size": ["big"]}}, "model.hidden_size='big' has the wrong type"),
    ({"product": {"model.cell": ["gru", "tanh"]}}, "study member cell=tanh: model.cell='tanh' is not valid"),
])
def test_bad_sweeps_are_one_line_errors(sweep, message):
    with pytest.raises(RnnlabError) as e:
        sw.expand(base_config(), sweep)
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_config_without_get_sweep(tmp_path):
    path = tmp_path / "one.py"
    path.write_text("from rnnlab.config import base_config\n\ndef get_config():\n    return base_config()\n")
    with pytest.raises(RnnlabError, match="has no get_sweep"):
        sw.load_sweep(path)
    with pytest.raises(RnnlabError, match="not found"):
        sw.load_sweep(tmp_path / "missing.py")


def test_command_line_pins_swept_fields():
    cfg = base_config()
    sweep = {"product": {"model.cell": ["rnn", "gru"], "train.seed": [0, 1, 2]},
             "zip": {"train.mode": ["teacher_forcing", "always_sampling"], "model.hidden_size": [16, 32]}}
    cfg.train.seed = 1
    cfg.model.hidden_size = 32
    members = sw.expand(cfg, sweep, pinned=["train.seed", "model.hidden_size", "train.epochs"])
    assert [m.name for m in members] == ["cell=rnn,seed=1,mode=always_sampling,hidden_size=32",
                                         "cell=gru,seed=1,mode=always_sampling,hidden_size=32"]
    cfg.train.seed = 7  # a value outside the list replaces it
    assert [m.name for m in sw.expand(cfg, {"product": {"train.seed": [0, 1]}}, pinned=["train.seed"])] == ["seed=7"]
    cfg.model.hidden_size = 64
    with pytest.raises(RnnlabError, match="matches none of"):
        sw.expand(cfg, sweep, pinned=["model.hidden_size"])
    label = "mode=teacher_forcing,hidden_size=16"
    assert sw.zip_labels(sweep["zip"]) == [label, "mode=always_sampling,hidden_size=32"]
    assert {m.name.split(",", 2)[2] for m in sw.expand(base_config(), sweep, zip_choice=label)} == {label}
    assert sw.cli_fields(["--config=x.py", "--config.train.seed=1", "--config.model.cell", "gru",
                          "--noconfig.train.progress", "--workdir=w"]) == ["train.seed", "model.cell", "train.progress"]


# ----------------------------------------------------------------------------- running
def test_skip_resume_and_failed_member(tmp_path, monkeypatch):
    """A study of two members, one of which cannot run (batch larger than the data). First run:
    killed after member 1's checkpoint at step 50. Second run: member 1 resumes from step 50,
    member 2 fails and is recorded. Third run: member 1 is skipped, member 2 retried."""
    path = study_file(tmp_path, {"product": {"train.batch_size": [4, 100_000]}})
    cfg, sweep, wd = load_config(path), sw.load_sweep(path), tmp_path / "study"
    ok, bad = "batch_size=4", "batch_size=100000"

    save = train.RunRecorder.save

    def save_then_die(self, step, *a, **k):
        save(self, step, *a, **k)
        if step == 50:
            raise KeyboardInterrupt

    monkeypatch.setattr(train.RunRecorder, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        sw.run_sweep(cfg, wd, sweep, config_file=str(path), say=lambda s: None)
    monkeypatch.setattr(train.RunRecorder, "save", save)
    assert [m["status"] for m in json.loads((wd / "sweep.json").read_text())["members"]] == ["running", "pending"]
    assert [sw.member_status(wd / n)["status"] for n in (ok, bad)] == ["partial", "pending"]

    starts = []
    start = train.RunRecorder.start

    def start_and_note(self, state):
        state = start(self, state)
        starts.append((self.workdir.name, self.resume_step))
        return state

    monkeypatch.setattr(train.RunRecorder, "start", start_and_note)
    said = []
    index = sw.run_sweep(cfg, wd, sweep, config_file=str(path), say=said.append)
    assert starts == [(ok, 50)]  # resumed, not restarted; the bad member never got to train
    by = {m["name"]: m for m in index["members"]}
    assert by[ok]["status"] == "finished" and by[ok]["test_ppl"] > 1
    assert by[bad]["status"] == "failed" and "too large for the train split" in by[bad]["error"]
    failed = json.loads((wd / bad / "summary.json").read_text())
    assert failed["status"] == "failed" and "\n" not in failed["error"]
    assert failed["overrides"] == {"train.batch_size": 100_000} and failed["cell"] == "gru"
    assert "RnnlabError" in (wd / bad / "error.txt").read_text()
    assert json.loads((wd / bad / "config.json").read_text())["train"]["batch_size"] == 100_000
    summary = json.loads((wd / ok / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["steps"] == 74 and summary["run_name"] == ok
    assert any("FAILED" in s and bad in s for s in said)
    table = sw.table(wd)
    assert "gru" in table and "failed" in table

    mtime = (wd / ok / "summary.json").stat().st_mtime_ns
    said.clear()
    starts.clear()
    index = sw.run_sweep(cfg, wd, sweep, config_file=str(path), say=said.append)
    assert starts == [] and (wd / ok / "summary.json").stat().st_mtime_ns == mtime
    assert any(f"{ok}: finished earlier, skipped" in s for s in said)
    assert [m["status"] for m in index["members"]] == ["finished", "failed"]
    # a member another live process is training is left to it; a dead process's lock is taken over
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (wd / bad / sw.LOCK_FILE).write_text(f"{__import__('socket').gethostname()} {sleeper.pid}")
        said.clear()
        index = sw.run_sweep(cfg, wd, sweep, say=said.append)
        assert any(f"{bad}: being trained by another process (host" in s for s in said)
        assert index["members"][1]["status"] == "failed"  # the summary on disk says so
        assert (wd / bad / sw.LOCK_FILE).exists()
    finally:
        sleeper.kill()
        sleeper.wait()
    said.clear()
    sw.run_sweep(cfg, wd, sweep, say=said.append)
    assert any(f"{bad}: FAILED" in s for s in said) and not (wd / bad / sw.LOCK_FILE).exists()
    assert not (wd / ok / sw.LOCK_FILE).exists()
    # the failed member can be fixed from the command line: its stale config does not block it
    cfg.train.epochs = 2
    with pytest.raises(RnnlabError, match="holds a different run's config"):
        sw.run_sweep(cfg, wd, sweep, say=lambda s: None)  # ...but a finished member's does


def test_run_member_on_its_own(tmp_path):
    """What another launcher calls in its own process: one member into its run directory."""
    ok, bad = sw.expand(base_config(), {"product": {"train.lr": [0.5, 2.0]}})

    def train_fn(cfg, run_dir, run_name, config_file):
        if cfg.train.lr > 1:
            raise FloatingPointError("lr too large")
        run_dir.mkdir(parents=True)
        (run_dir / "summary.json").write_text(json.dumps({"status": "finished", "test_ppl": 3.5}))
        return {"status": "finished", "test_ppl": 3.5, "run_name": run_name}

    assert sw.run_member(ok, tmp_path, train_fn=train_fn) == {
        "lr=0.5": {"status": "finished", "test_ppl": 3.5, "run_name": "lr=0.5"}}
    assert sw.run_member(bad, tmp_path, train_fn=train_fn) == {
        "lr=2.0": {"status": "failed", "error": "FloatingPointError: lr too large"}}
    assert sw.member_status(tmp_path / "lr=2.0") == {"status": "failed", "error": "FloatingPointError: lr too large"}
    assert "FloatingPointError" in (tmp_path / "lr=2.0" / "error.txt").read_text()
    assert sw.member_status(tmp_path / "lr=0.5")["status"] == "finished"
    with pytest.raises(RnnlabError, match="differ only in train.seed; got lr=0.5, lr=2.0"):
        sw.run_member([ok, bad], tmp_path)
    assert sw.member_status(tmp_path / "lr=2.0")["status"] == "failed"  # refused before touching anything


def test_vmap_seeds_through_the_runner(tmp_path):
    path = study_file(tmp_path, {"product": {"train.seed": [0, 1]}})
    cfg, sweep, wd = load_config(path), sw.load_sweep(path), tmp_path / "study"
    cfg.train.max_steps = 30
    index = sw.run_sweep(cfg, wd, sweep, vmap_seeds=True, say=lambda s: None)
    assert [m["status"] for m in index["members"]] == ["finished", "finished"]
    assert index["members"][0]["vmapped_with"] == ["seed=0", "seed=1"]
    s0, s1 = (json.loads((wd / f"seed={s}" / "summary.json").read_text()) for s in (0, 1))
    assert (s0["seed"], s1["seed"], s0["steps"]) == (0, 1, 30)
    assert s0["params_sha256"] != s1["params_sha256"]
    cfg1 = load_config(path)
    cfg1.train.max_steps, cfg1.train.seed = 30, 1
    ref = train.train_and_evaluate(cfg1, tmp_path / "one")
    assert s1["test_ppl"] == pytest.approx(ref["test_ppl"], rel=1e-5)
    # a command line that pins seed 1 runs (here: skips) only that member; sweep.json still lists both
    cfg.train.seed = 1
    index = sw.run_sweep(cfg, wd, sweep, pinned=["train.seed"], say=lambda s: None)
    assert index["selected"] == ["seed=1"]
    assert [(m["name"], m["status"]) for m in index["members"]] == [("seed=0", "finished"), ("seed=1", "finished")]
    assert json.loads((wd / "sweep.json").read_text())["members"] == index["members"]


# ----------------------------------------------------------------------------- CLI and W&B
def _cli(*args, cwd=ROOT):
    env = dict(os.environ, WANDB_MODE="disabled", JAX_PLATFORMS="cpu")
    return subprocess.run([sys.executable, "-m", "experiments.sweep", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_cli_bad_sweep_field_is_one_line(tmp_path):
    path = study_file(tmp_path, {"product": {"train.sed": [0, 1]}})
    r = _cli(f"--config={path}", f"--workdir={tmp_path / 'w'}")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "error: get_sweep(): 'train.sed' is not a config field (did you mean train.seed?); fields are dotted "
        "paths like model.cell or train.seed (see src/rnnlab/config.py)"]


def _agent_args(params: dict, point: dict) -> list[str]:
    """What a W&B agent's ${args} expands to for one grid point (wandb's own formatting)."""
    from wandb.sdk.launch.sweeps.utils import create_sweep_command_args

    return create_sweep_command_args({"args": {k: {"value": v} for k, v in point.items()}})["args"]


def test_wandb_sweep_spec_runs_the_same_study(tmp_path):
    sweep = {"product": {"model.cell": ["rnn", "lstm"], "train.lr": [0.01, 0.1]},
             "zip": {"train.mode": ["teacher_forcing", "always_sampling"], "model.hidden_size": [8, 16]}}
    path = study_file(tmp_path, sweep)
    out = tmp_path / "spec.yaml"
    r = _cli(f"--config={path}", "--workdir=runs/x", "--config.train.epochs=3", f"--wandb_sweep={out}")
    assert r.returncode == 0, r.stderr
    spec = yaml.safe_load(out.read_text())
    assert spec["method"] == "grid" and spec["program"] == "experiments/sweep.py"
    params = {k: v["values"] for k, v in spec["parameters"].items()}
    assert params == {"config.model.cell": ["rnn", "lstm"], "config.train.lr": [0.01, 0.1],
                      "zip": ["mode=teacher_forcing,hidden_size=8", "mode=always_sampling,hidden_size=16"]}
    assert spec["command"] == ["${env}", "${interpreter}", "${program}", f"--config={path}", "--workdir=runs/x",
                               "--config.train.epochs=3", "--config.wandb.mode=online", "${args}"]
    cfg = load_config(path)
    cfg.train.epochs = 3
    members = sw.expand(cfg, sweep)
    grid = list(itertools.product(*params.values()))
    assert len(grid) == len(members) == 8
    # Each grid point, parsed the way experiments/sweep.py parses the agent's command, pins
    # exactly one member: together they are the study, each once.
    from absl import flags
    from ml_collections import config_flags

    names = []
    for point in grid:
        argv = [a.replace("${env}", "").replace("${interpreter}", "") for a in spec["command"][3:-1]]
        argv += _agent_args(params, dict(zip(params, point)))
        fv = flags.FlagValues()
        config_flags.DEFINE_config_file("config", None, "", flag_values=fv, lock_config=True,
                                        sys_argv=["sweep", *argv])  # which overrides to define
        flags.DEFINE_string("workdir", None, "", flag_values=fv)
        flags.DEFINE_string("zip", None, "", flag_values=fv)
        fv(["sweep", *argv])
        got = sw.expand(fv.config, sw.load_sweep(path), pinned=sw.cli_fields(argv), zip_choice=fv.zip)
        assert len(got) == 1 and got[0].config.train.epochs == 3 and got[0].config.wandb.mode == "online"
        names.append(got[0].name)
    assert sorted(names) == sorted(m.name for m in members)
