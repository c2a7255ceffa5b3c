"""Frames (polyphonic music): every piece [T_i, K] of 0/1 frames its own sequence (zero carry at its
start), next-frame prediction with K independent Bernoulli outputs, padded whole pieces cut into
windows that pass the carry on within a piece; the metric is the NLL per frame (time step) in nats,
summed over the K keys, each predicted frame counted once, padding never."""
from __future__ import annotations

from ..data.music import frame_windows
from ..evaluate import frame_metrics
from .base import Kind, TrainWindows


def model_io(corpus) -> dict:
    return {"num_features": corpus.num_features, "head": "bernoulli"}


def frames_train_windows(corpus, cfg) -> TrainWindows:
    """Groups of ``train.batch_size`` pieces (sorted by length to cut padding), reshuffled as groups
    every epoch (seeded by ``train.seed`` and the epoch)."""
    w = frame_windows(corpus.train, cfg.train.batch_size, cfg.train.bptt, sort_by_length=True)
    return TrainWindows(w.x, w.y, w.mask, w.reset, shuffle=True)


def frames_eval_windows(corpus, cfg, split: str) -> tuple:
    w = frame_windows(getattr(corpus, split), cfg.eval.batch_size, cfg.eval.bptt or cfg.train.bptt,
                      sort_by_length=True)
    return w.x, w.y, w.mask, w.reset


def split_metrics(sums, corpus) -> dict:
    nll, count, correct = sums
    return dict(frame_metrics(nll, count, corpus.num_features), frame_acc=correct / count)


def summary(metrics: dict, corpus) -> dict:
    out = {}
    for split, prefix in (("train", "train"), ("valid", "val"), ("test", "test")):
        if split in metrics:
            out[f"{prefix}_nll"] = metrics[split]["nll"]
            out[f"{prefix}_nll_per_key"] = metrics[split]["nll_per_key"]
    out["test_frames"] = metrics["test"]["count"]
    return out


FRAMES = Kind("frames", model_io, frames_train_windows, frames_eval_windows, split_metrics, summary, "nll",
               final_splits=("train", "valid", "test"))
