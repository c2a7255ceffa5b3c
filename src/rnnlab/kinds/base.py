"""The seam: what one kind of sequence provides to the shared core, forcing, training and evaluation.

A kind is a NamedTuple of pure functions (DESIGN.md, "The seam"); ``train.py``, ``recorder.py`` and
``evaluate.py`` call only these, never branch on a dataset name:

    model_io(corpus) -> dict                  # build_model's sizes: vocab_size | num_features, num_outputs, head
    train_windows(corpus, cfg) -> TrainWindows
    eval_windows(corpus, cfg, split) -> tuple # (x, y, mask) [W, B, T, ...] (+ reset [W] for padded sequences)
    split_metrics(sums, corpus) -> dict       # sums = (NLL sum, count, correct) over a split -> loss, ppl | nll, ...
    summary(metrics, corpus) -> dict          # {split: metrics} -> the kind's summary.json keys
    selection: str                            # the validation metric that picks the best checkpoint: ppl | nll
    final_splits: tuple                       # splits evaluated at the end (("train",) + valid, test for frames)
    make_model: (cfg, io) -> model            # default model.build_model; a model may bring its own loss
                                              # (``model.make_loss_fn(cfg)``) and init (``model.init_params(key, cfg)``)
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

from ..data.padded import epoch_order


class TrainWindows(NamedTuple):
    """Training windows of one epoch: x, y [W, B, T] tokens (or [W, B, T, K] frames), mask [W, B, T]
    (None: every position is a target, token streams), reset [W] bool (window w starts from a zero
    carry), shuffle: whether the groups of windows between resets are reordered every epoch."""

    x: np.ndarray
    y: np.ndarray
    mask: np.ndarray | None
    reset: np.ndarray
    shuffle: bool

    @property
    def steps_per_epoch(self) -> int:
        return int(self.x.shape[0])

    def order(self, seed: int, epoch: int) -> np.ndarray:
        """Window ids [W] in the order epoch ``epoch`` visits them (data.padded.epoch_order)."""
        if not self.shuffle:
            return np.arange(self.steps_per_epoch)
        return epoch_order(self.reset, seed, epoch)

    def batch(self, w: int) -> tuple:
        """The train step's batch: (x, y) for streams, (x, y, mask) for padded sequences."""
        return (self.x[w], self.y[w]) if self.mask is None else (self.x[w], self.y[w], self.mask[w])

    def targets(self, w: int) -> int:
        """Targets in window w, for tokens/s: B x T for streams, the real (unpadded) ones otherwise."""
        return int(np.prod(self.x.shape[1:3])) if self.mask is None else int(self.mask[w].sum())


class Kind(NamedTuple):
    name: str
    model_io: Callable
    train_windows: Callable
    eval_windows: Callable
    split_metrics: Callable
    summary: Callable
    selection: str
    final_splits: tuple = ("valid", "test")  # the splits evaluated at the end of a run (summary.json)
    make_model: Callable | None = None  # (cfg, io) -> model; None = output_to_hidden.make_model (model.build_model,
    #   or the output-to-hidden network for model.cell=output_to_hidden)
    evaluate: Callable | None = None  # (model, params, windows, cfg, corpus, split) -> the split's metrics, for a kind
    #   whose metrics need more than the sums (accuracy by length); None = split_metrics(evaluate.window_sums(...))
