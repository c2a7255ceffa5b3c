"""The encoder-decoder (Sutskever et al. 2014; Cho et al. 2014), on the same cells, unrolls and heads
as the language model.

    encoder:  s [B, S] -> E_src -> L layers (any cell), masked past each source's length
              (``unroll.masked_unroll``: padding never enters a carry)
    decoder:  carry_0 = the encoder's final carry of every layer;
              input_t = [E_tgt(y_{t-1}) ; c] with y_{-1} = <bos> and c = the top encoder layer's final
              h [B, H] (``context``: at every step, Cho et al. 2014; off: only through the carries)
              -> L layers -> readout -> logits [B, T, V_tgt] (``heads.CATEGORICAL``)

Options (``model.seq2seq``): ``context`` (above), ``reverse_source`` (the encoder reads each source
backwards from its last real token, Sutskever et al. 2014), ``shared_embeddings`` (one table for
source and target: needs one vocabulary, as the synthetic tasks have). Dropout (``model.dropout``)
on the non-recurrent connections, as in the language model.

Training modes go through ``forcing.py``: ``Seq2Seq.forward()`` is the ``forcing.Forward`` whose
teacher-forced path is ``__call__`` (hoisted input projections) and whose time-outer path is
``forcing.feedback_unroll`` on ``feedback_setup``'s plain arrays (the decoder's ``feedback_parts``
plus ``context``), so teacher forcing, scheduled sampling (every schedule, a coin per token),
always and soft sampling and professor forcing are the language model's code. A batch is
``(src [B, S], src_len [B], tgt_in [B, T], tgt_out [B, T], mask [B, T])`` (``data.pairs.PairBatches``);
every pair starts from the encoder, so the carries the train loop passes are returned unchanged.

Shapes: B batch, S source length, T target length + 1, E embedding, H hidden, V vocab, L layers.
"""
from __future__ import annotations

from functools import partial

import flax.linen as nn
import jax
import jax.numpy as jnp

from .. import RnnlabError
from ..cells import get_cell
from ..forcing import Forward, feedback_unroll, make_forward_loss_fn
from ..heads import get_head
from ..model import _uniform
from ..unroll import masked_unroll, unroll as unroll_layers


def cast_layers(layers, matmul_dtype: str) -> list:
    """Per-layer cell params with the weight matrices (``w_*``) cast to ``matmul_dtype`` (bf16 option)."""
    if matmul_dtype == "float32":
        return list(layers)
    dt = jnp.dtype(matmul_dtype)
    return [{k: (v.astype(dt) if k.startswith("w_") else v) for k, v in p.items()} for p in layers]


class Seq2Seq(nn.Module):
    """Encoder-decoder over token ids (see the module docstring)."""

    src_vocab_size: int
    tgt_vocab_size: int
    cell: str = "lstm"
    hidden_size: int = 64
    num_layers: int = 1
    embed_size: int = 0
    dropout: float = 0.0
    init_scheme: str = "uniform"  # uniform: U(+-init_scale) | pytorch: U(+-1/sqrt(H)) cells and readout
    init_scale: float = 0.1
    forget_bias: float | None = 1.0
    unroll: int = 1
    matmul_dtype: str = "float32"
    context: bool = True  # the encoder's final top-layer h at every decoder step (Cho et al. 2014)
    reverse_source: bool = False  # the encoder reads each source backwards (Sutskever et al. 2014)
    shared_embeddings: bool = False  # one embedding table for source and target
    head: str = "categorical"

    frames = False  # token inputs (what forcing's free-running helpers ask of a model)
    num_features = 0

    vocab_size = out_size = property(lambda self: self.tgt_vocab_size)  # V of the decoder's tokens
    head_fns = property(lambda self: get_head(self.head))
    cell_fns = property(lambda self: get_cell(self.cell, forget_bias=self.forget_bias))

    def setup(self):
        E, H, L = self.embed_size or self.hidden_size, self.hidden_size, self.num_layers
        if self.shared_embeddings and self.src_vocab_size != self.tgt_vocab_size:
            raise RnnlabError(f"model.seq2seq.shared_embeddings=True needs one vocabulary for source and target "
                              f"(got {self.src_vocab_size} and {self.tgt_vocab_size} tokens); set it False")
        if self.init_scheme not in ("uniform", "pytorch"):
            raise RnnlabError(f"model.init={self.init_scheme!r} is not valid; allowed: uniform, pytorch")
        scale = self.init_scale if self.init_scheme == "uniform" else 0.1
        cell_scale = self.init_scale if self.init_scheme == "uniform" else None
        cell = self.cell_fns
        self.embedding = nn.Embed(self.tgt_vocab_size, E, embedding_init=_uniform(scale))  # target (and shared)
        if not self.shared_embeddings:
            self.src_embedding = nn.Embed(self.src_vocab_size, E, embedding_init=_uniform(scale))
        layer = lambda name, i, in0: self.param(f"{name}_{i}", partial(  # noqa: E731
            cell.init, in_dim=in0 if i == 0 else H, hidden=H, init_scale=cell_scale))
        self.encoder = [layer("encoder", i, E) for i in range(L)]
        self.decoder = [layer("decoder", i, E + (H if self.context else 0)) for i in range(L)]
        bound = scale if self.init_scheme == "uniform" else 1.0 / H**0.5
        self.readout = nn.Dense(self.tgt_vocab_size, kernel_init=_uniform(bound), bias_init=_uniform(bound))
        self.drop = nn.Dropout(self.dropout)

    # -- the two halves --------------------------------------------------------------------------
    def between(self, train: bool):
        return lambda i, h: self.drop(h, deterministic=not train)

    def encode(self, src, src_len, *, train: bool = False):
        """src [B, S] int, src_len [B] int -> (carries: one per layer, [B, H] fields; context [B, H]).

        Positions t >= src_len[b] are padding: the masked unroll leaves row b's carry as it was after
        its last real token (a row of length 0 keeps the zero carry). ``reverse_source``: the time
        axis and the mask are reversed together, so each row is read from its last token to its first.
        """
        table = self.embedding if self.shared_embeddings else self.src_embedding
        xs = self.drop(table(src.T), deterministic=not train)  # [S, B, E]
        mask = jnp.arange(src.shape[1])[:, None] < src_len[None, :]  # [S, B]
        if self.reverse_source:
            xs, mask = xs[::-1], mask[::-1]
        cell = self.cell_fns
        carries = tuple(cell.initial_carry((src.shape[0],), self.hidden_size) for _ in range(self.num_layers))
        carries, _ = masked_unroll(cell, cast_layers(self.encoder, self.matmul_dtype), carries, xs, mask,
                                   between=self.between(train), unroll=self.unroll)
        return carries, carries[-1].h

    def decode(self, tgt_in, carries, context, *, train: bool = False):
        """tgt_in [B, T] (<bos> + target), carries, context [B, H] -> (logits [B, T, V], carries,
        hs [T, B, H] of the last layer before dropout). The teacher-forced path: one window,
        input projections hoisted (``unroll.unroll``)."""
        B, T = tgt_in.shape
        e = self.drop(self.embedding(tgt_in.T), deterministic=not train)  # [T, B, E]
        if self.context:
            e = jnp.concatenate([e, jnp.broadcast_to(context[None], (T,) + context.shape)], axis=-1)
        carries, hs = unroll_layers(self.cell_fns, cast_layers(self.decoder, self.matmul_dtype), carries, e,
                                    between=self.between(train), unroll=self.unroll)
        h = self.drop(hs, deterministic=not train)
        logits = self.readout(jnp.swapaxes(h, 0, 1).reshape(B * T, self.hidden_size))
        return logits.reshape(B, T, self.tgt_vocab_size), carries, hs

    def __call__(self, src, src_len, tgt_in, *, train: bool = False):
        """(src [B, S], src_len [B], tgt_in [B, T]) -> logits [B, T, V] (teacher forcing)."""
        carries, context = self.encode(src, src_len, train=train)
        return self.decode(tgt_in, carries, context, train=train)[0]

    def feedback_setup(self, src, src_len, T: int, *, train: bool = False):
        """-> (the encoder's final carries, the decoder as plain arrays for ``forcing.feedback_unroll``):
        ``layers``, ``table`` [V, E], ``w_out`` [H, V], ``b_out`` [V], ``context`` [B, H] (when used) and
        the dropout masks ``mask_embed`` [T, B, E], ``mask_between`` (L - 1 of [T, B, H]), ``mask_out``
        [T, B, H], drawn after the encoder's, in the order and shapes ``decode`` draws them: with the
        same 'dropout' rng both paths drop the same units, so eps = 1 gives teacher forcing's loss."""
        carries, context = self.encode(src, src_len, train=train)
        B, E, H = src.shape[0], self.embed_size or self.hidden_size, self.hidden_size
        drop = lambda shape: self.drop(jnp.ones(shape, jnp.float32), deterministic=not train)  # noqa: E731
        mask_embed = drop((T, B, E))
        mask_between = [drop((T, B, H)) for _ in range(1, self.num_layers)]
        mask_out = drop((T, B, H))
        dense = self.readout.variables["params"]
        parts = {"layers": cast_layers(self.decoder, self.matmul_dtype), "table": self.embedding.embedding,
                 "w_out": dense["kernel"], "b_out": dense["bias"], "mask_embed": mask_embed,
                 "mask_between": mask_between, "mask_out": mask_out}
        if self.context:
            parts["context"] = context
        return carries, parts

    # -- what train.py asks of a model that brings its own init, loss and evaluation ---------------
    def init_params(self, key, cfg=None) -> dict:
        one = jnp.ones((1, 1), jnp.int32)
        return self.init(key, one, jnp.ones((1,), jnp.int32), one)["params"]

    def forward(self) -> Forward:
        """The ``forcing.Forward`` of the decoder: x = tgt_in, y = tgt_out, cond = (src, src_len)."""
        head = self.head_fns

        def unpack(batch):
            src, src_len, tgt_in, tgt_out, mask = batch
            return tgt_in, tgt_out, mask, (src, src_len)

        def teacher(params, carries, x, cond, key):
            return self.apply({"params": params}, *cond, x, train=True, rngs={"dropout": key}), carries

        def feedback(params, carries, x, cond, key, eps, fb, *, train, hidden=False):
            rngs = {"dropout": key} if train else {}
            enc, parts = self.apply({"params": params}, *cond, x.shape[1], train=train, rngs=rngs,
                                    method=Seq2Seq.feedback_setup)
            out = feedback_unroll(self.cell_fns, head, parts, enc, x, key, eps, fb, unroll=self.unroll, hidden=hidden)
            return (out[0], carries) + out[2:]  # every pair starts from its encoder: the loop's carries pass through

        return Forward(unpack, teacher, feedback, head)

    def make_loss_fn(self, cfg):
        """``loss_fn(params, carries, batch, key, step)`` of ``cfg.train.mode`` (``forcing.py``)."""
        return make_forward_loss_fn(self.forward(), cfg)


@partial(jax.jit, static_argnames=("model",))
def _eval_windows(model, params, *windows):
    head = model.head_fns

    def sums(batch):
        src, src_len, tgt_in, tgt_out, mask = batch
        logits = model.apply({"params": params}, src, src_len, tgt_in)
        hit = (head.mode(logits) == tgt_out).astype(jnp.float32)
        return (head.nll(logits, tgt_out) * mask).sum(), mask.sum(), (hit * mask).sum()

    return jax.lax.map(sums, windows)


def eval_sums(model):
    """-> fn(params, carries, src [W, B, S], src_len [W, B], tgt_in [W, B, T], tgt_out, mask [W, B, T])
    -> (NLL sum [W], target count [W], correct [W]) per batch, teacher-forced (``evaluate.window_sums``'s
    eval_fn; ``correct`` counts targets equal to the argmax). Every pair starts from its encoder, so
    ``carries`` is unused. One compiled program per model and shapes (jit's cache)."""
    return lambda params, carries, *windows: _eval_windows(model, params, *windows)


def build_seq2seq(cfg, io) -> Seq2Seq:
    """The encoder-decoder of ``cfg.model`` (and ``cfg.model.seq2seq``) for the sizes ``io``
    (``kinds.pairs.model_io``: ``src_vocab_size``, ``tgt_vocab_size``)."""
    m = cfg.model
    s = m.get("seq2seq", {})
    if m.tie_weights:
        raise RnnlabError("model.tie_weights=True is not supported by the encoder-decoder (data of kind pairs); "
                          "set it False (model.seq2seq.shared_embeddings shares the input tables)")
    return Seq2Seq(
        src_vocab_size=int(io["src_vocab_size"]), tgt_vocab_size=int(io["tgt_vocab_size"]), cell=m.cell,
        hidden_size=m.hidden_size, num_layers=m.num_layers, embed_size=m.embed_size, dropout=m.dropout,
        init_scheme=m.init, init_scale=m.init_scale, forget_bias=m.forget_bias, unroll=m.unroll,
        matmul_dtype=m.matmul_dtype, context=bool(s.get("context", True)),
        reverse_source=bool(s.get("reverse_source", False)), shared_embeddings=bool(s.get("shared_embeddings", False)),
    )
