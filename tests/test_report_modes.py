"""report.modes_table (moved from oracle.py): the TF-vs-SS study's table from summary.json files.
EXPECTED is what oracle.modes_table printed for this study at 7e243fe (the move keeps it)."""
from __future__ import annotations

import json
import math

import pytest

from rnnlab import RnnlabError
from rnnlab.report import modes_table


def study_dir(root):
    """gru / lstm x teacher forcing / scheduled sampling (linear, inverse_sigmoid) x 2 seeds, with
    made-up free-running metrics; plus a diverged run and a finished run without them (not rows)."""
    i = 0
    for cell in ("lstm", "gru"):
        for mode, kind in (("scheduled_sampling", "linear"), ("teacher_forcing", "inverse_sigmoid"),
                           ("scheduled_sampling", "inverse_sigmoid")):
            for seed in (0, 1):
                i += 1
                d = root / f"{cell}_{mode}_{kind}_s{seed}"
                d.mkdir(parents=True)
                (d / "config.json").write_text(json.dumps({"train": {"schedule": {"kind": kind}, "mode": mode}}))
                (d / "summary.json").write_text(json.dumps({
                    "status": "finished", "cell": cell, "train_mode": mode, "seed": seed, "test_ppl": 10.0 + i,
                    "nll_test": 2.0 + 0.1 * i, "nll_oracle": 2.5 + 0.01 * i * i,
                    "exposure_gap": {"1": 0.01 * i, "4": 0.02 * i + seed}, "exposure_gap_kl": {"4": 0.5 * seed},
                    "distinct_n": {"2": 0.9 - 0.01 * i}, "oracle_test_nll": 2.25, "oracle_entropy": 2.2,
                    "oracle_exposure_gap": {"4": 0.05 + 0.01 * seed}, "distinct_n_data": {"2": 0.95}}))
    for name, s in (("diverged", {"status": "diverged", "error": "nan"}), ("no_free", {"status": "finished", "test_ppl": 3.0})):
        (root / name).mkdir()
        (root / name / "summary.json").write_text(json.dumps(s))
    return root


EXPECTED = """\
| cell | mode | schedule | seeds | test ppl | NLL-test | NLL-oracle | gap k=4 | gap KL k=4 | distinct-2 |
|---|---|---|---|---|---|---|---|---|---|
| gru | teacher_forcing | - | 2 | 19.500 ± 0.707 | 2.950 ± 0.071 | 3.405 ± 0.134 | 0.690 ± 0.721 | 0.250 ± 0.354 | 0.805 ± 0.007 |
| gru | scheduled_sampling | linear | 2 | 17.500 ± 0.707 | 2.750 ± 0.071 | 3.065 ± 0.106 | 0.650 ± 0.721 | 0.250 ± 0.354 | 0.825 ± 0.007 |
| gru | scheduled_sampling | inverse_sigmoid | 2 | 21.500 ± 0.707 | 3.150 ± 0.071 | 3.825 ± 0.163 | 0.730 ± 0.721 | 0.250 ± 0.354 | 0.785 ± 0.007 |
| lstm | teacher_forcing | - | 2 | 13.500 ± 0.707 | 2.350 ± 0.071 | 2.625 ± 0.049 | 0.570 ± 0.721 | 0.250 ± 0.354 | 0.865 ± 0.007 |
| lstm | scheduled_sampling | linear | 2 | 11.500 ± 0.707 | 2.150 ± 0.071 | 2.525 ± 0.021 | 0.530 ± 0.721 | 0.250 ± 0.354 | 0.885 ± 0.007 |
| lstm | scheduled_sampling | inverse_sigmoid | 2 | 15.500 ± 0.707 | 2.550 ± 0.071 | 2.805 ± 0.078 | 0.610 ± 0.721 | 0.250 ± 0.354 | 0.845 ± 0.007 |
| oracle | (the source) | - | - | 9.488 | 2.250 | 2.200 (entropy) | 0.055 ± 0.005 | 0 | 0.950 ± 0.000 |"""


def test_modes_table_is_unchanged_by_the_move(tmp_path):
    root = study_dir(tmp_path / "tf_vs_ss")
    assert modes_table(root) == EXPECTED
    assert math.exp(2.25) == pytest.approx(9.488, abs=5e-4)
    k1 = modes_table(root, k=1).splitlines()
    assert k1[0].endswith("| gap k=1 | gap KL k=1 | distinct-2 |")
    assert k1[2] == "| gru | teacher_forcing | - | 2 | 19.500 ± 0.707 | 2.950 ± 0.071 | 3.405 ± 0.134 | 0.095 ± 0.007 | - | 0.805 ± 0.007 |"


def test_modes_table_lists_unreadable_summaries(tmp_path):
    root = study_dir(tmp_path / "tf_vs_ss")
    (root / "torn").mkdir()
    (root / "torn" / "summary.json").write_text('{"status": "finished", "cell": "gr')
    lines = modes_table(root).splitlines()
    assert "\n".join(lines[:len(EXPECTED.splitlines())]) == EXPECTED  # the rows do not change
    assert lines[-2:] == ["unreadable runs (1; left out of every mean):",
                          f"- {root / 'torn'}: summary.json is not valid JSON (Unterminated string starting at: "
                          f"line 1 column 32; truncated?)"]
    empty = tmp_path / "empty"
    (empty / "a").mkdir(parents=True)
    (empty / "a" / "summary.json").write_text("[]")
    with pytest.raises(RnnlabError, match=r"no finished run with free-running metrics under .*; 1 unreadable: .*a: "
                                          r"summary.json is not a JSON object$"):
        modes_table(empty)
