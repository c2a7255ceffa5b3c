"""Whole sequences of different lengths, padded and cut into windows with a mask (numpy only).

A split of variable-length sequences (music pieces, transduction strings) becomes windows that a
recurrent model reads like TBPTT windows of a stream, except that every B sequences start from a
zero carry:

* sequences are grouped B at a time in the given order (the last group is filled with empty rows,
  mask 0); with ``sort_by_length=True`` they are first put in order of decreasing length (a stable
  sort, so the result is deterministic: ties keep their given order), which cuts the padding;
* group g is padded to L_g = ceil(max_i T_i / T) * T, its longest sequence rounded up to a multiple
  of the window length T (= bptt), and cut into L_g / T windows; the carry passes from one window
  of a group to the next, and ``reset[w]`` is True on the first window of each group (the model
  starts that window from a zero carry);
* ``mask[w, b, t]`` is 1 where ``y[w, b, t]`` is a real target and 0 on padding, so every target
  of every sequence appears exactly once with mask 1 and a metric is sum(mask * loss) / sum(mask).

Shapes: W windows, B batch (sequences side by side), T window length (bptt), K features per frame,
T_i the length of sequence i.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import RnnlabError


class Windows(NamedTuple):
    """Padded sequences cut into windows.

    x: [W, B, T] int32 (tokens) or [W, B, T, K] float32 (frames): inputs (0 on padding).
    y: same layout as x: targets (0 on padding).
    mask: [W, B, T] float32: 1 where y[w, b, t] is a real target, 0 on padding.
    reset: [W] bool: window w starts new sequences (the model starts from a zero carry).
    """

    x: np.ndarray
    y: np.ndarray
    mask: np.ndarray
    reset: np.ndarray


class SequenceSplits:
    """Mixin of the records whose ``train``, ``valid``, ``test`` are lists of sequences (FrameCorpus,
    TransductionCorpus, PairCorpus): ``split(name)``."""

    def split(self, name: str) -> list:
        """The sequences of split ``name`` (train, valid or test)."""
        if name not in ("train", "valid", "test"):
            raise RnnlabError(f"split {name!r} is not valid; allowed: train, valid, test")
        return getattr(self, name)


def _check_int(value, name: str) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise RnnlabError(f"{name}={value!r} is not valid; it must be an integer >= 1")
    return int(value)


def _as_arrays(inputs: list, targets: list) -> tuple[list[np.ndarray], list[np.ndarray], np.dtype, tuple]:
    """Check the sequences: same count, each pair of the same length >= 1, one rank and feature size.
    Returns (inputs, targets, dtype, feature shape ``()`` for tokens or ``(K,)`` for frames)."""
    if len(inputs) != len(targets):
        raise RnnlabError(f"{len(inputs)} input sequences but {len(targets)} target sequences; give one target "
                          f"sequence per input sequence")
    if not inputs:
        raise RnnlabError("no sequences to batch; give at least one (input, target) sequence")
    xs = [np.asarray(a) for a in inputs]
    ys = [np.asarray(a) for a in targets]
    feat = xs[0].shape[1:]
    if len(feat) > 1:
        raise RnnlabError(f"sequence 0 has shape {xs[0].shape}; a sequence is [T] (tokens) or [T, K] (frames)")
    dtype = np.dtype(np.int32) if not feat else np.dtype(np.float32)
    for i, (a, b) in enumerate(zip(xs, ys)):
        if a.shape[1:] != feat or b.shape[1:] != feat:
            raise RnnlabError(f"sequence {i} has input shape {a.shape} and target shape {b.shape}; every input "
                              f"and target must be [T_i{', ' + str(feat[0]) if feat else ''}] like sequence 0")
        if a.shape[0] != b.shape[0]:
            raise RnnlabError(f"sequence {i} has {a.shape[0]} inputs but {b.shape[0]} targets; they must be "
                              f"aligned, one target per input step")
        if a.shape[0] < 1:
            raise RnnlabError(f"sequence {i} is empty; every sequence needs at least one step")
    return xs, ys, dtype, feat


def padded_windows(inputs: list, targets: list, batch_size: int, bptt: int, *,
                   sort_by_length: bool = False) -> Windows:
    """Sequences -> Windows (see the module docstring).

    inputs, targets: lists of N arrays, input i and target i both [T_i] (token ids) or [T_i, K]
    (frames). Groups of B = ``batch_size`` sequences, each padded to a multiple of T = ``bptt``;
    W = sum over groups of L_g / T. sum(mask) = sum_i T_i.
    """
    b = _check_int(batch_size, "batch_size")
    t = _check_int(bptt, "bptt")
    xs, ys, dtype, feat = _as_arrays(inputs, targets)
    order = np.arange(len(xs))
    if sort_by_length:
        order = np.argsort(-np.array([a.shape[0] for a in xs]), kind="stable")
    groups = [order[i: i + b] for i in range(0, len(order), b)]
    lengths = [-(-max(xs[i].shape[0] for i in g) // t) * t for g in groups]  # L_g
    total = sum(lengths)
    w = total // t
    x = np.zeros((b, total) + feat, dtype)
    y = np.zeros((b, total) + feat, dtype)
    mask = np.zeros((b, total), np.float32)
    reset = np.zeros(w, bool)
    start = 0
    for g, n in zip(groups, lengths):
        reset[start // t] = True
        for row, i in enumerate(g):
            k = xs[i].shape[0]
            x[row, start: start + k] = xs[i]
            y[row, start: start + k] = ys[i]
            mask[row, start: start + k] = 1.0
        start += n

    def windows(a):  # [B, W*T, ...] -> [W, B, T, ...]
        a = a.reshape((b, w, t) + a.shape[2:])
        return np.ascontiguousarray(np.swapaxes(a, 0, 1))

    return Windows(windows(x), windows(y), windows(mask), reset)


def window_groups(reset) -> list[np.ndarray]:
    """Window ids [W] split into groups: a reset window and the windows after it up to the next reset."""
    reset = np.asarray(reset, bool).reshape(-1)
    if reset.size == 0 or not reset[0]:
        raise RnnlabError("reset must be a non-empty [W] bool array whose first window is a reset (True); "
                          "give the reset of padded_windows")
    return np.split(np.arange(reset.size), np.flatnonzero(reset)[1:])


def epoch_order(reset, seed: int, epoch: int) -> np.ndarray:
    """The order of the windows [W] for one epoch: the groups of ``reset`` (see ``window_groups``)
    shuffled as units with ``np.random.default_rng([seed, epoch])``, the windows inside a group kept
    in order (so each carry is still passed on within its group)."""
    for name, v in (("seed", seed), ("epoch", epoch)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 0:
            raise RnnlabError(f"{name}={v!r} is not valid; it must be an integer >= 0")
    groups = window_groups(reset)
    perm = np.random.default_rng([int(seed), int(epoch)]).permutation(len(groups))
    return np.concatenate([groups[g] for g in perm])
