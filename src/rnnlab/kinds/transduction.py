"""Transduction (a target at every input step: running parity, count mod k, majority): token inputs,
a categorical head over the task's classes, padded whole sequences (zero carry at each start);
metrics: NLL per target, perplexity and accuracy (targets equal to the argmax)."""
from __future__ import annotations

import math

from ..data.transduction import transduction_windows
from .base import Kind, TrainWindows


def model_io(corpus) -> dict:
    return {"vocab_size": corpus.input_size, "num_outputs": corpus.num_classes}


def transduction_train_windows(corpus, cfg) -> TrainWindows:
    w = transduction_windows(corpus.train, cfg.train.batch_size, cfg.train.bptt, sort_by_length=True)
    return TrainWindows(w.x, w.y, w.mask, w.reset, shuffle=True)


def transduction_eval_windows(corpus, cfg, split: str) -> tuple:
    w = transduction_windows(getattr(corpus, split), cfg.eval.batch_size, cfg.eval.bptt or cfg.train.bptt,
                             sort_by_length=True)
    return w.x, w.y, w.mask, w.reset


def split_metrics(sums, corpus) -> dict:
    nll, count, correct = sums
    loss = nll / count
    return {"nll_sum": nll, "count": int(count), "loss": loss, "ppl": math.exp(min(loss, 709.0)),
            "acc": correct / count}


def summary(metrics: dict, corpus) -> dict:
    val, test = metrics["valid"], metrics["test"]
    return {"val_ppl": val["ppl"], "val_loss": val["loss"], "val_acc": val["acc"], "test_ppl": test["ppl"],
            "test_loss": test["loss"], "test_acc": test["acc"], "test_targets": test["count"]}


TRANSDUCTION = Kind("transduction", model_io, transduction_train_windows, transduction_eval_windows, split_metrics,
                    summary, "ppl")
