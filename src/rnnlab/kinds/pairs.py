"""Source-target pairs (sequence to sequence: copy, reverse, sort, addition, fra_eng): an
encoder-decoder (``seq2seq/model.py``), batches of padded pairs with masks, every batch a fresh
start (the decoder starts from the encoder's final state; no carry passes between batches).

The kind evaluates with its own pass (``pair_evaluate``): teacher-forced target perplexity (every
target token and each target's <eos> counted once, padding never) and token accuracy ``tf_acc``,
and the free-running metrics of greedy and beam decoding of every source of the split
(``seq2seq/metrics.py``: ``seq_acc``, ``token_acc``, ``edit``, ``bleu`` for text, each per target
length too); the summary keys are ``val_*`` and ``test_*`` of them (``test_seq_acc``, ``test_beam_bleu``, ...).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ..evaluate import window_sums

from ..data.padded import epoch_order
from ..data.pairs import BOS, EOS, pair_batches
from ..seq2seq.metrics import free_running_metrics
from ..seq2seq.model import build_seq2seq, eval_sums
from .base import Kind


class PairWindows(NamedTuple):
    """The train batches of one epoch (``data.pairs.PairBatches`` of the train split, W batches of B):
    src [W, B, S], src_len [W, B], tgt_in, tgt_out, mask [W, B, T]. Every batch resets (starts from
    the encoder), so ``order`` shuffles the batches every epoch. Duck-types ``kinds.TrainWindows``."""

    src: np.ndarray
    src_len: np.ndarray
    tgt_in: np.ndarray
    tgt_out: np.ndarray
    mask: np.ndarray
    reset: np.ndarray
    shuffle: bool = True

    @property
    def x(self) -> np.ndarray:  # [W, B, T]: the decoder's teacher-forced inputs
        return self.tgt_in

    @property
    def y(self) -> np.ndarray:
        return self.tgt_out

    @property
    def steps_per_epoch(self) -> int:
        return int(self.src.shape[0])

    def order(self, seed: int, epoch: int) -> np.ndarray:
        return epoch_order(self.reset, seed, epoch)

    def batch(self, w: int) -> tuple:
        """(src, src_len, tgt_in, tgt_out, mask) of batch w: what ``Seq2Seq.forward().unpack`` reads."""
        return self.src[w], self.src_len[w], self.tgt_in[w], self.tgt_out[w], self.mask[w]

    def targets(self, w: int) -> int:
        return int(self.mask[w].sum())


def _batches(corpus, split: str, batch_size: int):
    v = corpus.tgt_vocab
    return pair_batches(corpus.split(split), batch_size, v.stoi[BOS], v.stoi[EOS])


def model_io(corpus) -> dict:
    """Sizes of the encoder-decoder, and the source vocabulary (io.json keeps it: ``--source`` encodes
    with it; vocab.json holds the target vocabulary)."""
    return {"src_vocab_size": corpus.src_vocab.size, "tgt_vocab_size": corpus.tgt_vocab.size,
            "src_vocab": corpus.src_vocab.to_json()}


def pair_train_windows(corpus, cfg) -> PairWindows:
    b = _batches(corpus, "train", cfg.train.batch_size)
    return PairWindows(b.src, b.src_len, b.tgt_in, b.tgt_out, b.mask, np.ones(b.src.shape[0], bool))


def pair_eval_windows(corpus, cfg, split: str) -> tuple:
    """(src, src_len, tgt_in, tgt_out, mask) [N, B, ...] of the split in batches of ``eval.batch_size``."""
    return tuple(_batches(corpus, split, cfg.eval.batch_size))


def split_metrics(sums, corpus) -> dict:
    nll, count, correct = sums
    loss = nll / count
    return {"nll_sum": nll, "count": int(count), "loss": loss, "ppl": math.exp(min(loss, 709.0)),
            "tf_acc": correct / count}


def pair_evaluate(model, params, windows, cfg, corpus, split: str) -> dict:
    """The split's teacher-forced metrics (``split_metrics``; NLL sums added in float64 on the host
    like ``evaluate.window_sums``) and its free-running metrics (greedy and beam decoding)."""
    metrics = split_metrics(window_sums(model, params, windows, cfg, eval_sums(model)), corpus)
    metrics.update(free_running_metrics(model, params, corpus, cfg, split))
    return metrics


def summary(metrics: dict, corpus) -> dict:
    val, test = metrics["valid"], metrics["test"]
    out = {"val_ppl": val["ppl"], "val_loss": val["loss"], "test_ppl": test["ppl"], "test_loss": test["loss"],
           "test_targets": test["count"]}
    for prefix, m in (("val", val), ("test", test)):  # tf_acc and the free-running metrics
        out.update({f"{prefix}_{k}": v for k, v in m.items() if k not in ("nll_sum", "count", "loss", "ppl")})
    return out


PAIRS = Kind("pairs", model_io, pair_train_windows, pair_eval_windows, split_metrics, summary, "ppl",
             make_model=build_seq2seq, evaluate=pair_evaluate)
