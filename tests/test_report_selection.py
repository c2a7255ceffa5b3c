"""Model selection: per cell, the searched setting with the lowest mean validation metric over
seeds, and that setting's test metric mean ± std (hand-made run directories with known numbers)."""
from __future__ import annotations

import csv
import io
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from test_report import done, write_run

from rnnlab import RnnlabError, report

ROOT = Path(__file__).resolve().parents[1]
# cell -> lr -> [(seed, best valid ppl, test ppl)]
VALUES = {
    "rnn": {0.01: [(0, 3.0, 3.1), (1, 3.2, 3.3)], 0.1: [(0, 2.0, 2.05), (1, 2.2, 2.25)], 1.0: [(0, 2.5, 2.6), (1, 2.5, 2.4)]},
    "lstm": {0.01: [(0, 2.9, 3.0), (1, 3.1, 3.2)], 0.1: [(0, 1.9, 1.8), (1, 2.1, 2.0)], 1.0: [(0, 1.5, 1.4), (1, 1.7, 1.6)]},
}


@pytest.fixture()
def lr_search(tmp_path):
    """rnn and lstm x lr 0.01 / 0.1 / 1 x seeds 0, 1; lstm at lr 1 has the best mean but its seed 2
    diverged; a sweep.json whose random part searched train.lr."""
    root = tmp_path / "lr_search"
    for cell, by_lr in VALUES.items():
        for lr, seeds in by_lr.items():
            for seed, val, test in seeds:
                write_run(root, f"{cell}_lr{lr}_s{seed}", cell=cell, seed=seed, over={"train.lr": lr},
                          summary=done(test, val))
    write_run(root, "lstm_lr1.0_s2", cell="lstm", seed=2, over={"train.lr": 1.0},
              summary={"status": "diverged", "error": "training diverged: loss nan at step 3"})
    (root / "sweep.json").write_text(json.dumps({"sweep": {"product": {"model.cell": ["rnn", "lstm"]},
                                                           "random": {"train.lr": {"log_uniform": [0.01, 1.0]}},
                                                           "samples": 3, "seed": 0}, "members": []}))
    return root


def test_select_picks_the_best_mean_validation_setting(lr_search):
    runs = report.load_runs(lr_search)
    groups, fields, rows = report.select(runs, ["train.lr"])
    assert groups == ["data.name", "model.cell", "train.mode", "model.hidden_size", "model.num_layers"]
    assert fields == ["train.lr"]
    rnn, lstm = rows
    assert (rnn["model.cell"], rnn["train.lr"], rnn["settings"], rnn["n"], rnn["seeds"]) == ("rnn", 0.1, 3, 2, [0, 1])
    assert rnn["metric"] == "best_val_ppl" and rnn["best_val_ppl_mean"] == pytest.approx(2.1)
    assert rnn["test_ppl_mean"] == pytest.approx(2.15) and rnn["test_ppl_std"] == pytest.approx(math.sqrt(0.02))
    assert [(c["values"], round(c["val_mean"], 6), c["n"], c["diverged"]) for c in rnn["candidates"]] == [
        ([0.01], 3.1, 2, False), ([0.1], 2.1, 2, False), ([1.0], 2.5, 2, False)]
    # lstm: lr 1 has the lowest mean valid ppl (1.6) over its finished seeds, but a seed diverged
    assert (lstm["train.lr"], lstm["n"], lstm["unfinished"]) == (0.1, 2, [])
    assert lstm["test_ppl_mean"] == pytest.approx(1.9) and lstm["best_val_ppl_mean"] == pytest.approx(2.0)
    assert lstm["candidates"][2]["diverged"] and lstm["candidates"][2]["val_mean"] == pytest.approx(1.6)

    # without the diverged run, lr 1 wins
    no_div = [r for r in runs if r["status"] != "diverged"]
    assert [r["train.lr"] for r in report.select(no_div, "train.lr")[2]] == [0.1, 1.0]


def test_selection_tables(lr_search):
    assert report.searched_fields(lr_search) == ["train.lr"]
    rows, md = report.build_selection(lr_search)  # fields from sweep.json
    lines = md.splitlines()
    assert lines[0] == ("| data | cell | mode | H | layers | lr (chosen) | settings | best valid ppl | test ppl | seeds |")
    assert lines[2] == "| reber | rnn | teacher_forcing | 16 | 1 | 0.1 | 3 | 2.100 ± 0.141 | 2.150 ± 0.141 | 2 |"
    assert lines[3] == "| reber | lstm | teacher_forcing | 16 | 1 | 0.1 | 3 | 2.000 ± 0.141 | 1.900 ± 0.141 | 2 |"
    assert lines[5].startswith("per row, the setting of train.lr with the lowest mean best_val_ppl over its seeds")
    groups, fields, rows = report.select(report.load_runs(lr_search), ["train.lr"])
    table = list(csv.DictReader(io.StringIO(report.selection_csv(groups, fields, rows))))
    assert [(t["model.cell"], float(t["train.lr"]), t["settings"], t["seeds"]) for t in table] == [
        ("rnn", 0.1, "3", "0 1"), ("lstm", 0.1, "3", "0 1")]
    assert float(table[0]["test_ppl_mean"]) == pytest.approx(2.15) and float(table[1]["test_ppl_std"]) == pytest.approx(math.sqrt(0.02))
    tex = report.selection_latex(groups, fields, rows)
    assert tex.startswith(r"\begin{tabular}{llllllrrrr}")
    assert r"reber & rnn & teacher\_forcing & 16 & 1 & 0.1 & 3 & 2.100 $\pm$ 0.141 & 2.150 $\pm$ 0.141 & 2 \\" in tex


def test_select_errors(lr_search):
    runs = report.load_runs(lr_search)
    with pytest.raises(RnnlabError, match=r"^select: 'train.lrr' is not a config field of these runs \(did you mean train.lr\?\)"):
        report.select(runs, ["train.lrr"])
    with pytest.raises(RnnlabError, match=r"^select: train.seed is averaged over, not selected"):
        report.select(runs, ["train.seed"])
    with pytest.raises(RnnlabError, match=r"^model selection needs the searched fields"):
        report.select(runs, [])
    (lr_search / "sweep.json").write_text('{"sweep": {"random": ')
    with pytest.raises(RnnlabError, match=r"sweep.json is not valid JSON .*pass --select=FIELD"):
        report.searched_fields(lr_search)


def test_a_group_where_no_setting_finished(lr_search):
    runs = [r for r in report.load_runs(lr_search) if r["config"]["model.cell"] == "rnn" or r["status"] != "finished"]
    groups, fields, (rnn, lstm) = report.select(runs, ["train.lr"])
    assert (lstm["train.lr"], lstm["n"], lstm["settings"], [c["n"] for c in lstm["candidates"]]) == (None, 0, 1, [0])
    assert "test_ppl_mean" not in lstm and rnn["train.lr"] == 0.1
    md = report.selection_markdown(groups, fields, [rnn, lstm]).splitlines()
    assert md[3] == "| reber | lstm | teacher_forcing | 16 | 1 | none finished | 1 |  |  | 0 | 1 diverged (seed 2) |"
    assert report.selection_csv(groups, fields, [lstm]).splitlines()[1].startswith("reber,lstm,teacher_forcing,16,1,,1,0,,")


def test_two_searched_fields(tmp_path):
    root = tmp_path / "two"
    # valid ppl = 2 + |lr - 0.1| * 10 + dropout (seed adds 0.1): best lr 0.1, dropout 0.0
    for lr in (0.1, 0.3):
        for p in (0.0, 0.5):
            for seed in (0, 1):
                v = 2 + abs(lr - 0.1) * 10 + p + 0.1 * seed
                write_run(root, f"lr{lr}_p{p}_s{seed}", seed=seed, over={"train.lr": lr, "model.dropout": p},
                          summary=done(v + 0.5, v))
    groups, fields, rows = report.select(report.load_runs(root), ["train.lr", "model.dropout"])
    assert "train.lr" not in groups and "model.dropout" not in groups
    (row,) = rows
    assert (row["train.lr"], row["model.dropout"], row["settings"]) == (0.1, 0.0, 4)
    assert row["test_ppl_mean"] == pytest.approx(2.55)
    assert report.selection_markdown(groups, fields, rows).splitlines()[0].endswith(
        "| lr (chosen) | dropout (chosen) | settings | best valid ppl | test ppl | seeds |")


def test_cli_select(lr_search, tmp_path):
    out = tmp_path / "rep"
    (lr_search / "sweep.json").unlink()  # the fields come from --select
    p = subprocess.run([sys.executable, "-m", "experiments.report", f"--runs={lr_search}", f"--out={out}",
                        "--select=train.lr", "--formats=png"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    sel = (out / "selection.md").read_text()
    assert sel in p.stdout and "| reber | lstm | teacher_forcing | 16 | 1 | 0.1 | 3 |" in sel
    assert json.loads((out / "selection.json").read_text())[1]["candidates"][2]["diverged"] is True
    assert (out / "selection.csv").exists() and (out / "selection.tex").exists()
    p = subprocess.run([sys.executable, "-m", "experiments.report", f"--runs={lr_search}", f"--out={out}",
                        "--select=train.lrr"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and p.stderr.strip().splitlines() == [
        "error: select: 'train.lrr' is not a config field of these runs (did you mean train.lr?); "
        "fields are dotted paths like train.lr (see src/rnnlab/config.py)"]
