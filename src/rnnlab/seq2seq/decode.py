"""Free-running decoding of the encoder-decoder: greedy and beam search, batched, inside jit.

Both read the source once (``Seq2Seq.feedback_setup``: the encoder's final carries and the decoder
as plain arrays), start from ``<bos>`` and run ``max_len`` decoder steps in one ``lax.scan``; a
hypothesis ends at its first ``<eos>`` (everything after it is ``<pad>`` = 0), or after ``max_len``
tokens without one.

* greedy: ``forcing.feedback_unroll`` at eps = 0 with argmax feedback, the training modes' own
  time-outer path: y_t = argmax p(. | y_<t, s).
* beam search (width K, length normalisation alpha): K live hypotheses per source, all of the same
  length t, ranked by their summed log-probability; each step expands them by every token, keeps the
  best 2K candidates, moves those that end in ``<eos>`` *and rank among the first K* to the finished
  pool with the normalised score ``log p(y) / |y| ** alpha`` (|y| counts the ``<eos>``), and
  continues with the best K that do not. A source is done once K hypotheses have finished (fairseq's
  rule); live hypotheses still unfinished after ``max_len`` steps join the pool with
  ``log p / max_len ** alpha``. The answer is the pool's best. With K = 1 this is exactly greedy: the
  argmax ends the source when it is ``<eos>``, else it is the one hypothesis continued (tested).
  The rows of the K hypotheses move between steps through ``unroll.unroll_reordered``.

Shapes: B batch, S source length, K beam width, L = max_len, V target vocab, H hidden.
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from .. import RnnlabError
from ..data.pairs import BOS, EOS, SPECIALS
from ..forcing import Feedback, feedback_unroll, with_context
from ..model import embed_hard, readout_logits
from ..unroll import unroll_reordered
from .model import Seq2Seq

BOS_ID, EOS_ID = SPECIALS.index(BOS), SPECIALS.index(EOS)  # 1, 2 in every pair vocab (data.pairs)


def check_beam(beam_size) -> int:
    """The beam width as an int >= 1, else a one-line RnnlabError."""
    if isinstance(beam_size, bool) or not isinstance(beam_size, int) or beam_size < 1:
        raise RnnlabError(f"beam width {beam_size!r} is not valid; it must be an integer >= 1 (1 = greedy)")
    return beam_size


def cut_after_eos(tokens):
    """tokens [B, L] -> the same with every position after the first <eos> set to <pad> (0)."""
    is_eos = tokens == EOS_ID
    after = (jnp.cumsum(is_eos, axis=1) - is_eos) > 0
    return jnp.where(after, 0, tokens)


@partial(jax.jit, static_argnames=("model", "max_len"))
def greedy_decode(model: Seq2Seq, params, src, src_len, max_len: int):
    """src [B, S], src_len [B] -> tokens [B, max_len] int32: the argmax at every step, fed back; <eos>
    ends a row (``cut_after_eos``). The path is ``forcing.feedback_unroll`` at eps = 0."""
    B = src.shape[0]
    carries, parts = model.apply({"params": params}, src, src_len, max_len, method=Seq2Seq.feedback_setup)
    x = jnp.zeros((B, max_len), jnp.int32).at[:, 0].set(BOS_ID)
    logits = feedback_unroll(model.cell_fns, model.head_fns, parts, carries, x, jax.random.key(0), jnp.float32(0.0),
                             Feedback(kind="argmax"), unroll=model.unroll)[0]
    return cut_after_eos(model.head_fns.mode(logits))


def _take(a, idx):
    """a [B, M, ...], idx [B, N] -> a[b, idx[b, n]] [B, N, ...]."""
    return jnp.take_along_axis(a, idx.reshape(idx.shape + (1,) * (a.ndim - 2)), axis=1)


@partial(jax.jit, static_argnames=("model", "max_len", "beam_size"))
def beam_decode(model: Seq2Seq, params, src, src_len, max_len: int, beam_size: int, alpha=1.0):
    """src [B, S], src_len [B] -> (tokens [B, max_len] int32 of the best hypothesis, its normalised
    score [B]) by beam search of width ``beam_size`` (see the module docstring); ``alpha`` the
    length-normalisation exponent (0 = raw log-probability; may be traced)."""
    K, L = beam_size, max_len
    B = src.shape[0]
    carries, parts = model.apply({"params": params}, src, src_len, L, method=Seq2Seq.feedback_setup)
    rep = lambda a: jnp.repeat(a, K, axis=0)  # noqa: E731  [B, ...] -> [B*K, ...], row b*K + k
    carries = jax.tree_util.tree_map(rep, carries)
    if "context" in parts:
        parts = dict(parts, context=rep(parts["context"]))
    V = parts["w_out"].shape[-1]
    alpha = jnp.asarray(alpha, jnp.float32)
    neg = jnp.float32(-jnp.inf)
    pos = jnp.arange(L)
    state = {
        "tok": jnp.full((B * K,), BOS_ID, jnp.int32),  # the token each row reads next
        "rows": jnp.arange(B * K),  # the row each row continues (its parent)
        "score": jnp.tile(jnp.concatenate([jnp.zeros(1), jnp.full(K - 1, neg)]), (B, 1)),  # [B, K] live log p
        "seq": jnp.zeros((B, K, L), jnp.int32),  # live hypotheses' tokens so far
        "fin_score": jnp.full((B, K), neg),  # the finished pool: normalised scores
        "fin_seq": jnp.zeros((B, K, L), jnp.int32),
        "fin_n": jnp.zeros(B, jnp.int32),  # hypotheses finished so far
        "done": jnp.zeros(B, bool),
    }

    def feed(st, t):
        return with_context(parts, embed_hard(parts, st["tok"])), st["rows"]

    def readout(h, st, t):
        logp = jax.nn.log_softmax(readout_logits(parts, h), axis=-1).reshape(B, K, V)
        vals, idx = jax.lax.top_k((st["score"][:, :, None] + logp).reshape(B, K * V), 2 * K)  # [B, 2K], best first
        parent, tok = idx // V, (idx % V).astype(jnp.int32)
        seq = jnp.where(pos[None, None] == t, tok[:, :, None], _take(st["seq"], parent))  # [B, 2K, L]
        ends = (tok == EOS_ID) & (jnp.arange(2 * K) < K)[None]  # eos among the first K ranks: finished
        new_fin = jnp.where(ends, vals / (t + 1.0) ** alpha, neg)
        fin_score, fi = jax.lax.top_k(jnp.concatenate([st["fin_score"], new_fin], axis=1), K)
        fin_seq = _take(jnp.concatenate([st["fin_seq"], seq], axis=1), fi)
        score, ai = jax.lax.top_k(jnp.where(tok == EOS_ID, neg, vals), K)  # the best K that go on
        parent, tok, seq = _take(parent, ai), _take(tok, ai), _take(seq, ai)
        rows = (jnp.arange(B)[:, None] * K + parent).reshape(-1)
        new = {"tok": tok.reshape(-1), "rows": rows, "score": score, "seq": seq, "fin_score": fin_score,
               "fin_seq": fin_seq, "fin_n": st["fin_n"] + ends.sum(axis=1), "done": st["done"]}
        done = st["done"]  # a finished source keeps its state (its rows continue themselves)
        keep = {"tok": st["tok"], "rows": jnp.arange(B * K), **{k: st[k] for k in new if k not in ("tok", "rows")}}
        out = {k: jnp.where(_rows_mask(done, v, K, k in ("tok", "rows")), keep[k], v) for k, v in new.items()}
        out["done"] = done | (out["fin_n"] >= K)
        return out, None

    _, st, _ = unroll_reordered(model.cell_fns, parts["layers"], carries, jnp.arange(L), state, feed=feed,
                                readout=readout, unroll=model.unroll)
    live = jnp.where(st["done"][:, None], neg, st["score"] / jnp.float32(L) ** alpha)  # unfinished after L steps
    best, bi = jax.lax.top_k(jnp.concatenate([st["fin_score"], live], axis=1), 1)
    tokens = _take(jnp.concatenate([st["fin_seq"], st["seq"]], axis=1), bi)[:, 0]
    return cut_after_eos(tokens), best[:, 0]


def _rows_mask(done, v, K: int, flat: bool):
    """``done`` [B] broadcast to a state entry v: [B*K] for the flat per-row entries, [B, ...] else."""
    m = jnp.repeat(done, K) if flat else done
    return m.reshape(m.shape + (1,) * (v.ndim - m.ndim))


def decode(model: Seq2Seq, params, src, src_len, max_len: int, beam_size: int = 1, alpha: float = 1.0):
    """Greedy (``beam_size`` 1) or beam search: src [B, S], src_len [B] -> tokens [B, max_len]."""
    if check_beam(beam_size) == 1:
        return greedy_decode(model, params, src, src_len, int(max_len))
    return beam_decode(model, params, src, src_len, int(max_len), beam_size, alpha)[0]
