"""The transduction kind's own evaluation (accuracy by length and by position, sequence accuracy,
free-running vs teacher-forced for models that feed their outputs back), the state-tracking study's
config and its table (report/state_tracking.py), one short run end to end, and the equal-parameter
LM study's config (configs/parallel_lm.py)."""
from __future__ import annotations

import json
import math

import jax
import numpy as np
import pytest

from rnnlab.config import base_config, validate
from rnnlab.data.transduction import running_parity, transduction_windows
from rnnlab.evaluate import make_eval_fn, window_sums
from rnnlab.kinds.transduction import TRANSDUCTION, accuracy_curves, rows_by_sequence, split_metrics, transduction_evaluate
from rnnlab.model import model_carries
from rnnlab.output_to_hidden import make_model
from rnnlab.report.state_tracking import bucket_accuracy, state_tracking_table


class _Corpus:  # what the kind reads of a TransductionCorpus
    input_size, num_classes = 2, 2


def _pairs(lengths, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for L in lengths:
        x = rng.integers(0, 2, L).astype(np.int32)
        out.append((x, running_parity(x)))
    return out


def _cfg(cell="lstm", H=6):
    c = base_config()
    c.model.cell, c.model.hidden_size, c.model.embed_size, c.model.num_layers = cell, H, 4, 1
    c.model.init, c.model.init_scale = "uniform", 0.5
    c.train.bptt, c.eval.batch_size = 4, 3
    return c


# ----------------------------------------------------------------------------- curves
def test_rows_by_sequence_joins_the_windows_of_each_group():
    pairs = _pairs([7, 2, 5, 9, 1])
    w = transduction_windows(pairs, 2, 4, sort_by_length=True)  # groups (9, 7), (5, 2), (1, -)
    ys, m = rows_by_sequence(w.y, w.mask, w.reset)
    assert ys.shape == (5, 12) and m.sum(1).tolist() == [9, 7, 5, 2, 1]
    for row, L, (_, y) in zip(ys, [9, 7, 5, 2, 1], sorted(pairs, key=lambda p: -len(p[0]))):
        assert row[:L].tolist() == y.tolist()


def test_accuracy_curves_count_each_target_once():
    pairs = _pairs([3, 3, 2, 1])
    w = transduction_windows(pairs, 2, 2, sort_by_length=True)  # rows: 3, 3 | 2, 1
    ys, m = rows_by_sequence(w.y, w.mask, w.reset)
    hit = np.ones_like(w.y, bool)
    # wrong: the first sequence of length 3 at its position 2, the length-1 sequence at its only one
    g0 = np.flatnonzero(w.reset)[0]
    hit[g0 + 0, 0, 1] = False
    g1 = np.flatnonzero(w.reset)[1]
    hit[g1, 1, 0] = False
    c = accuracy_curves(hit, w.mask, w.reset)
    assert c["acc_by_length"] == {"1": 0.0, "2": 1.0, "3": 5 / 6}
    assert c["seqs_by_length"] == {"1": 1, "2": 1, "3": 2}
    assert c["seq_acc_by_length"] == {"1": 0.0, "2": 1.0, "3": 0.5}
    assert c["acc_by_position"] == {"1": 3 / 4, "2": 2 / 3, "3": 1.0}
    assert c["seq_acc"] == 0.5


def test_bucket_accuracy_weights_by_targets():
    acc = {"21": 1.0, "30": 0.5, "50": 0.0}
    n = {"21": 2, "30": 1, "50": 4}
    assert bucket_accuracy(acc, n, 21, 40) == pytest.approx((21 * 2 * 1.0 + 30 * 0.5) / (21 * 2 + 30))
    assert bucket_accuracy(acc, n, 41, 60) == 0.0 and bucket_accuracy(acc, n, 61, 80) is None


# ----------------------------------------------------------------------------- the kind's pass
def _evaluate(cell, split="test", seed=0):
    cfg = _cfg(cell)
    model = make_model(cfg, {"vocab_size": 2, "num_outputs": 2})
    pairs = _pairs([9, 3, 9, 1, 3, 3, 1], seed)  # three lengths: one compile each when scored alone
    w = transduction_windows(pairs, cfg.eval.batch_size, cfg.train.bptt, sort_by_length=True)
    windows = (w.x, w.y, w.mask, w.reset)
    params = model.init(jax.random.key(seed), w.x[0], model_carries(cfg, w.x.shape[1]))["params"]
    return cfg, model, params, pairs, windows, transduction_evaluate(model, params, windows, cfg, _Corpus, split)


def test_its_sums_equal_the_generic_evaluation():
    """Loss and accuracy of the kind's pass = evaluate.window_sums through split_metrics (bit for bit)."""
    cfg, model, params, _, windows, m = _evaluate("lstm")
    ref = split_metrics(window_sums(model, params, windows, cfg, make_eval_fn(model, resets=True)), _Corpus)
    for k in ("nll_sum", "count", "loss", "ppl", "acc"):
        assert m[k] == ref[k], k
    assert TRANSDUCTION.evaluate is transduction_evaluate


def test_by_length_equals_scoring_each_sequence_alone():
    cfg, model, params, pairs, _, m = _evaluate("gru")
    per_len: dict = {}
    for x, y in pairs:
        logits, _ = model.apply({"params": params}, x[None], model_carries(cfg, 1))
        per_len.setdefault(str(len(x)), []).append((np.asarray(logits[0]).argmax(-1) == y).mean())
    assert set(m["acc_by_length"]) == set(per_len)
    for k, accs in per_len.items():
        assert m["acc_by_length"][k] == pytest.approx(np.mean(accs), abs=1e-12)
    assert m["seqs_by_length"] == {"1": 2, "3": 3, "9": 2}
    assert len(m["acc_by_position"]) == 9


def test_valid_split_has_no_curves_and_plain_cells_no_teacher_forced_keys():
    *_, m = _evaluate("lstm", split="valid")
    assert "acc_by_length" not in m and "seq_acc" in m and not any(k.endswith("_tf") for k in m)


def test_output_to_hidden_is_scored_free_running_and_teacher_forced():
    cfg, model, params, pairs, windows, m = _evaluate("output_to_hidden")
    # free running: its own argmax labels fed back, one sequence at a time from a zero carry
    hits = []
    for x, y in pairs:
        logits, _ = model.apply({"params": params}, x[None], model_carries(cfg, 1))
        hits.append(np.asarray(logits[0]).argmax(-1) == y)
    assert m["acc"] == pytest.approx(np.concatenate(hits).mean(), abs=1e-12)
    tf_hits = []
    for x, y in pairs:
        logits, _ = model.apply({"params": params}, x[None], model_carries(cfg, 1), outputs=y[None])
        tf_hits.append(np.asarray(logits[0]).argmax(-1) == y)
    assert m["acc_tf"] == pytest.approx(np.concatenate(tf_hits).mean(), abs=1e-12)
    assert set(m["acc_by_length_tf"]) == set(m["acc_by_length"]) and "nll_sum_tf" not in m
    assert math.isfinite(m["loss_tf"]) and m["ppl_tf"] == pytest.approx(math.exp(m["loss_tf"]))


# ----------------------------------------------------------------------------- the study
def test_study_config_is_valid_and_sweeps_54_runs():
    from configs import state_tracking as st
    from rnnlab.sweep.spec import expand

    cfg = st.get_config()
    validate(cfg)
    members = expand(cfg, st.get_sweep())
    assert len(members) == 54
    assert {m.config.model.cell for m in members} == set(st.CELLS)
    assert {m.config.data.name for m in members} == set(st.TASKS)
    assert cfg.data.task.test_min_len == cfg.data.task.max_len + 1 == 21 and cfg.data.task.test_max_len == 100


def _fake_run(root, name, task, cell, seed, acc, tf_acc=None):
    d = root / name
    d.mkdir(parents=True)
    cfg = json.loads(base_config().to_json())
    cfg["data"]["name"], cfg["model"]["cell"], cfg["train"]["seed"] = task, cell, seed
    (d / "config.json").write_text(json.dumps(cfg))
    s = {"status": "finished", "cell": cell, "train_mode": "teacher_forcing", "seed": seed, "test_ppl": 1.5,
         "best_val_ppl": 1.2, "num_params": 100, "val_acc": 1.0, "test_acc": acc, "test_seq_acc": acc / 2,
         "test_acc_by_length": {"21": acc, "90": acc / 2}, "test_seqs_by_length": {"21": 1, "90": 1}}
    if tf_acc is not None:
        s.update(val_acc_tf=1.0, test_acc_tf=tf_acc, test_seq_acc_tf=tf_acc, test_acc_by_length_tf={"21": tf_acc})
    (d / "summary.json").write_text(json.dumps(s))


def test_table_gives_mean_and_std_and_teacher_forced_rows(tmp_path):
    for seed, acc in enumerate([0.5, 0.7]):
        _fake_run(tmp_path, f"p_min_{seed}", "running_parity", "mingru", seed, acc)
        _fake_run(tmp_path, f"p_o2h_{seed}", "running_parity", "output_to_hidden", seed, 0.8 + 0.1 * seed, 1.0)
    lines = state_tracking_table(tmp_path).splitlines()
    assert len(lines) == 5
    mingru = [l for l in lines if "| mingru |" in l][0].split(" | ")
    assert mingru[6] == "0.600 ± 0.141"  # test acc
    assert mingru[7] == "0.600 ± 0.141" and mingru[10] == "0.300 ± 0.071"  # buckets 21-40 and 81-100
    own, gold = [l for l in lines if "output_to_hidden" in l]
    assert "own (free running)" in own and "0.850 ± 0.071" in own
    assert "gold (teacher-forced)" in gold and gold.split(" | ")[6] == "1.000 ± 0.000"


def test_table_without_transduction_runs_is_one_line(tmp_path):
    from rnnlab import RnnlabError

    _fake_run(tmp_path, "lm", "ptb", "lstm", 0, 0.5)
    s = json.loads((tmp_path / "lm" / "summary.json").read_text())
    (tmp_path / "lm" / "summary.json").write_text(json.dumps({k: v for k, v in s.items() if "acc" not in k}))
    with pytest.raises(RnnlabError, match="no finished transduction run"):
        state_tracking_table(tmp_path)


def test_a_short_output_to_hidden_run_writes_the_curves(tmp_path):
    from configs import state_tracking as st
    from rnnlab.train import train_and_evaluate

    cfg = st.get_config()
    cfg.model.cell, cfg.model.hidden_size = "output_to_hidden", 8
    tk = cfg.data.task
    tk.num_train, tk.num_valid, tk.num_test, tk.test_max_len = 64, 20, 20, 30
    cfg.train.epochs, cfg.train.lr = 3, 0.05
    s = train_and_evaluate(cfg, tmp_path / "run")
    assert s["steps"] == 6 and s["num_params"] == 2 * 8 + 2 * 8 + 8 + 8 * 2 + 2
    lengths = sorted(int(k) for k in s["test_acc_by_length"])
    assert lengths[0] >= 21 and lengths[-1] <= 30 and sum(s["test_seqs_by_length"].values()) == 20
    for k in ("test_acc", "test_acc_tf", "val_acc_tf", "test_seq_acc", "test_seq_acc_tf"):
        assert 0.0 <= s[k] <= 1.0, k
    assert set(s["test_acc_by_length_tf"]) == set(s["test_acc_by_length"])


def test_parallel_lm_config_gives_every_cell_about_the_same_parameter_count():
    """configs/parallel_lm.py: 5 (cell, H) pairs x 3 seeds, each model within 1.5% of 25k parameters
    (the Time Machine's character vocabulary has 28 symbols: 26 letters, space, <unk>)."""
    from configs import parallel_lm as lm
    from rnnlab.model import count_params
    from rnnlab.sweep.spec import expand

    validate(lm.get_config())
    members = expand(lm.get_config(), lm.get_sweep())
    assert len(members) == 15
    counts = {}
    for m in members:
        cfg = m.config
        model = make_model(cfg, 28)
        shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jax.numpy.zeros((1, 2), jax.numpy.int32),
                                                   model_carries(cfg, 1))["params"])
        counts[(cfg.model.cell, cfg.model.hidden_size)] = count_params(shapes)
    assert counts == {("rnn", 128): 25_244, ("gru", 71): 25_277, ("lstm", 60): 25_164, ("mingru", 256): 24_988,
                      ("minlstm", 190): 25_054}
