"""Transduction tasks: a target at every input step, exact answers, test strings longer than train's
(numpy only).

``data.name`` (fields ``data.task.*``, seeded by ``data.seed``; x_t the input symbol at step t = 1..T):

* ``running_parity``: x_t in {0, 1}; y_t = (x_1 + ... + x_t) mod 2.
  input_size 2, num_classes 2.
* ``running_count``: cycle navigation (Deletang et al. 2023, "Neural networks and the Chomsky
  hierarchy", made a transduction): a pointer on a cycle of k = ``task.modulus`` states starts at 0;
  each symbol moves it, 0 = stay, 1 = +1, and with ``task.vocab=3`` also 2 = -1;
  y_t = (sum_{s <= t} move(x_s)) mod k, in 0..k-1. With the default vocab 2 it is the number of
  ones so far mod k. input_size 2 or 3, num_classes k.
* ``running_majority``: x_t in {0, 1}; y_t = 1 if the ones among x_1..x_t outnumber the zeros,
  else 0 (a tie gives 0, so y_t = 0 at every even t with as many ones as zeros). input_size 2,
  num_classes 2.

Each split holds ``task.num_{split}`` sequences (counted in sequences, not tokens); a sequence's
length T is uniform in ``task.min_len..task.max_len`` for train and valid and in
``task.test_min_len..task.test_max_len`` for test, its symbols uniform over the input symbols.
Split k in (train, valid, test) = (0, 1, 2) draws from ``np.random.default_rng([data.seed, k])``.

Shapes: T length of one sequence, W windows, B batch, T window length in ``transduction_windows``.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from .. import RnnlabError
from .corpus import cfg_get
from .padded import SequenceSplits, Windows, padded_windows

SPLITS = ("train", "valid", "test")
TRANSDUCTION_TASKS = ("running_parity", "running_count", "running_majority")
# data.task defaults (config.py's base_config holds the same)
TASK_DEFAULTS = {"min_len": 1, "max_len": 20, "test_min_len": 21, "test_max_len": 40, "num_train": 10_000,
                 "num_valid": 1_000, "num_test": 1_000, "modulus": 5, "vocab": 0, "max_tokens": 10}


@dataclasses.dataclass
class TransductionCorpus(SequenceSplits):
    """Sequences with one target per input step.

    train, valid, test: lists of (x [T_i] int32 in 0..input_size-1, y [T_i] int32 in 0..num_classes-1).
    meta: the task's settings, ``seed``, and ``{split}_sequences`` / ``{split}_targets`` (sum_i T_i).
    """

    name: str
    input_size: int
    num_classes: int
    train: list[tuple[np.ndarray, np.ndarray]]
    valid: list[tuple[np.ndarray, np.ndarray]]
    test: list[tuple[np.ndarray, np.ndarray]]
    meta: dict = dataclasses.field(default_factory=dict)
    kind: str = "transduction"
    level: str = "token"
    vocab: None = None


def task_settings(cfg) -> dict:
    """``data.task`` as a dict of ints (defaults for missing fields), lengths and sizes checked."""
    task = cfg_get(cfg, "task", None)
    out = {}
    for k, default in TASK_DEFAULTS.items():
        v = default if task is None else cfg_get(task, k, default)
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 0:
            raise RnnlabError(f"data.task.{k}={v!r} is not valid; it must be an integer >= 0")
        out[k] = int(v)
    for k in ("min_len", "test_min_len", "num_train", "num_valid", "num_test", "max_tokens"):
        if out[k] < 1:
            raise RnnlabError(f"data.task.{k}={out[k]} is not valid; it must be >= 1")
    for lo, hi in (("min_len", "max_len"), ("test_min_len", "test_max_len")):
        if out[hi] < out[lo]:
            raise RnnlabError(f"data.task.{hi}={out[hi]} is below data.task.{lo}={out[lo]}; it must be >= {lo}")
    return out


def split_plan(settings: dict) -> dict[str, tuple[int, int, int]]:
    """split -> (number of sequences, shortest, longest): valid shares train's lengths, test has its own."""
    s = settings
    return {"train": (s["num_train"], s["min_len"], s["max_len"]),
            "valid": (s["num_valid"], s["min_len"], s["max_len"]),
            "test": (s["num_test"], s["test_min_len"], s["test_max_len"])}


# ----------------------------------------------------------------------------------------------
# The tasks: x [T] -> y [T]
# ----------------------------------------------------------------------------------------------


def running_parity(x) -> np.ndarray:
    """y_t = (x_1 + ... + x_t) mod 2; x [T] in {0, 1} -> y [T] int32."""
    return (np.cumsum(np.asarray(x, np.int64)) % 2).astype(np.int32)


def running_count(x, modulus: int) -> np.ndarray:
    """Cycle navigation: y_t = (sum_{s <= t} move(x_s)) mod k with move 0 -> 0, 1 -> +1, 2 -> -1;
    x [T] in {0, 1, 2} -> y [T] int32 in 0..k-1."""
    moves = np.array([0, 1, -1], np.int64)[np.asarray(x, np.int64)]
    return (np.cumsum(moves) % int(modulus)).astype(np.int32)


def running_majority(x) -> np.ndarray:
    """y_t = 1 if #ones > #zeros among x_1..x_t, else 0 (ties -> 0); x [T] in {0, 1} -> y [T] int32."""
    x = np.asarray(x, np.int64)
    t = np.arange(1, x.size + 1)
    return (2 * np.cumsum(x) > t).astype(np.int32)


def _task(name: str, s: dict) -> tuple[int, int, Callable]:
    """(input_size, num_classes, answer function x -> y) of task ``name`` with settings ``s``."""
    if name == "running_parity":
        return 2, 2, running_parity
    if name == "running_majority":
        return 2, 2, running_majority
    if name == "running_count":
        vocab = s["vocab"] or 2
        if vocab not in (2, 3):
            raise RnnlabError(f"data.task.vocab={s['vocab']} is not valid for running_count; allowed: 0 or 2 "
                              f"(symbols 0 stay, 1 +1), 3 (and 2 -1)")
        if s["modulus"] < 2:
            raise RnnlabError(f"data.task.modulus={s['modulus']} is not valid; running_count needs k >= 2")
        k = s["modulus"]
        return vocab, k, lambda x: running_count(x, k)
    raise RnnlabError(f"transduction task {name!r} is not known; allowed: {', '.join(TRANSDUCTION_TASKS)}")



def random_lengths(rng: np.random.Generator, n: int, lo: int, hi: int) -> np.ndarray:
    """n lengths [n] uniform in lo..hi (inclusive)."""
    return rng.integers(lo, hi + 1, size=n)


def load_transduction(cfg, name: str) -> TransductionCorpus:
    """The TransductionCorpus of task ``name`` with ``data.task`` settings and seed ``data.seed``."""
    s = task_settings(cfg)
    input_size, num_classes, answer = _task(name, s)
    seed = int(cfg_get(cfg, "seed", 0))
    splits, meta = {}, {"seed": seed, **{k: s[k] for k in ("min_len", "max_len", "test_min_len", "test_max_len")}}
    if name == "running_count":
        meta.update(modulus=num_classes, vocab=input_size)
    for k, (split, (n, lo, hi)) in enumerate(split_plan(s).items()):
        rng = np.random.default_rng([seed, k])
        pairs = []
        for length in random_lengths(rng, n, lo, hi):
            x = rng.integers(0, input_size, size=int(length)).astype(np.int32)
            pairs.append((x, answer(x)))
        splits[split] = pairs
        meta[f"{split}_sequences"] = n
        meta[f"{split}_targets"] = int(sum(x.size for x, _ in pairs))
    return TransductionCorpus(name=name, input_size=input_size, num_classes=num_classes, meta=meta, **splits)


def transduction_loader(name: str):
    """A registry loader ``(data_cfg, level) -> TransductionCorpus`` for task ``name``."""
    return lambda cfg, level: load_transduction(cfg, name)


def transduction_windows(pairs: list, batch_size: int, bptt: int, *, sort_by_length: bool = False) -> Windows:
    """(x [T_i], y [T_i]) pairs -> Windows with x and y aligned (no shift): x, y int32 [W, B, T],
    mask [W, B, T] (sum(mask) = sum_i T_i); see ``padded_windows``."""
    return padded_windows([x for x, _ in pairs], [y for _, y in pairs], batch_size, bptt,
                          sort_by_length=sort_by_length)
