"""The recurrent model: input side -> L recurrent layers (the core) -> readout -> head.

One model serves every kind of sequence; what differs is only what flows in and out of the core:

* input side: token ids [B, T] -> ``nn.Embed`` (``vocab_size`` = V), or frames [B, T, K] -> a dense
  projection ``input_proj`` (``num_features`` = K > 0);
* readout: ``nn.Dense`` to ``num_outputs`` N logits (0 = the input's width: V or K), or the tied
  embedding matrix;
* head (``heads.py``, by name): ``categorical`` over N tokens or ``bernoulli`` over N units.

Flax linen holds the parameters and the standard layers (``nn.Embed``, ``nn.Dense``,
``nn.Dropout``); the recurrent math stays in the pure cell functions, called through
``unroll.py``. Each layer's parameters are one ``self.param`` whose value is the cell's own
param dict, so ``params['layer_0']['w_h']`` is exactly what ``cell.step`` receives.

Shapes: inputs are time-major inside (T, B[, K]); the public ``__call__`` takes [B, T] tokens or
[B, T, K] frames, transposes them (cheap), and returns logits [B, T, N].

Dropout (Zaremba et al. 2014) is applied to the non-recurrent connections only: the embedding
output, between layers, and before the readout; never to the carry.
"""
from __future__ import annotations

from functools import partial

import flax.linen as nn
import jax
import jax.numpy as jnp

from . import RnnlabError
from .cells import get_cell
from .cells.base import HiddenCarry, add_bias
from .heads import get_head
from .unroll import unroll as unroll_layers


def _uniform(scale):
    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -scale, scale)

    return init


class LanguageModel(nn.Module):
    """The model of every sequence kind (its name is historical: token streams came first)."""

    vocab_size: int = 0  # V: token ids in (0 when the inputs are frames)
    cell: str = "lstm"
    hidden_size: int = 200
    num_layers: int = 2
    embed_size: int = 0
    dropout: float = 0.0
    tie_weights: bool = False
    init_scheme: str = "uniform"  # uniform: U(+-init_scale) everywhere | pytorch: U(+-1/sqrt(H)) cells and readout, U(+-0.1) embedding
    init_scale: float = 0.1
    forget_bias: float | None = 1.0
    unroll: int = 1
    matmul_dtype: str = "float32"
    num_features: int = 0  # K > 0: the inputs are frames [..., K] (dense input projection), not token ids
    num_outputs: int = 0  # N: readout width; 0 = the input's width (V, or K)
    head: str = "categorical"  # categorical | bernoulli (heads.py): what the N logits mean
    frame_projection: bool = True  # frames: a dense input layer K -> E first; False = the frames feed the first
    #   recurrent layer directly (its input matrix is the input layer: Chung et al. 2014's model), E = K

    @property
    def frames(self) -> bool:
        return self.num_features > 0

    @property
    def input_width(self) -> int:
        """E, the width of what the first recurrent layer reads."""
        if self.frames and not self.frame_projection:
            return self.num_features
        return self.embed_size or self.hidden_size

    @property
    def out_size(self) -> int:
        """N, the readout's width."""
        return self.num_outputs or (self.num_features if self.frames else self.vocab_size)

    @property
    def head_fns(self):
        return get_head(self.head)

    @property
    def cell_fns(self):
        return get_cell(self.cell, forget_bias=self.forget_bias)

    def setup(self):
        E = self.input_width
        if self.tie_weights and (self.frames or self.out_size != self.vocab_size):
            raise RnnlabError("model.tie_weights=True needs token inputs and outputs of the same vocabulary; "
                              "set tie_weights=False")
        if self.tie_weights and E != self.hidden_size:
            raise RnnlabError(f"model.tie_weights=True needs model.embed_size == model.hidden_size "
                              f"(got {E} vs {self.hidden_size}); set embed_size=0 or tie_weights=False")
        if self.init_scheme not in ("uniform", "pytorch"):
            raise RnnlabError(f"model.init={self.init_scheme!r} is not valid; allowed: uniform, pytorch")
        scale = self.init_scale if self.init_scheme == "uniform" else 0.1
        cell_scale = self.init_scale if self.init_scheme == "uniform" else None
        cell = self.cell_fns
        if self.frames and self.frame_projection:
            self.input_proj = nn.Dense(E, kernel_init=_uniform(scale), bias_init=_uniform(scale))
        elif self.frames:
            pass  # frames feed layer 0 directly (input_width = K)
        else:
            self.embedding = nn.Embed(self.vocab_size, E, embedding_init=_uniform(scale))
        self.layers = [
            self.param(f"layer_{i}", partial(cell.init, in_dim=E if i == 0 else self.hidden_size,
                                              hidden=self.hidden_size, init_scale=cell_scale))
            for i in range(self.num_layers)
        ]
        if self.tie_weights:
            self.readout_bias = self.param("readout_bias", nn.initializers.zeros, (self.vocab_size,))
        else:
            bound = scale if self.init_scheme == "uniform" else 1.0 / self.hidden_size**0.5
            self.readout = nn.Dense(self.out_size, kernel_init=_uniform(bound), bias_init=_uniform(bound))
        self.drop = nn.Dropout(self.dropout)

    # -- pieces, so that other unrolls (scheduled sampling, inspection) reuse the same parameters --
    def layer_params(self):
        """The per-layer cell params, cast to matmul_dtype for the weight matrices (bf16 option)."""
        if self.matmul_dtype == "float32":
            return list(self.layers)
        dt = jnp.dtype(self.matmul_dtype)
        return [{k: (v.astype(dt) if k.startswith("w_") else v) for k, v in p.items()} for p in self.layers]

    def embed(self, inputs, *, train: bool = False):
        """tokens [...] int or frames [..., K] -> input vectors [..., E], with dropout when training."""
        if self.frames:
            e = inputs.astype(jnp.float32)
            e = self.input_proj(e) if self.frame_projection else e
        else:
            e = self.embedding(inputs)
        return self.drop(e, deterministic=not train)

    def embed_soft(self, probs):
        """probs [..., V] -> probability-weighted mix of embeddings [..., E] (soft feedback); for frames,
        the unit probabilities [..., K] through the input projection."""
        return embed_soft(self.input_parts(), probs)

    def input_parts(self) -> dict:
        """The input side as plain arrays: ``table`` [V, E] (tokens) or ``w_in`` [K, E], ``b_in`` [E] (frames;
        nothing when the frames feed layer 0 directly)."""
        if self.frames and not self.frame_projection:
            return {}
        if self.frames:
            dense = self.input_proj.variables["params"]
            return {"w_in": dense["kernel"], "b_in": dense["bias"]}
        return {"table": self.embedding.embedding}

    def logits(self, h, *, train: bool = False):
        """h [..., H] -> logits [..., V], with dropout on h when training."""
        return self.project_out(self.drop(h, deterministic=not train))

    def project_out(self, h):
        """h [..., H] -> logits [..., V]: the readout alone (no dropout)."""
        if self.tie_weights:
            return add_bias(self.embedding.attend(h), self.readout_bias)
        return self.readout(h)

    def dropout_between(self, train: bool):
        return lambda i, h: self.drop(h, deterministic=not train)

    def feedback_parts(self, T: int, B: int, *, train: bool = False) -> dict:
        """Plain arrays for the time-outer (scheduled sampling / free-running) unroll, so its scan
        body is pure math: ``layers`` (per-layer cell params), the input side (``input_parts``: ``table``
        [V, E] or ``w_in`` [K, E] and ``b_in`` [E]), ``w_out`` [H, N], ``b_out`` [N] (readout; tied:
        ``table.T``), and scaled dropout masks
        ``mask_embed`` [T, B, E], ``mask_between`` (L - 1 of [T, B, H]), ``mask_out`` [T, B, H].

        The masks are drawn by the same ``nn.Dropout`` calls, in the same order and with the same
        shapes as ``__call__`` draws them, so with the same 'dropout' rng both paths drop the same
        units (eps = 1 then gives the teacher-forcing loss to rounding). Without dropout they are ones.
        """
        E = self.input_width
        H = self.hidden_size
        drop = lambda shape: self.drop(jnp.ones(shape, jnp.float32), deterministic=not train)
        mask_embed = drop((T, B, E))
        mask_between = [drop((T, B, H)) for _ in range(1, self.num_layers)]
        mask_out = drop((T, B, H))
        inputs = self.input_parts()
        if self.tie_weights:
            w_out, b_out = inputs["table"].T, self.readout_bias
        else:
            dense = self.readout.variables["params"]
            w_out, b_out = dense["kernel"], dense["bias"]
        return {"layers": self.layer_params(), **inputs, "w_out": w_out, "b_out": b_out,
                "mask_embed": mask_embed, "mask_between": mask_between, "mask_out": mask_out}

    def __call__(self, inputs, carries, *, train: bool = False):
        """tokens [B, T] int32 or frames [B, T, K], carries (one per layer) -> (logits [B, T, N], carries)."""
        xs = self.embed(jnp.swapaxes(inputs, 0, 1) if self.frames else inputs.T, train=train)  # [T, B, E]
        carries, hs = unroll_layers(self.cell_fns, self.layer_params(), carries, xs,
                                    between=self.dropout_between(train), unroll=self.unroll)
        h = self.drop(hs, deterministic=not train)  # [T, B, H]: the mask `logits(hs)` would draw
        # transpose h [T, B, H] (small), not the logits [T, B, V] (V times larger, and again in
        # backward); the readout as one 2-D [B*T, H] @ [H, V] matmul (XLA's CPU dot is slower on 3-D)
        T, B, H = h.shape
        logits = self.project_out(jnp.swapaxes(h, 0, 1).reshape(B * T, H))
        return logits.reshape(B, T, logits.shape[-1]), carries


def embed_hard(parts: dict, x):
    """The input side on plain arrays (``feedback_parts``): tokens [B] int -> ``table[x]``, or frames
    [B, K] -> ``x @ w_in + b_in``; [B, E]."""
    if "table" in parts:
        return jnp.take(parts["table"], x, axis=0)
    if "w_in" not in parts:  # frames fed directly
        return x.astype(jnp.float32)
    return add_bias(jnp.matmul(x.astype(jnp.float32), parts["w_in"]), parts["b_in"])


def embed_soft(parts: dict, probs):
    """The soft input: probs [..., V] @ table (the probability-weighted mix of embeddings), or the unit
    probabilities [..., K] through the frame projection (the expected frame's input); [..., E]."""
    if "table" in parts:
        return probs @ parts["table"]
    if "w_in" not in parts:  # frames fed directly: the expected frame itself
        return probs
    return add_bias(jnp.matmul(probs, parts["w_in"]), parts["b_in"])


def readout_logits(parts: dict, h):
    """h [..., H] -> logits [..., V] with the plain arrays of ``feedback_parts`` (same math as
    ``LanguageModel.logits`` without its dropout)."""
    return add_bias(jnp.matmul(h, parts["w_out"]), parts["b_out"])


OUTPUT_TO_HIDDEN = "output_to_hidden"  # model.cell of output_to_hidden.py's network (not a cell: no hidden-to-hidden)


def initial_carries(cell_name: str, num_layers: int, batch_size: int, hidden_size: int, forget_bias=1.0):
    """Zero carries for every layer: a tuple of HiddenCarry / LSTMCarry with [B, H] fields."""
    if cell_name == OUTPUT_TO_HIDDEN:  # its carry is z = U o_{t-1} [B, H]; zeros: no previous output
        return tuple(HiddenCarry(jnp.zeros((batch_size, hidden_size), jnp.float32)) for _ in range(num_layers))
    cell = get_cell(cell_name, forget_bias=forget_bias)
    return tuple(cell.initial_carry((batch_size,), hidden_size) for _ in range(num_layers))


def build_model(cfg, io) -> LanguageModel:
    """The model of ``cfg.model`` for a kind's input/output sizes ``io``: a dict with ``vocab_size``,
    ``num_features``, ``num_outputs``, ``head`` (``kinds.model_io``), or an int V (a token LM)."""
    m = cfg.model
    io = {"vocab_size": int(io)} if isinstance(io, (int,)) or hasattr(io, "__index__") else dict(io)
    return LanguageModel(
        **io, cell=m.cell, hidden_size=m.hidden_size, num_layers=m.num_layers,
        embed_size=m.embed_size, dropout=m.dropout, tie_weights=m.tie_weights, init_scheme=m.init,
        init_scale=m.init_scale, forget_bias=m.forget_bias, unroll=m.unroll, matmul_dtype=m.matmul_dtype,
        **({"frame_projection": bool(m.frame_projection)} if "frame_projection" in m else {}),
    )


def model_carries(cfg, batch_size: int):
    m = cfg.model
    return initial_carries(m.cell, m.num_layers, batch_size, m.hidden_size, m.forget_bias)


def count_params(params) -> int:
    return int(sum(x.size for x in jax.tree_util.tree_leaves(params)))
