"""Tests of rnnlab.data.transduction: every answer against a brute-force loop, seeds, length ranges
(test longer than train), windows, errors."""
from __future__ import annotations

import types

import numpy as np
import pytest

from rnnlab import RnnlabError, data
from rnnlab.config import base_config, validate


def cfg(name, seed=7, **task):
    t = dict(num_train=300, num_valid=50, num_test=60)
    t.update(task)
    return types.SimpleNamespace(name=name, seed=seed, task=types.SimpleNamespace(**t))


def brute(name, x, modulus=5):
    """The answers one step at a time, with plain Python counters."""
    out, ones, zeros, pos = [], 0, 0, 0
    for s in x.tolist():
        if name == "running_parity":
            ones += s
            out.append(1 if ones % 2 else 0)
        elif name == "running_majority":
            ones, zeros = ones + (s == 1), zeros + (s == 0)
            out.append(1 if ones > zeros else 0)
        else:  # running_count: 0 stay, 1 step forward, 2 step back on a cycle of `modulus` states
            pos = {0: pos, 1: pos + 1, 2: pos - 1}[s]
            if pos == modulus:
                pos = 0
            if pos == -1:
                pos = modulus - 1
            out.append(pos)
    return out


@pytest.mark.parametrize("name,task,sizes", [
    ("running_parity", {}, (2, 2)),
    ("running_majority", {}, (2, 2)),
    ("running_count", {}, (2, 5)),
    ("running_count", {"vocab": 3, "modulus": 7}, (3, 7)),
])
def test_answers_match_brute_force(name, task, sizes):
    c = data.load_corpus(cfg(name, **task))
    assert isinstance(c, data.TransductionCorpus)
    assert (c.kind, c.level, c.vocab) == ("transduction", "token", None)
    assert (c.input_size, c.num_classes) == sizes
    for split in ("train", "valid", "test"):
        for x, y in c.split(split):
            assert x.dtype == y.dtype == np.int32 and x.shape == y.shape
            assert 0 <= x.min() and x.max() < c.input_size
            assert y.tolist() == brute(name, x, c.num_classes)
    symbols = np.concatenate([x for x, _ in c.train])
    freq = np.bincount(symbols, minlength=c.input_size) / symbols.size  # uniform symbols
    np.testing.assert_allclose(freq, 1 / c.input_size, atol=0.03)


def test_majority_ties_are_zero():
    np.testing.assert_array_equal(data.running_majority([1, 0, 0, 1, 1, 1, 0, 0]), [1, 0, 0, 0, 1, 1, 1, 0])
    np.testing.assert_array_equal(data.running_parity([1, 1, 0, 1]), [1, 0, 0, 1])
    np.testing.assert_array_equal(data.running_count([1, 1, 2, 2, 2, 0, 1], 3), [1, 2, 1, 0, 2, 2, 0])


def test_lengths_and_sizes():
    c = data.load_corpus(cfg("running_parity", min_len=3, max_len=9, test_min_len=12, test_max_len=15))
    lens = {s: [x.size for x, _ in c.split(s)] for s in ("train", "valid", "test")}
    assert [len(v) for v in lens.values()] == [300, 50, 60]
    assert min(lens["train"]) == 3 and max(lens["train"]) == 9  # 300 draws cover all 7 lengths
    assert 3 <= min(lens["valid"]) and max(lens["valid"]) <= 9
    assert min(lens["test"]) >= 12 and max(lens["test"]) <= 15
    assert c.meta["train_sequences"] == 300 and c.meta["test_targets"] == sum(lens["test"])
    d = data.load_corpus(types.SimpleNamespace(name="running_parity", seed=0, task=base_config().data.task))
    train_max = max(x.size for x, _ in d.train)
    assert len(d.train) == 10_000 and train_max == 20 and min(x.size for x, _ in d.test) == 21 > train_max


def test_seeds_reproduce():
    a = data.load_corpus(cfg("running_count", seed=3))
    b = data.load_corpus(cfg("running_count", seed=3))
    c = data.load_corpus(cfg("running_count", seed=4))
    assert all(np.array_equal(p[0], q[0]) for p, q in zip(a.train, b.train))
    assert all(np.array_equal(p[0], q[0]) for p, q in zip(a.test, b.test))
    assert not all(p[0].size == q[0].size and np.array_equal(p[0], q[0]) for p, q in zip(a.train, c.train))
    # the splits draw from different generators
    assert [x.tolist() for x, _ in a.train[:50]] != [x.tolist() for x, _ in a.valid]


def test_windows_aligned():
    c = data.load_corpus(cfg("running_majority"))
    w = data.transduction_windows(c.valid, batch_size=8, bptt=6)
    assert w.x.dtype == np.int32 and w.x.shape[1:] == (8, 6)
    assert w.mask.sum() == c.meta["valid_targets"]
    g = data.window_groups(w.reset)[1]
    x = np.concatenate(list(w.x[g, 2]))
    y = np.concatenate(list(w.y[g, 2]))
    x0, y0 = c.valid[8 + 2]
    np.testing.assert_array_equal(x[: x0.size], x0)
    np.testing.assert_array_equal(y[: y0.size], y0)  # no shift: y_t answers x_1..x_t


@pytest.mark.parametrize("name,task,match", [
    ("running_count", {"vocab": 4}, "data.task.vocab=4 is not valid for running_count"),
    ("running_count", {"modulus": 1}, "data.task.modulus=1"),
    ("running_parity", {"min_len": 5, "max_len": 4}, "data.task.max_len=4 is below data.task.min_len=5"),
    ("running_parity", {"test_min_len": 0}, "data.task.test_min_len=0"),
    ("running_parity", {"num_valid": 0}, "data.task.num_valid=0"),
    ("running_parity", {"max_len": -2}, "data.task.max_len=-2"),
    ("running_parity", {"min_len": 2.5}, "data.task.min_len=2.5"),
])
def test_bad_settings(name, task, match):
    with pytest.raises(RnnlabError, match=match) as e:
        data.load_corpus(cfg(name, **task))
    assert "\n" not in str(e.value)


def test_registry_and_config():
    for name in data.TRANSDUCTION_TASKS:
        c = base_config()
        c.data.name = name
        validate(c)
    c = data.load_corpus(types.SimpleNamespace(name="running_count", seed=1))  # no task section: defaults
    assert c.num_classes == 5 and len(c.train) == 10_000
