"""The output-to-hidden network (Goodfellow et al. 2016, section 10.2.1, Fig. 10.4): the only
recurrence runs from the output at t - 1 to the hidden layer at t; there are no hidden-to-hidden
weights::

    h_t = tanh(W x_t + U o_{t-1} + b)     W [V, H] (token ids: row x_t) or [K, H] (frames), U [N, H], b [H]
    o_t = V h_t + c                       V [H, N], c [N]: the logits of the head (categorical or N Bernoullis)

``model.cell=output_to_hidden`` selects it (``make_model``) for token streams, frames and
transduction; one hidden layer (``model.num_layers=1``); ``model.embed_size`` and ``tie_weights``
do not apply (W maps the input straight to H). It does not apply to the encoder-decoder kinds
(seq2seq: their cells come from ``cells.get_cell``), nor to ``eval.free_running`` (the oracle
metrics), ``experiments.sample`` / ``inspect_gates`` (``runs.load_run`` builds ``LanguageModel``):
generation is ``generate`` here.

**What o_{t-1} is.** The vector U multiplies is target-shaped: one-hot [N] (categorical head) or a
frame [K] in {0, 1} (Bernoulli head), or probabilities for soft feedback:

* teacher forcing: the gold previous target y_{t-1}. Every h_t is then a function of the data
  alone, so training is one batched computation over all T steps (two gathers, a tanh, the
  readout matmul) with no scan;
* free running (transduction evaluation, generation) and scheduled sampling: the network's own
  previous output through its head (``heads.py``): one-hot of ``head.mode`` / ``head.sample``, or
  ``head.soft`` (probabilities). Each step needs the last one's output: a sequential ``lax.scan``.

For the **language model** (and frames: ``num_outputs = 0``, the readout predicts the next input)
the previous target *is* the current input, y_{t-1} = x_t, so under teacher forcing h_t =
tanh(W x_t + U onehot(x_t) + b) depends on x_t alone: a bigram-like model (one hidden layer between
the current token and the next) with no memory of anything before x_t; in generation and scheduled
sampling the token fed back is both x_t and o_{t-1}. For **transduction** (``num_outputs`` = the
task's classes) o_{t-1} is the previous label while x_t stays the task's input: y_t = f(x_t,
y_{t-1}) is exactly the recurrence of running parity (y_t = y_{t-1} xor x_t) and of running count
mod k, so teacher forcing shows the network the state it must track; at test time it must feed
its own labels back (``__call__`` without ``outputs`` runs free, with argmax feedback).

**Carry.** ``HiddenCarry(h=z)`` with z = U o_{t-1} [B, H], the previous output's share of the
pre-activation: zeros at a sequence start (o_{-1} = 0), passed on across the windows of a padded
sequence. Token streams and frames do not use it (o_{-1} is read from x_0).

Scheduled sampling (``make_loss_fn``): a coin with probability eps per step (``train.coin``)
chooses o_t = y_t, else the own output; hard feedback runs the sequential pass without gradient to
choose, then the parallel pass on the chosen outputs (the same loss and gradients: no gradient
flows through a hard choice); soft feedback differentiates through the sequential pass.

Shapes: B batch, T time, H hidden, V input vocabulary, K frame units, N outputs (classes, V or K).
"""
from __future__ import annotations

from functools import partial

import flax.linen as nn
import jax
import jax.numpy as jnp

from . import RnnlabError
from .cells.base import HiddenCarry, add_bias
from .forcing import SAMPLED_MODES, Feedback, eps_schedule, feedback_options, masked_nll
from .heads import get_head
from .model import OUTPUT_TO_HIDDEN, _uniform, build_model


def times(o, m):
    """o @ m for o = token ids [...] int (one-hot rows: a gather of m's rows) or vectors [..., N]
    float (one-hot, frames, probabilities); m [N, H] -> [..., H]."""
    if jnp.issubdtype(o.dtype, jnp.integer):
        return jnp.take(m, o, axis=0)
    return jnp.matmul(o.astype(m.dtype), m)


class OutputToHidden(nn.Module):
    """h_t = tanh(W x_t + U o_{t-1} + b), o_t = V h_t + c (module docstring); parameters ``W``,
    ``U``, ``b``, ``V``, ``c`` under those names."""

    vocab_size: int = 0  # V: token ids in (0 when the inputs are frames)
    hidden_size: int = 200
    num_layers: int = 1  # must be 1: one hidden layer
    num_features: int = 0  # K > 0: the inputs are frames [..., K]
    num_outputs: int = 0  # N: classes (transduction); 0 = the input's width (the output is the next input)
    head: str = "categorical"
    dropout: float = 0.0  # on h before the readout (when training)
    init_scheme: str = "uniform"  # uniform: U(+-init_scale) | pytorch: U(+-1/sqrt(H)), every parameter
    init_scale: float = 0.1
    cell: str = OUTPUT_TO_HIDDEN  # read by code that names the model's recurrence (carries, summaries)
    forget_bias: float | None = None  # (no gates) kept for model.initial_carries' signature

    @property
    def frames(self) -> bool:
        return self.num_features > 0

    @property
    def next_input(self) -> bool:
        """True when the readout predicts the next input (token streams, frames): o_{t-1} = x_t."""
        return self.num_outputs == 0

    @property
    def feeds_back(self) -> bool:
        """True when ``__call__`` without ``outputs`` runs free (transduction): it feeds its own labels."""
        return not self.next_input

    @property
    def out_size(self) -> int:
        return self.num_outputs or (self.num_features if self.frames else self.vocab_size)

    @property
    def head_fns(self):
        return get_head(self.head)

    def setup(self):
        if self.num_layers != 1:
            raise RnnlabError(f"model.num_layers={self.num_layers} is not valid for model.cell=output_to_hidden; "
                              f"it has one hidden layer: set num_layers=1")
        if self.init_scheme not in ("uniform", "pytorch"):
            raise RnnlabError(f"model.init={self.init_scheme!r} is not valid; allowed: uniform, pytorch")
        s = self.init_scale if self.init_scheme == "uniform" else 1.0 / self.hidden_size**0.5
        H, N = self.hidden_size, self.out_size
        self.W = self.param("W", _uniform(s), (self.num_features or self.vocab_size, H))
        self.U = self.param("U", _uniform(s), (N, H))
        self.b = self.param("b", _uniform(s), (H,))
        self.V = self.param("V", _uniform(s), (H, N))
        self.c = self.param("c", _uniform(s), (N,))
        self.drop = nn.Dropout(self.dropout)

    # -- pieces --------------------------------------------------------------------------------
    def feedback_matrix(self):
        """What o_{t-1} is multiplied by: U, or W + U when the output is the next input (it is x_t too)."""
        return self.W + self.U if self.next_input else self.U

    def input_term(self, x):
        """W x_t [..., H] of the task's inputs; zero when the output is the next input (in the feedback term)."""
        if self.next_input:
            return jnp.zeros(x.shape[:2] + (self.hidden_size,), jnp.float32)
        return times(x, self.W)

    def dropout_mask(self, shape, train: bool):
        """Scaled dropout mask [shape] on h (ones without dropout), drawn as one ``nn.Dropout`` call."""
        return self.drop(jnp.ones(shape, jnp.float32), deterministic=not train)

    def readout(self, h):
        """h [..., H] -> o [..., N] = h V + c."""
        return add_bias(jnp.matmul(h, self.V), self.c)

    # -- the parallel (teacher-forced) pass ----------------------------------------------------
    def __call__(self, inputs, carries, *, train: bool = False, outputs=None):
        """inputs [B, T] ids or [B, T, K] frames, carries (one HiddenCarry) -> (logits [B, T, N], carries).

        ``outputs`` [B, T] (ids) or [B, T, K]: the o_t chosen at each step (teacher forcing: the
        targets y); o_{t-1} at step t is outputs[:, t - 1], o_{-1} the carry (transduction) or x_0
        (the output is the next input, whose inputs are then x_0, outputs[:, :-1]). All T steps in
        one batched computation. Without ``outputs``: token streams and frames read o_{t-1} = x_t
        (teacher forcing); transduction runs free (``feedback_pass`` with argmax feedback)."""
        if outputs is None and self.feeds_back:
            B, T = inputs.shape[:2]
            keys = jax.random.split(jax.random.key(0), T)  # unused by argmax feedback
            logits, carries, _ = self.feedback_pass(inputs, jnp.zeros((B, T), self.head_fns.target_dtype), carries,
                                                    jnp.zeros((T, B), bool), keys, train=train)
            return logits, carries
        F = self.feedback_matrix()
        if self.next_input:
            fed = inputs if outputs is None else jnp.concatenate([inputs[:, :1], outputs[:, :-1]], axis=1)
            z = times(fed, F)  # [B, T, H]: o_{t-1} = the input at t
        else:
            z = jnp.concatenate([carries[0].h[:, None], times(outputs[:, :-1], F)], axis=1)
            carries = (HiddenCarry(times(outputs[:, -1], F)),)
        h = jnp.tanh(add_bias(self.input_term(inputs) + z, self.b))
        return self.readout(h * self.dropout_mask(h.shape, train)), carries

    # -- the sequential pass (free running, scheduled sampling) --------------------------------
    def feedback_pass(self, inputs, targets, carries, gold, keys, fb: Feedback = Feedback(kind="argmax"), *,
                      train: bool = False):
        """One ``lax.scan`` over time: inputs [B, T(, K)], targets y like inputs, gold [T, B] bool
        (coin t: o_t = y_t, else the own output), keys [T] -> (logits [B, T, N], carries, fed
        [B, T(, K)]: the o_t chosen (soft feedback: the hard choice, gold or mode)).

        Step t: h_t = tanh(W x_t + z_t + b), o_t = V (h_t * mask_t) + c, then the output chosen
        through the head (``fb.kind``: sample at ``fb.temperature``, argmax = mode, soft =
        probabilities) and z_{t+1} = o_t F (F = U, or W + U when the output is the next input);
        z_0 = the carry (transduction) or x_0 F. The dropout mask is the one ``__call__`` draws."""
        head, F = self.head_fns, self.feedback_matrix()
        B, T = inputs.shape[:2]
        tm = lambda a: jnp.swapaxes(a, 0, 1)  # noqa: E731  [B, T, ...] <-> [T, B, ...]
        z0 = times(inputs[:, 0], F) if self.next_input else carries[0].h
        xs = {"a": tm(self.input_term(inputs)), "y": tm(targets), "gold": gold, "key": keys,
              "m": tm(self.dropout_mask((B, T, self.hidden_size), train))}
        temperature = jnp.asarray(fb.temperature, jnp.float32)
        N = self.out_size

        def step(z, s):
            h = jnp.tanh(add_bias(s["a"] + z, self.b))
            o = self.readout(h * s["m"])
            g = s["gold"].reshape((B,) + (1,) * (s["y"].ndim - 1))
            own = head.sample(s["key"], o, temperature) if fb.kind == "sample" else head.mode(o)
            fed = jnp.where(g, s["y"], own)
            if fb.kind == "soft":
                gold_vec = jax.nn.one_hot(s["y"], N) if jnp.issubdtype(s["y"].dtype, jnp.integer) else s["y"]
                z = times(jnp.where(s["gold"][:, None], gold_vec, head.soft(o, temperature)), F)
            else:
                z = times(fed, F)
            return z, (o, fed)

        z, (logits, fed) = jax.lax.scan(step, z0, xs)
        if not self.next_input:
            carries = (HiddenCarry(z),)
        return tm(logits), carries, tm(fed)

    # -- training ------------------------------------------------------------------------------
    @nn.nowrap
    def make_loss_fn(self, cfg):
        """``loss_fn(params, carries, batch, key, step)`` for ``train.make_train_step`` (``make_loss_fn``)."""
        return make_loss_fn(self, cfg)


# ----------------------------------------------------------------------------------------------
def make_model(cfg, io):
    """The model of ``cfg.model`` for a kind's sizes ``io`` (``kinds.model_io``, or an int V): the
    output-to-hidden network when ``model.cell=output_to_hidden``, else ``model.build_model``."""
    m = cfg.model
    if m.cell != OUTPUT_TO_HIDDEN:
        return build_model(cfg, io)
    if m.tie_weights:
        raise RnnlabError("model.tie_weights=True does not apply to model.cell=output_to_hidden; set tie_weights=False")
    io = {"vocab_size": int(io)} if hasattr(io, "__index__") else dict(io)
    return OutputToHidden(**io, hidden_size=m.hidden_size, num_layers=m.num_layers, dropout=m.dropout,
                          init_scheme=m.init, init_scale=m.init_scale)


def _batch(batch):
    x, y, *mask = batch
    return x, y, (mask[0] if mask else None)


def _coins(key, eps, T: int, B: int, coin: str):
    """(gold [T, B]: coin t chooses o_t = y_t, keys [T] for the draws) from ``key`` (forcing's folding)."""
    k_coin, k_draw = jax.random.split(jax.random.fold_in(key, 1))
    u = jax.random.uniform(k_coin, (T, B) if coin == "token" else (1, B))
    return jnp.broadcast_to(u < eps, (T, B)), jax.random.split(k_draw, T)


def _loss(model, logits, y, mask, eps, gold):
    """(mean NLL at the counted positions, the step's metric sums as ``forcing``'s losses give them):
    gold [B, T] bool = the o_{t-1} fed at step t was gold (counted for t >= 1)."""
    loss, total, count = masked_nll(model.head_fns.nll(logits, y), mask)
    B, T = gold.shape
    return loss, {"nll_sum": total, "count": count, "eps": jnp.asarray(eps, jnp.float32),
                  "gold_fed": gold[:, 1:].sum().astype(jnp.float32), "fed_count": jnp.asarray(B * (T - 1), jnp.float32)}


def make_loss_fn(model: OutputToHidden, cfg):
    """loss_fn(params, carries, batch=(x, y[, mask]), key, step) -> (mean NLL, (carries, metrics)),
    the metrics of ``forcing.make_loss_fn`` (``gold_fed`` / ``fed_count``: the o_{t-1} fed inside
    the window, t >= 1). Teacher forcing: the parallel pass on ``outputs=y``. Sampled modes: eps
    from ``forcing.eps_schedule``; hard feedback chooses in the sequential pass (no gradient), then
    the parallel pass on the chosen outputs; soft feedback differentiates the sequential pass. With
    a warm-up, ``lax.cond`` runs the teacher-forced pass while eps >= 1."""
    mode = cfg.train.mode
    if mode != "teacher_forcing" and mode not in SAMPLED_MODES:
        raise RnnlabError(f"train.mode={mode!r} is not valid; allowed: teacher_forcing, {', '.join(SAMPLED_MODES)}")
    eps_fn, fb = eps_schedule(cfg), feedback_options(cfg)
    warm = mode != "teacher_forcing" and int(cfg.train.schedule.warmup_steps) > 0

    def teacher(params, carries, x, y, mask, key, eps):
        logits, carries = model.apply({"params": params}, x, carries, train=True, outputs=y, rngs={"dropout": key})
        loss, metrics = _loss(model, logits, y, mask, eps, jnp.ones(x.shape[:2], bool))
        return loss, (carries, metrics)

    def sampled(params, carries, x, y, mask, key, eps):
        B, T = x.shape[:2]
        gold, keys = _coins(key, eps, T, B, fb.coin)
        run = model.apply
        if fb.kind == "soft":
            logits, carries, _ = run({"params": params}, x, y, carries, gold, keys, fb, train=True,
                                     rngs={"dropout": key}, method=OutputToHidden.feedback_pass)
        else:
            _, _, fed = run({"params": jax.lax.stop_gradient(params)}, x, y, carries, gold, keys, fb, train=True,
                            rngs={"dropout": key}, method=OutputToHidden.feedback_pass)
            logits, carries = run({"params": params}, x, carries, train=True, outputs=jax.lax.stop_gradient(fed),
                                  rngs={"dropout": key})
        fed_gold = jnp.concatenate([jnp.ones((1, B), bool), gold[:-1]]).T  # [B, T]: o_{t-1} at t was gold
        loss, metrics = _loss(model, logits, y, mask, eps, fed_gold)
        return loss, (carries, metrics)

    def loss_fn(params, carries, batch, key, step):
        x, y, mask = _batch(batch)
        y = y.astype(model.head_fns.target_dtype)
        eps = eps_fn(step)
        if mode == "teacher_forcing":
            return teacher(params, carries, x, y, mask, key, eps)
        if not warm:
            return sampled(params, carries, x, y, mask, key, eps)
        return jax.lax.cond(eps >= 1.0, lambda ops: teacher(*ops, x, y, mask, key, eps),
                            lambda ops: sampled(*ops, x, y, mask, key, eps), (params, carries))

    return loss_fn


# ----------------------------------------------------------------------------------------------
def generate(model: OutputToHidden, params, prompt, length: int, key, *, temperature: float = 1.0,
             greedy: bool = False):
    """Free-running generation (token streams, frames): prompt [S, P] ids (or [S, P, K]) -> (generated
    [S, length], logits [S, length, N] each was drawn from). Its only state is the last token, so the
    prompt's last token starts the sequential pass at eps = 0; dropout is off."""
    if model.feeds_back:
        raise RnnlabError("generate needs a model whose output is its next input (token streams, frames); "
                          "a transduction model is run with __call__ (free running)")
    prompt = jnp.asarray(prompt, model.head_fns.target_dtype)
    return _generate(model, params, prompt, int(length), key, jnp.float32(temperature), bool(greedy))


@partial(jax.jit, static_argnames=("model", "length", "greedy"))
def _generate(model, params, prompt, length, key, temperature, greedy):
    S = prompt.shape[0]
    x = jnp.concatenate([prompt[:, -1:], jnp.zeros((S, length - 1) + prompt.shape[2:], prompt.dtype)], axis=1)
    fb = Feedback(kind="argmax" if greedy else "sample", temperature=temperature)
    carries = (HiddenCarry(jnp.zeros((S, model.hidden_size), jnp.float32)),)
    logits, _, fed = model.apply({"params": params}, x, jnp.zeros_like(x), carries, jnp.zeros((length, S), bool),
                                 jax.random.split(key, length), fb, method=OutputToHidden.feedback_pass)
    return fed, logits
