"""Tests of rnnlab.data.padded: whole sequences padded into windows with a mask and resets, and the
per-epoch order of the window groups."""
from __future__ import annotations

import numpy as np
import pytest

from rnnlab import RnnlabError
from rnnlab.data import Windows, epoch_order, padded_windows, window_groups


def unpad(w: Windows) -> list[tuple[np.ndarray, np.ndarray]]:
    """Windows -> the (x, y) sequences they hold, group by group, row by row (mask-1 steps only)."""
    out = []
    for g in window_groups(w.reset):
        x = np.concatenate(list(w.x[g]), axis=1)  # [B, L_g, ...]
        y = np.concatenate(list(w.y[g]), axis=1)
        m = np.concatenate(list(w.mask[g]), axis=1)
        for b in range(m.shape[0]):
            n = int(m[b].sum())
            if n:
                assert m[b, :n].all() and not m[b, n:].any(), "real steps come first, padding after"
                out.append((x[b, :n], y[b, :n]))
    return out


def test_small_example_exact():
    # lengths 3, 5, 2 with B=2, T=2: group 1 = sequences 0 and 1, padded to 6 (3 windows);
    # group 2 = sequence 2 and an empty row, padded to 2 (1 window)
    xs = [np.array([1, 2, 3]), np.array([4, 5, 6, 7, 8]), np.array([9, 10])]
    ys = [a + 100 for a in xs]
    w = padded_windows(xs, ys, batch_size=2, bptt=2)
    assert w.x.shape == w.y.shape == w.mask.shape == (4, 2, 2)
    assert w.x.dtype == np.int32 and w.mask.dtype == np.float32 and w.reset.dtype == bool
    assert w.reset.tolist() == [True, False, False, True]
    np.testing.assert_array_equal(w.x[:, 0], [[1, 2], [3, 0], [0, 0], [9, 10]])
    np.testing.assert_array_equal(w.x[:, 1], [[4, 5], [6, 7], [8, 0], [0, 0]])
    np.testing.assert_array_equal(w.y[:, 1], [[104, 105], [106, 107], [108, 0], [0, 0]])
    np.testing.assert_array_equal(w.mask[:, 0], [[1, 1], [1, 0], [0, 0], [1, 1]])
    np.testing.assert_array_equal(w.mask[:, 1], [[1, 1], [1, 1], [1, 0], [0, 0]])
    assert w.mask.sum() == 10


@pytest.mark.parametrize("batch_size,bptt", [(1, 1), (3, 4), (4, 7), (16, 5)])
def test_every_target_once_and_reconstruct(batch_size, bptt):
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 30, size=23)
    xs = [rng.integers(1, 50, size=n) for n in lengths]
    ys = [rng.integers(1, 50, size=n) for n in lengths]
    w = padded_windows(xs, ys, batch_size, bptt)
    assert w.mask.sum() == lengths.sum()
    # each group's length is its longest sequence rounded up to a multiple of bptt
    groups = window_groups(w.reset)
    assert len(groups) == -(-len(xs) // batch_size)
    for k, g in enumerate(groups):
        longest = lengths[k * batch_size:(k + 1) * batch_size].max()
        assert len(g) == -(-longest // bptt)
    back = unpad(w)
    assert len(back) == len(xs)
    for (x, y), x0, y0 in zip(back, xs, ys):
        np.testing.assert_array_equal(x, x0)
        np.testing.assert_array_equal(y, y0)
    assert (w.x[w.mask == 0] == 0).all() and (w.y[w.mask == 0] == 0).all()


def test_frames_layout():
    rng = np.random.default_rng(1)
    xs = [(rng.random((n, 5)) < 0.3).astype(np.uint8) for n in (4, 9, 2)]
    ys = [1 - a for a in xs]
    w = padded_windows(xs, ys, batch_size=2, bptt=3)
    assert w.x.shape == w.y.shape == (4, 2, 3, 5) and w.mask.shape == (4, 2, 3)
    assert w.x.dtype == np.float32
    assert w.mask.sum() == 15
    for (x, y), x0, y0 in zip(unpad(w), xs, ys):
        np.testing.assert_array_equal(x, x0)
        np.testing.assert_array_equal(y, y0)


def test_sort_by_length_cuts_padding_deterministically():
    rng = np.random.default_rng(2)
    lengths = rng.integers(1, 100, size=40)
    xs = [np.full(n, i + 1) for i, n in enumerate(lengths)]
    plain = padded_windows(xs, xs, 8, 10)
    srt = padded_windows(xs, xs, 8, 10, sort_by_length=True)
    assert srt.mask.sum() == plain.mask.sum() == lengths.sum()
    assert srt.x.shape[0] < plain.x.shape[0]
    # order: decreasing length, ties in the given order (a stable sort)
    order = [int(x[0]) - 1 for x, _ in unpad(srt)]
    assert order == sorted(range(40), key=lambda i: (-lengths[i], i))
    again = padded_windows(xs, xs, 8, 10, sort_by_length=True)
    np.testing.assert_array_equal(again.x, srt.x)


def test_epoch_order():
    reset = np.array([1, 0, 0, 1, 1, 0, 1, 0, 0, 0, 1], bool)
    groups = [[0, 1, 2], [3], [4, 5], [6, 7, 8, 9], [10]]
    assert [g.tolist() for g in window_groups(reset)] == groups
    order = epoch_order(reset, seed=3, epoch=2)
    perm = np.random.default_rng([3, 2]).permutation(5)
    assert order.tolist() == [i for k in perm for i in groups[k]]
    assert sorted(order.tolist()) == list(range(11))
    np.testing.assert_array_equal(order, epoch_order(reset, 3, 2))
    many = np.zeros(60, bool)
    many[::3] = True
    orders = {tuple(epoch_order(many, 0, e)) for e in range(5)}
    assert len(orders) == 5  # 20 groups: five epochs give five different orders
    for o in orders:  # groups stay contiguous and in order inside
        o = np.array(o)
        starts = np.flatnonzero(many[o])
        for s in starts:
            np.testing.assert_array_equal(o[s:s + 3], o[s] + np.arange(3))


@pytest.mark.parametrize("call,match", [
    (lambda: padded_windows([np.arange(3)], [np.arange(2)], 2, 2), "3 inputs but 2 targets"),
    (lambda: padded_windows([np.arange(3)], [], 2, 2), "1 input sequences but 0 target"),
    (lambda: padded_windows([], [], 2, 2), "no sequences"),
    (lambda: padded_windows([np.arange(0)], [np.arange(0)], 2, 2), "sequence 0 is empty"),
    (lambda: padded_windows([np.arange(3)], [np.arange(3)], 0, 2), "batch_size=0"),
    (lambda: padded_windows([np.arange(3)], [np.arange(3)], 2, 1.5), "bptt=1.5"),
    (lambda: padded_windows([np.zeros((3, 2)), np.zeros(3)], [np.zeros((3, 2)), np.zeros(3)], 2, 2), "sequence 1"),
    (lambda: padded_windows([np.zeros((3, 2, 2))], [np.zeros((3, 2, 2))], 2, 2), r"\[T\] \(tokens\)"),
    (lambda: epoch_order(np.array([False, True]), 0, 0), "first window is a reset"),
    (lambda: epoch_order(np.array([True]), -1, 0), "seed=-1"),
])
def test_errors(call, match):
    with pytest.raises(RnnlabError, match=match) as e:
        call()
    assert "\n" not in str(e.value)
