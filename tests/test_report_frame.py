"""Frame data (music: summary level "frame", NLL in nats per frame, no perplexity): NLL columns
and val/nll curves, chosen by what the summaries and metrics hold; token data keeps ppl / bpc."""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import pytest
from test_report import done, write_run

from rnnlab import report


def frame(test, best, params=900, **kw):
    return {"status": "finished", "level": "frame", "train_nll": best - 1.0, "val_nll": best + 0.1,
            "best_val_nll": best, "test_nll": test, "test_nll_per_key": [test / 4] * 4, "num_params": params,
            "wall_s": 12.0, **kw}


@pytest.fixture()
def mixed(tmp_path):
    """jsb (frame data): gru and lstm x 2 seeds, val/nll curves; reber (token data): one rnn run."""
    root = tmp_path / "mixed"
    for cell, base in (("gru", 8.0), ("lstm", 7.0)):
        for seed in (0, 1):
            write_run(root, f"jsb/{cell}_s{seed}", data="jsb", cell=cell, seed=seed, val_key="val/nll",
                      summary=frame(base + seed, base - 0.5 + seed), val=[(10, base + 2 + seed, 1.0), (20, base + seed, 2.0)])
    write_run(root, "reber/rnn_s0", cell="rnn", summary=done(2.0, 2.1), val=[(10, 3.0, 1.0)])
    return root


def test_frame_rows_show_nll_and_token_rows_ppl(mixed):
    runs = report.load_runs(mixed)
    assert [report.level_of(r["summary"]) for r in runs] == ["frame"] * 4 + ["token"]
    fields, rows = report.aggregate(runs)
    by = {(r["data.name"], r["model.cell"]): r for r in rows}
    gru = by[("jsb", "gru")]
    assert gru["n"] == 2 and gru["test_nll_mean"] == pytest.approx(8.5) and gru["test_nll_std"] == pytest.approx(math.sqrt(0.5))
    assert gru["best_val_nll_mean"] == pytest.approx(8.0) and "test_ppl_mean" not in gru
    md = report.to_markdown(fields, rows)
    lines = md.splitlines()
    assert lines[0] == ("| data | cell | mode | H | layers | params | best valid ppl | test ppl | best valid NLL | test NLL | "
                        "optimal ppl | tokens/s | time (s) | seeds |")
    assert "| jsb | lstm | teacher_forcing | 16 | 1 | 900 |  |  | 7.000 ± 0.707 | 7.500 ± 0.707 |  |  | 12.0 | 2 |" in lines
    assert "| reber | rnn | teacher_forcing | 16 | 1 | 591 | 2.100 | 2.000 |  |  |" in md
    assert "NLL in nats per frame" in md

    only_frame = [r for r in runs if r["config"]["data.name"] == "jsb"]
    f2, r2 = report.aggregate(only_frame)
    head = report.to_markdown(f2, r2).splitlines()[0]
    assert head == "| data | cell | mode | H | layers | params | best valid NLL | test NLL | time (s) | seeds |"
    table = list(csv.DictReader(io.StringIO(report.to_csv(f2, r2))))
    assert float(table[1]["test_nll_mean"]) == pytest.approx(7.5) and "test_ppl_mean" not in table[1]


def test_frame_selection_uses_validation_nll(tmp_path):
    root = tmp_path / "music_lr"
    # best_val_nll: lr 0.001 -> 7.0, 7.2; lr 0.01 -> 6.5, 6.9 (chosen); lr 0.1 -> 8.0, 8.0
    for lr, vals in ((0.001, (7.0, 7.2)), (0.01, (6.5, 6.9)), (0.1, (8.0, 8.0))):
        for seed, v in enumerate(vals):
            write_run(root, f"lr{lr}_s{seed}", data="jsb", seed=seed, over={"train.lr": lr}, summary=frame(v + 0.3, v))
    _, _, (row,) = report.select(report.load_runs(root), ["train.lr"])
    assert (row["train.lr"], row["metric"], row["level"], row["n"]) == (0.01, "best_val_nll", "frame", 2)
    assert row["test_nll_mean"] == pytest.approx(7.0) and row["test_nll_std"] == pytest.approx(math.sqrt(0.08))
    md = report.build_selection(root, ["train.lr"])[1]
    assert md.splitlines()[0] == "| data | cell | mode | H | layers | lr (chosen) | settings | best valid NLL | test NLL | seeds |"
    assert "| jsb | rnn | teacher_forcing | 16 | 1 | 0.01 | 3 | 6.700 ± 0.283 | 7.000 ± 0.283 | 2 |" in md


def test_frame_curves_plot_val_nll(mixed, tmp_path):
    runs = report.load_runs(mixed)
    jsb = [r for r in runs if r["config"]["data.name"] == "jsb"]
    fig = report.curve_figure(jsb, "step")
    (ax,) = fig.axes
    assert ax.get_ylabel() == "validation NLL (nats per frame)"
    lines = {ln.get_label(): list(ln.get_ydata()) for ln in ax.get_lines()}
    assert lines == {"gru, teacher_forcing (n=2)": [10.5, 8.5], "lstm, teacher_forcing (n=2)": [9.5, 7.5]}  # no optimum line
    paths = report.plot_curves(runs, tmp_path / "plots", formats=("png",))
    assert sorted(Path(p).name for p in paths) == ["jsb_val_nll_vs_step.png", "jsb_val_nll_vs_wall.png",
                                                   "reber_val_ppl_vs_step.png", "reber_val_ppl_vs_wall.png"]
