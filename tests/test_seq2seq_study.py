"""A tiny version of configs/seq2seq_study.py through the sweep runner (copy, one cell, teacher forcing
and professor forcing, 2 seeds vmapped), its tables and plot; the run directories it writes feed the
``experiments.sample --source`` CLI; one-line errors for bad sources, beam width 0 and a pair file
line without a tab; a seq2seq professor-forcing run resumes bit for bit."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rnnlab.sampling import translate_text
from rnnlab.seq2seq.runs import load_pair_run
from rnnlab.seq2seq.study import plot_accuracy_by_length, professor_table, study_tables

from _tiny import interrupted_run

ROOT = Path(__file__).resolve().parents[1]


def study_module():
    spec = importlib.util.spec_from_file_location("seq2seq_study", ROOT / "configs" / "seq2seq_study.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def tiny_study_config():
    c = study_module().get_config()
    t = c.data.task
    t.min_len, t.max_len, t.test_min_len, t.test_max_len = 1, 3, 4, 5
    t.num_train, t.num_valid, t.num_test = 40, 10, 10
    c.model.hidden_size, c.model.embed_size = 8, 4
    c.train.batch_size, c.train.epochs, c.train.log_every = 10, 2, 2  # 8 steps
    c.eval.batch_size, c.eval.beam_size = 10, 2
    c.train.professor.hidden_size = 4
    c.model.cell = "gru"
    return c


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    from rnnlab.sweep import run_sweep

    sweep = study_module().get_sweep()
    sweep["product"] = {"data.name": ["copy"], "model.cell": ["gru"], "train.seed": [0, 1]}
    sweep["zip"] = {k: v[::4] for k, v in sweep["zip"].items()}  # teacher forcing, professor forcing
    assert sweep["zip"]["train.mode"] == ["teacher_forcing", "professor_forcing"]
    wd = tmp_path_factory.mktemp("s2s") / "study"
    index = run_sweep(tiny_study_config(), wd, sweep, vmap_seeds=True, say=lambda s: None)
    assert {m["status"] for m in index["members"]} == {"finished"}
    return wd


def summaries(wd):
    return {p.parent.name: json.loads(p.read_text()) for p in Path(wd).glob("*/summary.json")}


def test_tiny_study_tables_and_plot(tiny_study, tmp_path):
    runs = summaries(tiny_study)
    assert len(runs) == 4
    for name, s in runs.items():
        assert 0.0 <= s["test_seq_acc"] <= 1.0 and 0.0 <= s["val_beam_token_acc"] <= 1.0 and s["test_ppl"] > 1.0
        assert set(s["test_seq_acc_by_len"]) == {"4", "5"} and set(s["val_count_by_len"]) <= {"1", "2", "3"}
        assert sum(s["test_count_by_len"].values()) == 10 and s["test_decode_max_len"] == 5 + 1 + 5
    table = study_tables(tiny_study)
    assert "**copy**" in table and "| gru | teacher forcing |" in table and "| gru | professor forcing |" in table
    tf = [s for n, s in runs.items() if "teacher_forcing" in n]
    mean = 100 * sum(s["test_token_acc"] for s in tf) / 2
    row = next(x for x in table.splitlines() if "| gru | teacher forcing |" in x)
    assert f"{mean:.1f} ± " in row and row.endswith("| 2 |")
    pf_rows = [x for x in professor_table(tiny_study).splitlines() if x.startswith("| copy | gru | professor forcing |")]
    assert len(pf_rows) == 1 and pf_rows[0].endswith("| 2 |")
    png = plot_accuracy_by_length(tiny_study, tmp_path / "acc.png")
    assert Path(png).stat().st_size > 1000
    pf = next(p for p in Path(tiny_study).iterdir() if "professor_forcing,kind=constant" in p.name)
    lines = [json.loads(x) for x in (pf / "metrics.jsonl").read_text().splitlines()]
    assert any("train/disc_acc" in x for x in lines) and all("train/disc_acc" not in x or 0 <= x["train/disc_acc"] <= 1
                                                              for x in lines)


def run_cli(module, *args):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


def test_sample_source_cli(tiny_study):
    wd = next(p for p in Path(tiny_study).iterdir() if p.is_dir() and "professor" in p.name and "seed=0" in p.name)
    run = load_pair_run(wd)
    assert "discriminator" not in run.params and run.src_vocab.itos[:4] == ["<pad>", "<bos>", "<eos>", "<unk>"]
    r = run_cli("experiments.sample", f"--workdir={wd}", "--source=abc", "--beam=2", "--length=8")
    assert r.returncode == 0, r.stderr
    want = translate_text(run.model, run.params, run.src_vocab, run.tgt_vocab, "abc", beam_size=2, max_len=8)
    assert r.stdout == want + "\n" and set(want) <= set("abcdefghij<>unk")
    r = run_cli("experiments.sample", f"--workdir={wd}", "--source=abz")
    assert r.returncode == 0 and r.stderr.strip().splitlines()[-1] == \
        "warning: source chars not in the vocab map to <unk>: 'z'"
    for args, message in (
        (["--source=abc", "--beam=0"], "error: beam width 0 is not valid; it must be an integer >= 1 (1 = greedy)"),
        (["--source="], "error: --source is empty; give the source sentence (or symbols) to translate"),
        ([], f"error: {wd} is a sequence-to-sequence run: give --source=TEXT to decode"),
    ):
        r = run_cli("experiments.sample", f"--workdir={wd}", *args)
        assert r.returncode == 2 and r.stdout == "" and r.stderr.strip().splitlines() == [message], r.stderr


def test_pair_file_line_without_a_tab_is_one_line(tmp_path):
    (tmp_path / "fra_eng").mkdir()
    (tmp_path / "fra_eng" / "fra.txt").write_text("Go.\tVa !\nHi. Salut !\n")
    r = run_cli("experiments.train", "--config=configs/seq2seq_study.py:fra_eng", f"--workdir={tmp_path / 'run'}",
                "--config.data.name=fra_eng", f"--config.data.dir={tmp_path}")
    assert r.returncode == 2 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "line 2 has no tab ('Hi. Salut !')" in lines[0]


@pytest.mark.slow
def test_seq2seq_professor_forcing_resumes_bit_for_bit(monkeypatch, tmp_path):
    from rnnlab.train import train_and_evaluate

    def cfg():
        c = tiny_study_config()
        c.train.mode, c.train.seed = "professor_forcing", 3
        c.train.professor.adversarial_above = 0.0  # the adversarial term on from the start
        c.checkpoint.every_steps = 3
        return c

    full = train_and_evaluate(cfg(), tmp_path / "full")
    interrupted_run(monkeypatch, tmp_path / "cut", "step", 5, cfg())
    resumed = train_and_evaluate(cfg(), tmp_path / "cut")
    assert resumed["params_sha256"] == full["params_sha256"]
    assert resumed["test_seq_acc"] == full["test_seq_acc"] and resumed["val_ppl"] == full["val_ppl"]
