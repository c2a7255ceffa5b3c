"""``python -m experiments.train`` as a user runs it (subprocess, repository root): a tiny run writes
its three files; each bad input gives one line ``error: ...`` naming the bad value, a non-zero exit
and no traceback. (tests/test_bad_input.py covers many more bad inputs.)"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def train_cli(*args, timeout=300):
    env = dict(os.environ, WANDB_MODE="disabled", JAX_PLATFORMS="cpu")
    return subprocess.run([sys.executable, "-m", "experiments.train", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_tiny_run_writes_the_three_files(tmp_path):
    workdir = tmp_path / "qs"
    r = train_cli("--config=configs/quickstart.py", f"--workdir={workdir}", "--config.train.max_steps=12",
                  "--config.train.log_every=5", "--config.data.num_train=4000", "--config.data.num_valid=500",
                  "--config.data.num_test=500", "--config.model.cell=gru", "--config.train.progress=False",
                  "--config.wandb.mode=disabled")
    assert r.returncode == 0, r.stderr[-3000:]
    config = json.loads((workdir / "config.json").read_text())
    summary = json.loads((workdir / "summary.json").read_text())
    metrics = [json.loads(ln) for ln in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert config["model"]["cell"] == "gru" and config["train"]["max_steps"] == 12
    assert config["data"]["name"] == "reber" and config["data"]["num_train"] == 4000
    assert summary["status"] == "finished" and summary["cell"] == "gru" and summary["steps"] == 12
    assert summary["config_file"].endswith("quickstart.py")
    assert 1.0 < summary["optimal_ppl"] < summary["test_ppl"] < 7.0  # 7 symbols
    assert [m["step"] for m in metrics if "train/loss" in m] == [5, 10, 12]
    assert any("val/ppl" in m for m in metrics) and any("test/ppl" in m for m in metrics)
    printed = json.loads(r.stdout)  # the CLI prints the headline numbers as JSON
    assert printed["test_ppl"] == summary["test_ppl"] and printed["cell"] == "gru"
    assert "Traceback" not in r.stderr


def assert_one_line_error(r, *words):
    lines = r.stderr.strip().splitlines()
    assert r.returncode != 0
    assert "Traceback" not in r.stderr + r.stdout
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("error: "), lines[0]
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


QS = "--config=configs/quickstart.py"


def test_unknown_cell(tmp_path):
    r = train_cli(QS, f"--workdir={tmp_path / 'w'}", "--config.model.cell=transformer")
    assert_one_line_error(r, "transformer", "model.cell", "rnn", "gru", "gru_cho", "lstm")
    assert not (tmp_path / "w" / "config.json").exists()


def test_unknown_dataset(tmp_path):
    r = train_cli(QS, f"--workdir={tmp_path / 'w'}", "--config.data.name=imagenet")
    assert_one_line_error(r, "imagenet", "data.name", "ptb", "ptb_char", "tinyshakespeare", "reber")


def test_missing_data_file(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    r = train_cli("--config=configs/ptb_small.py", f"--workdir={tmp_path / 'w'}", f"--config.data.dir={empty}")
    assert_one_line_error(r, str(empty), "ptb.train.txt")
    assert not (tmp_path / "w" / "config.json").exists()  # nothing written for a run that cannot start


@pytest.mark.parametrize("override,words", [
    ("--config.train.batch_size=abc", ["train.batch_size", "abc"]),
    ("--config.model.dropout=half", ["model.dropout", "half"]),
])
def test_wrongly_typed_override(tmp_path, override, words):
    r = train_cli(QS, f"--workdir={tmp_path / 'w'}", override)
    assert_one_line_error(r, *words)


def test_unknown_override_field(tmp_path):
    r = train_cli(QS, f"--workdir={tmp_path / 'w'}", "--config.model.hiden_size=64")
    assert_one_line_error(r, "model.hiden_size", "hidden_size")  # the bad name and the likely one


def test_missing_config_file(tmp_path):
    r = train_cli("--config=configs/no_such_config.py", f"--workdir={tmp_path / 'w'}")
    assert_one_line_error(r, "configs/no_such_config.py")
