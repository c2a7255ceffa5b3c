"""The random-LSTM oracle source and the free-running metrics (data/oracle.py, free_running.py): the oracle's own samples
score its entropy; a model trained on it scores close to it; exposure gap, distinct-n, Reber
validity and the reference-model perplexity on known cases."""
from __future__ import annotations

import json
import math

import jax
import numpy as np
import pytest

from rnnlab import RnnlabError
from rnnlab.config import base_config, validate
from rnnlab.data import REBER_SYMBOLS, load_corpus, reber_sample
from rnnlab.data.oracle import get_oracle
from rnnlab.free_running import distinct_n, free_running_metrics, log_items, prompt_positions, reber_first_string


def oracle_cfg(**data):
    c = base_config()
    c.data.name = "oracle"
    c.data.num_train, c.data.num_valid, c.data.num_test = 30_000, 3_000, 4_000
    o = c.data.oracle
    o.vocab_size, o.hidden_size, o.embed_size, o.init_std, o.entropy_tokens = 16, 8, 8, 1.0, 30_000
    for k, v in data.items():
        c.data[k] = v
    c.eval.free_running = True
    c.eval.num_samples, c.eval.prompt_len, c.eval.sample_len = 512, 16, 32
    c.eval.exposure_ks, c.eval.gap_tokens = (1, 4, 16), 4
    return c


@pytest.fixture(scope="module")
def corpus():
    return load_corpus(oracle_cfg().data)


def test_oracle_corpus(corpus):
    c = oracle_cfg()
    validate(c)
    assert corpus.vocab.size == 16 and corpus.level == "word"
    assert (corpus.train.size, corpus.valid.size, corpus.test.size) == (30_000, 3_000, 4_000)
    assert corpus.train.min() >= 0 and corpus.train.max() < 16
    again = load_corpus(oracle_cfg().data)
    np.testing.assert_array_equal(again.test, corpus.test)  # same fields, same streams
    other = load_corpus(oracle_cfg(seed=99).data)
    assert (other.test[:100] != corpus.test[:100]).any()
    m = corpus.meta
    H = m["oracle_entropy"]
    assert 0.3 < H < math.log(16) and m["optimal_ppl"] == pytest.approx(math.exp(H))
    assert m["oracle_entropy_stderr"] < 0.02
    # the test split's exact oracle NLL is a sample of the same rate
    assert abs(m["oracle_test_nll"] - H) < 0.1
    # the oracle has context: its rate is well below the unigram entropy of its own output
    p = np.bincount(corpus.train, minlength=16) / corpus.train.size
    assert H < -(p[p > 0] * np.log(p[p > 0])).sum() - 0.1


def test_oracle_config_errors():
    c = oracle_cfg()
    c.data.oracle.cell = "transformer"
    with pytest.raises(RnnlabError, match="data.oracle.cell"):
        validate(c)
    c = oracle_cfg(num_test=1)
    with pytest.raises(RnnlabError, match="num_test"):
        load_corpus(c.data)


def test_oracle_scores_its_own_samples_at_its_entropy(corpus):
    c = oracle_cfg()
    oracle = get_oracle(c.data)
    out = free_running_metrics(oracle.model, oracle.params, corpus, c, jax.random.key(0), test={"loss": 1.0})
    H = corpus.meta["oracle_entropy"]
    # 512 x 32 sampled tokens: standard error about 0.01 nats
    assert abs(out["nll_oracle"] - H) < 0.05
    assert abs(out["model_entropy"] - H) < 0.05  # the same quantity, Rao-Blackwellised
    assert out["nll_test"] == 1.0 and out["oracle_entropy"] == H
    for k in ("1", "4", "16"):
        assert abs(out["exposure_gap_kl"][k]) < 1e-6  # KL(oracle || oracle) = 0 on any prefix
        assert out["exposure_gap"][k] > 0.0  # wrong context costs even the oracle something
        assert abs(out["exposure_gap"][k] - out["oracle_exposure_gap"][k]) < 0.15  # same procedure, other draws
    assert set(out["distinct_n"]) == {"1", "2", "3"}


def test_trained_model_scores_close_to_the_oracle(tmp_path, corpus):
    from rnnlab.train import train_and_evaluate

    c = oracle_cfg()
    c.model.cell, c.model.hidden_size, c.model.embed_size, c.model.num_layers, c.model.init = "lstm", 32, 16, 1, "pytorch"
    c.train.optimizer, c.train.lr, c.train.batch_size, c.train.bptt, c.train.epochs = "adam", 0.01, 32, 20, 4
    c.train.lr_hold_epochs, c.train.clip_norm, c.train.progress, c.train.log_every = 3, 1.0, False, 20
    c.eval.batch_size = 8
    c.wandb.mode = "disabled"
    s = train_and_evaluate(c, tmp_path / "run")
    H, H_test = s["oracle_entropy"], s["oracle_test_nll"]
    assert s["nll_test"] == s["test_loss"]
    assert s["nll_test"] - H_test < 0.15  # within 0.15 nats of the oracle on the same split
    assert s["nll_oracle"] - H < 0.3  # its samples look like the oracle's
    assert s["nll_oracle"] < math.log(16) - 0.5
    assert set(s["exposure_gap"]) == set(s["exposure_gap_kl"]) == {"1", "4", "16"}
    rec = {}
    for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines():
        rec.update(json.loads(line))
    assert rec["eval/nll_oracle"] == s["nll_oracle"] and rec["eval/exposure_gap/4"] == s["exposure_gap"]["4"]
    # the reference-model perplexity of a model's samples under itself is exp(its own entropy)
    from rnnlab.runs import load_run

    run = load_run(tmp_path / "run")
    c.eval.reference = str(tmp_path / "run")
    out = free_running_metrics(run.model, run.params, corpus, c, jax.random.key(1))
    assert math.log(out["sample_ppl_ref"]) == pytest.approx(out["model_entropy"], abs=0.05)


def test_distinct_n_and_log_items():
    s = np.array([[1, 2, 1, 2], [3, 3, 3, 3]])
    assert distinct_n(s, 1) == pytest.approx(3 / 8)
    assert distinct_n(s, 2) == pytest.approx(3 / 6)  # (1,2), (2,1), (3,3)
    assert distinct_n(np.arange(12).reshape(3, 4), 3) == 1.0
    assert log_items({"a": 1.5, "gap": {"1": 0.1, "4": 0.2}, "none": None}) == \
        {"eval/a": 1.5, "eval/gap/1": 0.1, "eval/gap/4": 0.2}


def test_reber_first_string():
    ids = reber_sample(400, np.random.default_rng(0))
    B, E = REBER_SYMBOLS.index("B"), REBER_SYMBOLS.index("E")
    starts = [i for i in range(1, 380) if ids[i] == B and ids[i - 1] == E]
    assert starts
    for p in starts:
        assert reber_first_string(ids[p:p + 200]) == "valid"
        n = next(j for j in range(p + 1, 400) if ids[j] == B and ids[j - 1] == E) - p  # the string's length
        assert reber_first_string(ids[p:p + n - 1]) == "undecided"
        bad = ids[p:p + n].copy()
        bad[1] = REBER_SYMBOLS.index("S")  # the second symbol must be T or P
        assert reber_first_string(bad) == "invalid"
    assert reber_first_string(np.array([REBER_SYMBOLS.index("T")])) == "invalid"  # must start with B


def test_reber_free_running(tmp_path):
    from rnnlab.model import LanguageModel

    c = base_config()
    c.data.name = "reber"
    c.data.num_train, c.data.num_valid, c.data.num_test = 2_000, 1_000, 3_000
    c.eval.num_samples, c.eval.prompt_len, c.eval.sample_len = 64, 12, 40
    c.eval.exposure_ks = (0, 2)
    corpus = load_corpus(c.data)
    pos = prompt_positions(corpus, 64, 12, 40)
    B, E = REBER_SYMBOLS.index("B"), REBER_SYMBOLS.index("E")
    assert (corpus.test[pos] == B).all() and (corpus.test[pos - 1] == E).all()
    m = LanguageModel(vocab_size=7, cell="gru", hidden_size=8, num_layers=1)
    params = m.init(jax.random.key(0), np.zeros((1, 3), np.int32), (m.cell_fns.initial_carry((1,), 8),))["params"]
    out = free_running_metrics(m, params, corpus, c, jax.random.key(0))
    # an untrained model writes almost no valid string (a valid one needs >= 9 right symbols)
    assert 0.0 <= out["valid_fraction"] < 0.1
    assert out["exposure_gap"]["0"] == 0.0  # k = 0: both contexts are the same
    assert out["oracle_entropy"] == pytest.approx(corpus.meta["entropy_rate_nats"])
    assert "nll_oracle" not in out  # a grammar gives invalid samples probability 0: reported as validity
