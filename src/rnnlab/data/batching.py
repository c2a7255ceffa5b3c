"""Batching for truncated backpropagation through time: token streams cut into [W, B, T] windows.

Shapes: N tokens, B batch (parallel streams), T bptt window, W windows, L stream length.
"""
from __future__ import annotations

import numpy as np

from .. import RnnlabError


def batchify(ids, batch_size: int) -> np.ndarray:
    """ids [N] -> [B, L] with L = N // B (the tail is trimmed); row b is the b-th contiguous stream."""
    ids = np.asarray(ids, dtype=np.int32).reshape(-1)
    b = int(batch_size)
    if b < 1:
        raise RnnlabError(f"batch_size={batch_size!r} is not valid; it must be >= 1")
    n = ids.size // b
    if n == 0:
        raise RnnlabError(f"{ids.size} tokens are too few for batch_size={b}; use a batch size <= {ids.size}")
    return ids[: b * n].reshape(b, n)


def num_train_windows(n_tokens: int, batch_size: int, bptt: int) -> int:
    """W = (N // B - 1) // T, the number of [B, T] windows ``train_windows`` gives (0 if none)."""
    return max(0, (int(n_tokens) // int(batch_size) - 1) // int(bptt))


def train_windows(ids, batch_size: int, bptt: int) -> tuple[np.ndarray, np.ndarray]:
    """Zaremba's TBPTT windows: x, y int32 [W, B, T], W = (L - 1) // T with L = N // B.

    With data = batchify(ids, B): x[i] = data[:, i*T:(i+1)*T], y[i] = data[:, i*T+1:(i+1)*T+1],
    so window i+1 of stream b continues window i (carry the state across windows).
    """
    data = batchify(ids, batch_size)
    b, n = data.shape
    t = int(bptt)
    if t < 1:
        raise RnnlabError(f"bptt={bptt!r} is not valid; it must be >= 1")
    w = (n - 1) // t
    if w == 0:
        raise RnnlabError(f"{np.size(ids)} tokens are too few for batch_size={b} and bptt={t}; they need at "
                          f"least batch_size * (bptt + 1) = {b * (t + 1)} tokens")
    x = data[:, : w * t].reshape(b, w, t).transpose(1, 0, 2)
    y = data[:, 1: w * t + 1].reshape(b, w, t).transpose(1, 0, 2)
    return np.ascontiguousarray(x), np.ascontiguousarray(y)


def eval_windows(ids, batch_size: int, bptt: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Windows that score every target ids[1:] exactly once: x, y int32 and mask float32, [W, B, T].

    The N - 1 (input, target) pairs (ids[j], ids[j+1]) are cut into B contiguous streams of
    L = ceil((N - 1) / B) pairs: stream b has inputs ids[b*L:(b+1)*L] and targets
    ids[b*L+1:(b+1)*L+1] (consecutive streams share one token, no target is lost or doubled). Each
    stream is padded to W*T (W = ceil(L / T)) with id 0 and mask 0, then cut into W windows of T;
    carry the state across windows. Perplexity = exp(sum(mask * nll) / sum(mask)).
    """
    ids = np.asarray(ids, dtype=np.int32).reshape(-1)
    b, t = int(batch_size), int(bptt)
    if b < 1 or t < 1:
        raise RnnlabError(f"batch_size={batch_size!r} and bptt={bptt!r} are not valid; both must be >= 1")
    pairs = ids.size - 1
    if pairs < 1:
        raise RnnlabError(f"{ids.size} tokens are too few to evaluate; a split needs at least 2 tokens")
    n = -(-pairs // b)  # L
    w = -(-n // t)
    x = np.zeros(b * n, np.int32)
    y = np.zeros(b * n, np.int32)
    m = np.zeros(b * n, np.float32)
    x[:pairs], y[:pairs], m[:pairs] = ids[:-1], ids[1:], 1.0

    def windows(a):
        a = np.pad(a.reshape(b, n), ((0, 0), (0, w * t - n)))
        return np.ascontiguousarray(a.reshape(b, w, t).transpose(1, 0, 2))

    return windows(x), windows(y), windows(m)
