"""Token streams (the language model): a corpus of 1-D token ids, TBPTT windows with the carry
passed on across windows, every target counted once; perplexity (and bits per character)."""
from __future__ import annotations

import numpy as np

from .. import RnnlabError
from ..data.batching import eval_windows, train_windows
from ..evaluate import perplexity_from_sums
from .base import Kind, TrainWindows


def model_io(corpus) -> dict:
    return {"vocab_size": corpus.vocab.size}


def stream_train_windows(corpus, cfg) -> TrainWindows:
    """Zaremba's windows of the train split; the carry restarts from zero at each epoch's start."""
    B, T = cfg.train.batch_size, cfg.train.bptt
    n = len(corpus.train)
    if n < B * (T + 1):  # not one [B, T] window (data.train_windows)
        raise RnnlabError(f"train.batch_size={B} and train.bptt={T} are too large for the train split ({n} tokens); "
                          f"need batch_size * (bptt + 1) <= {n}")
    x, y = train_windows(corpus.train, B, T)
    reset = np.zeros(x.shape[0], bool)
    reset[0] = True
    return TrainWindows(x, y, None, reset, shuffle=False)


def stream_eval_windows(corpus, cfg, split: str) -> tuple:
    x, y, mask = eval_windows(np.asarray(corpus.split(split)), cfg.eval.batch_size, cfg.eval.bptt or cfg.train.bptt)
    return x, y, mask.astype(np.float32)


def split_metrics(sums, corpus) -> dict:
    nll, count, _ = sums
    return perplexity_from_sums(nll, count, corpus.level)


def summary(metrics: dict, corpus) -> dict:
    val, test = metrics["valid"], metrics["test"]
    out = {"val_ppl": val["ppl"], "val_loss": val["loss"], "test_ppl": test["ppl"], "test_loss": test["loss"],
           "test_tokens": test["count"]}
    if corpus.level == "char":
        out["val_bpc"], out["test_bpc"] = val["bpc"], test["bpc"]
    return out


STREAMS = Kind("tokens", model_io, stream_train_windows, stream_eval_windows, split_metrics, summary, "ppl")
