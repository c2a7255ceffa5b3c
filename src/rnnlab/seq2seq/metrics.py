"""Free-running metrics of an encoder-decoder: decode every source of a split (greedy and beam) and
compare with its target, as sums and counts divided once, overall and per target length.

For pairs i with target r_i (|r_i| tokens, <eos> not counted) and hypothesis h_i (the decoded tokens
before its first <eos>; ``finished`` when there was one):

* ``seq_acc`` = #{i: h_i = r_i and h_i finished} / N: exact match (the issue's ``test_seq_acc``);
* ``token_acc`` = sum_i #{t: h'_i[t] = r'_i[t]} / sum_i (|r_i| + 1), with r' = r + <eos> and h' = h
  (+ <eos> when finished): position by position, the <eos> included, so an exact match scores 1;
* ``edit`` = sum_i lev(h_i, r_i) / sum_i |r_i|: Levenshtein distance (insert, delete, substitute
  cost 1) normalised by the target tokens (a word error rate for words);
* ``bleu`` (word-level data, fra_eng): sacrebleu's corpus BLEU of the detokenised hypotheses against
  the detokenised targets (``data.pairs.detokenize``; sacrebleu's default 13a tokenisation).

Each also per target length: ``{name}_by_len`` {|r|: value}, so the compounding of errors with length
is visible. Summary keys: ``{split}_{decoder}{metric}`` with split ``val`` | ``test`` and decoder ''
(greedy) | ``beam_`` (``eval.beam_size``), e.g. ``test_seq_acc``, ``test_beam_bleu``,
``val_token_acc_by_len``; ``decode_max_len`` gives the length limit.
"""
from __future__ import annotations

import warnings

import jax.numpy as jnp
import numpy as np

from ..data.pairs import detokenize, pair_batches
from .decode import BOS_ID, EOS_ID, decode

METRIC_NAMES = ("seq_acc", "token_acc", "edit", "bleu")


def levenshtein(a, b) -> int:
    """Edit distance between two sequences (unit costs), the two-row dynamic programme (hand-written:
    none of the project's dependencies offers it for token ids)."""
    a, b = list(a), list(b)
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        cur = [i] + [0] * len(b)
        for j, y in enumerate(b, start=1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y))
        prev = cur
    return prev[-1]


def split_hypothesis(row) -> tuple[list[int], bool]:
    """Decoded tokens [L] -> (the tokens before the first <eos>, whether there was one)."""
    row = [int(t) for t in np.asarray(row).reshape(-1)]
    if EOS_ID in row:
        return row[: row.index(EOS_ID)], True
    return row, False


def pair_scores(hyp: list[int], finished: bool, ref: list[int]) -> dict:
    """One pair's sums: exact (0/1), matching positions, positions (|r| + 1), edits, target tokens."""
    h2, r2 = hyp + ([EOS_ID] if finished else []), ref + [EOS_ID]
    return {"exact": float(finished and hyp == ref), "match": float(sum(x == y for x, y in zip(h2, r2))),
            "positions": float(len(r2)), "edits": float(levenshtein(hyp, ref)), "tokens": float(len(ref))}


def _bleu(hyps: list[str], refs: list[str]) -> float:
    import sacrebleu

    with warnings.catch_warnings():  # sacrebleu warns about very short corpora; the score is still defined
        warnings.simplefilter("ignore")
        return float(sacrebleu.corpus_bleu(hyps, [refs]).score)


def score_hypotheses(rows, refs: list, vocab=None) -> dict:
    """Decoded rows (each [L] ids) against the targets ``refs`` (each ids [T_i], no <bos>/<eos>) ->
    {seq_acc, token_acc, edit, (bleu when ``vocab`` is word level), and each ``_by_len``, ``count_by_len``}."""
    per = [pair_scores(*split_hypothesis(row), [int(t) for t in np.asarray(ref).reshape(-1)])
           for row, ref in zip(rows, refs)]
    lengths = [len(np.asarray(r).reshape(-1)) for r in refs]
    texts = None
    if vocab is not None and vocab.level == "word":
        texts = ([detokenize(vocab, row) for row in rows], [detokenize(vocab, r) for r in refs])

    def metrics(idx) -> dict:
        tot = {k: sum(per[i][k] for i in idx) for k in per[0]}
        out = {"seq_acc": tot["exact"] / len(idx), "token_acc": tot["match"] / tot["positions"],
               "edit": tot["edits"] / max(tot["tokens"], 1.0)}
        if texts is not None:
            out["bleu"] = _bleu([texts[0][i] for i in idx], [texts[1][i] for i in idx])
        return out

    out = metrics(range(len(per)))
    buckets = {n: [i for i, k in enumerate(lengths) if k == n] for n in sorted(set(lengths))}
    by = {n: metrics(idx) for n, idx in buckets.items()}
    for name in list(out):
        out[f"{name}_by_len"] = {str(n): m[name] for n, m in by.items()}
    out["count_by_len"] = {str(n): len(idx) for n, idx in buckets.items()}
    return out


def decode_pairs(model, params, pairs: list, batch_size: int, max_len: int, beam_size: int = 1,
                 alpha: float = 1.0) -> np.ndarray:
    """Decode the sources of ``pairs`` in batches of ``batch_size`` -> tokens [N, max_len] (one compiled
    program per split: every batch has the split's shapes)."""
    b = pair_batches(pairs, batch_size, BOS_ID, EOS_ID)
    out = [np.asarray(decode(model, params, jnp.asarray(b.src[i]), jnp.asarray(b.src_len[i]), max_len, beam_size,
                             alpha)) for i in range(b.src.shape[0])]
    return np.concatenate(out)[: len(pairs)]


def decode_max_len(pairs: list, extra: int) -> int:
    """Decoder steps for a split: its longest target + 1 (the <eos>) + ``extra``."""
    return max(len(t) for _, t in pairs) + 1 + int(extra)


def free_running_metrics(model, params, corpus, cfg, split: str) -> dict:
    """The free-running metrics of the module docstring (without the split prefix) for ``split`` of
    ``corpus``: greedy, and beam search of width ``cfg.eval.beam_size`` (``beam_*``) when it is > 1."""
    e = cfg.eval
    beam, alpha, extra = int(e.get("beam_size", 0)), float(e.get("length_alpha", 1.0)), int(e.get("decode_extra", 5))
    vocab = corpus.tgt_vocab if corpus.level == "word" else None
    pairs = corpus.split(split)
    refs = [t for _, t in pairs]
    L = decode_max_len(pairs, extra)
    out = {"decode_max_len": L}
    for dec, k in (("", 1), ("beam_", beam)):
        if dec and k <= 1:
            continue
        rows = decode_pairs(model, params, pairs, int(e.batch_size), L, k, alpha)
        scores = score_hypotheses(rows, refs, vocab)
        if dec:
            scores.pop("count_by_len")  # the same as greedy's
        out.update({f"{dec}{name}": v for name, v in scores.items()})
    return out
