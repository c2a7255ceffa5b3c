"""What the model is fed while training: teacher forcing, scheduled sampling and its relatives.

Modes (``train.mode``):

* ``teacher_forcing``: the gold previous token, always. Runs the fast layout of ``model.__call__``
  (the input projection of the whole window hoisted out of the scan).
* ``scheduled_sampling`` (Bengio et al. 2015): at each step, for each sequence, a coin with
  probability eps feeds the gold previous token, else a token drawn from the model's own prediction
  at the previous step (``train.feedback``: ``sample`` from softmax(logits / feedback_temperature),
  or ``argmax``); no gradient through the draw. ``train.coin``: one coin per token (default) or one
  per sequence (per row of the window). eps follows ``train.schedule`` over optimizer steps.
* ``always_sampling``: eps = 0 (Bengio et al.'s baseline): only the first token of a window is gold
  (it continues the stream the carry has seen).
* ``soft_sampling`` (Goyal et al. 2017): where the coin says "model", the fed embedding is the
  probability-weighted mix of embeddings ``softmax(logits / feedback_temperature) @ E``, and the
  gradient flows through it (differentiable scheduled sampling). eps follows the schedule.

eps is a traced scalar computed from ``step`` inside the jitted step (convention 7), so every
schedule and every eps runs through one compiled program. The sampled modes use
``unroll.unroll_feedback`` (all layers + readout + the feedback choice per step in one scan); at
eps = 1 that path gives the teacher-forcing loss and gradients (tests/test_forcing.py), and with a
warm-up the loss function switches to the fast path while eps >= 1, with ``lax.cond``.

* ``professor_forcing`` (Lamb et al. 2016): teacher forcing plus a discriminator on the hidden
  states (``seq2seq/professor.py``, which drives the model through the same ``Forward``).

The losses are written once over a ``Forward`` (how a model is run teacher-forced and time-outer):
the language model's (``lm_forward``) and an encoder-decoder's decoder (``seq2seq/model.py``), whose
``feedback_parts`` add the encoder's context to the same plain arrays, so every mode serves both.
``make_loss_fn(model, cfg)`` returns ``loss_fn(params, carries, batch, key, step)`` ->
``(mean NLL, (carries, metrics))`` with metrics as sums: ``nll_sum``, ``count``, ``eps`` (the
step's eps), ``gold_fed`` (coins that fed the gold token, positions t >= 1) and ``fed_count``.
"""
from __future__ import annotations

from functools import partial
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from . import RnnlabError
from .heads import Head, with_sampler
from .model import LanguageModel, embed_hard, embed_soft, initial_carries, readout_logits
from .unroll import unroll_feedback

SAMPLED_MODES = ("scheduled_sampling", "always_sampling", "soft_sampling")
FEEDBACKS = ("sample", "argmax")
COINS = ("token", "sequence")


# ----------------------------------------------------------------------------- schedules
def make_schedule(s) -> optax.Schedule:
    """The schedule of ``train.schedule`` (without the warm-up): step i -> eps_i (float32).

    constant:        eps_i = eps
    linear:          eps_i = max(eps_min, start - slope * i)            (Bengio et al.: max(eps, k - c i))
    exponential:     eps_i = max(eps_min, base ** i), base < 1          (Bengio et al.: k ** i)
    inverse_sigmoid: eps_i = max(eps_min, k / (k + exp(i / k))), k >= 1 (Bengio et al.; hand-written,
                     optax has no such schedule). eps_0 = k / (k + 1); eps = 1/2 at i = k ln k.
    """
    kind = s.kind
    eps_min = float(s.eps_min)
    if kind == "constant":
        return optax.constant_schedule(float(s.eps))
    if kind == "linear":
        start, slope = float(s.start), float(s.slope)
        if slope == 0.0 or start <= eps_min:
            return optax.constant_schedule(max(start, eps_min))
        # the line start - slope * i reaches eps_min after (start - eps_min) / slope steps; optax's
        # linear schedule interpolates exactly that line (fractional transition steps are fine) and holds.
        return optax.linear_schedule(start, eps_min, (start - eps_min) / slope)
    if kind == "exponential":
        return optax.exponential_decay(1.0, transition_steps=1, decay_rate=float(s.base), end_value=eps_min)
    if kind == "inverse_sigmoid":
        k = float(s.k)

        def inverse_sigmoid(i):  # hand-written: not an optax schedule
            i = jnp.asarray(i, jnp.float32)
            return jnp.maximum(jnp.float32(eps_min), k / (k + jnp.exp(i / k)))

        return inverse_sigmoid
    raise RnnlabError(f"train.schedule.kind={kind!r} is not valid; allowed: constant, linear, exponential, inverse_sigmoid")


def eps_schedule(cfg) -> optax.Schedule:
    """step -> eps for ``cfg.train.mode``: 1 for teacher forcing, 0 for always sampling, the schedule
    for scheduled / soft sampling; a warm-up of ``train.schedule.warmup_steps`` pure teacher-forcing
    steps comes first in the sampled modes (the schedule then starts at its step 0)."""
    mode = cfg.train.mode
    if mode == "teacher_forcing":
        return lambda step: jnp.float32(1.0)
    s = cfg.train.schedule
    base = optax.constant_schedule(0.0) if mode == "always_sampling" else make_schedule(s)
    if int(s.warmup_steps) > 0:
        base = optax.join_schedules([optax.constant_schedule(1.0), base], [int(s.warmup_steps)])
    return lambda step: jnp.asarray(base(step), jnp.float32)


# ----------------------------------------------------------------------------- the sampled path
class Feedback(NamedTuple):
    """How the model's own prediction is fed back: ``kind`` sample | argmax | soft; ``temperature``
    of the softmax the token is drawn from (or of the soft mix); ``coin`` token | sequence; ``sampler``
    gumbel | inverse_cdf (how a token is drawn: ``heads.get_head``); ``unroll`` > 0: the scan unroll of
    the pass that only decides the fed tokens (``train.sampling_unroll``; 0: the model's ``unroll``)."""

    kind: str = "sample"
    temperature: float = 1.0
    coin: str = "token"
    sampler: str = "gumbel"
    unroll: int = 0


def feedback_options(cfg) -> Feedback:
    """The ``Feedback`` of ``cfg.train``; ``train.sampling_unroll`` only where the token pass of two-pass
    hard feedback exists (the sampled modes): every other pass carries gradients, at the model's unroll."""
    t = cfg.train
    kind = "soft" if t.mode == "soft_sampling" else t.feedback
    token_pass = t.mode in SAMPLED_MODES and kind != "soft"  # two-pass: a no-gradient pass decides the tokens
    return Feedback(kind=kind, temperature=float(t.feedback_temperature), coin=t.coin,
                    sampler=t.get("sampler", "gumbel"), unroll=int(t.get("sampling_unroll", 0)) if token_pass else 0)


def feedback_forward(model: LanguageModel, params, carries, x, key, eps, fb: Feedback = Feedback(), *,
                     train: bool = False, hidden: bool = False):
    """The language model's time-outer path: x [B, T] gold tokens (or [B, T, K] frames) -> (logits
    [B, T, N], carries, fed (like x), gold [B, T] bool[, hs [B, T, H]]): ``feedback_unroll`` on the
    model's ``feedback_parts``. ``key`` is the dropout key (as teacher forcing uses it)."""
    B, T = x.shape[:2]
    rngs = {"dropout": key} if train else {}
    parts = model.apply({"params": params}, T, B, train=train, rngs=rngs, method=LanguageModel.feedback_parts)
    return feedback_unroll(model.cell_fns, model.head_fns, parts, carries, x, key, eps, fb, unroll=model.unroll,
                           hidden=hidden)


def with_context(parts: dict, e):
    """The input of the first layer: e [B, E], with ``parts["context"]`` [B, C] appended when the parts
    have one (an encoder-decoder's context at every step, Cho et al. 2014) -> [B, E (+ C)]."""
    if "context" not in parts:
        return e
    return jnp.concatenate([e, parts["context"].astype(e.dtype)], axis=-1)


def feedback_unroll(cell, head, parts: dict, carries, x, key, eps, fb: Feedback = Feedback(), *, unroll: int = 1,
                    hidden: bool = False):
    """The time-outer path of any recurrent stack given as plain arrays ``parts`` (``LanguageModel.
    feedback_parts``, or an encoder-decoder's decoder: the same keys plus ``context`` [B, C]).

    x [B, T] gold tokens (or [B, T, K] frames) -> (logits [B, T, N], carries, fed (like x), gold [B, T]
    bool), and with ``hidden`` also hs [B, T, H] (the last layer's outputs, before dropout: professor
    forcing's behaviour sequence). Step t feeds x[:, t] where ``gold[:, t]`` (a coin with probability
    eps; always at t = 0), else the model's own prediction at t - 1 through its head (``heads.py``):
    ``head.sample`` (drawn at ``fb.temperature``), ``head.mode`` (argmax / threshold 0.5), or for soft
    feedback the input side of ``head.soft`` (the probability-weighted embedding; the unit
    probabilities for frames; ``fed`` then holds the mode). The coins and draws use keys folded from
    ``key``. eps may be a traced scalar.
    """
    B, T = x.shape[:2]
    head = with_sampler(head, fb.sampler)
    unroll = fb.unroll or unroll
    k_coin, k_draw = jax.random.split(jax.random.fold_in(key, 1))
    u = jax.random.uniform(k_coin, (T, B) if fb.coin == "token" else (1, B))
    gold = jnp.broadcast_to(u < eps, (T, B)).at[0].set(True)
    xt = jnp.swapaxes(x, 0, 1).astype(head.target_dtype)  # [T, B] tokens or [T, B, K] frames
    xs = {"tok": xt, "gold": gold, "key": jax.random.split(k_draw, T), "m_e": parts["mask_embed"],
          "m_b": parts["mask_between"], "m_o": parts["mask_out"]}
    if fb.kind == "soft":
        xs["emb"] = embed_hard(parts, xt)  # gold inputs [T, B, E], one gather (or matmul) for the window

    temperature = jnp.asarray(fb.temperature, jnp.float32)

    def feed(prev, s):
        """prev: logits [B, N] of step t - 1 (with ``hidden``: (logits, h)) -> (input [B, E (+ C)], fed
        token [B] or frame [B, K])."""
        prev = prev[0] if hidden else prev
        if fb.kind == "argmax" or fb.kind == "soft":
            own = head.mode(prev)
        else:
            own = head.sample(s["key"], prev, temperature)
        gold_t = s["gold"].reshape(s["gold"].shape + (1,) * (own.ndim - 1))  # [B] or [B, 1]
        tok = jnp.where(gold_t, s["tok"], own)
        if fb.kind == "soft":
            mix = embed_soft(parts, head.soft(prev, temperature))
            e = jnp.where(s["gold"][:, None], s["emb"], mix)
        else:
            e = embed_hard(parts, tok)
        return with_context(parts, e * s["m_e"]), tok

    def between(i, h, s):
        return h * s["m_b"][i - 1]

    def readout(h, s):
        logits = readout_logits(parts, h * s["m_o"])
        return (logits, h) if hidden else logits

    init = jnp.zeros((B, parts["w_out"].shape[-1]), jnp.float32)
    if hidden:
        init = (init, jnp.zeros(parts["mask_out"].shape[1:], jnp.float32))
    carries, outs, fed = unroll_feedback(cell, parts["layers"], carries, xs, init, feed=feed, readout=readout,
                                         between=between, unroll=unroll)
    logits = outs[0] if hidden else outs
    out = (jnp.swapaxes(logits, 0, 1), carries, jnp.swapaxes(fed, 0, 1), gold.T)
    return out + (jnp.swapaxes(outs[1], 0, 1),) if hidden else out


# ----------------------------------------------------------------------------- what forcing drives
class Forward(NamedTuple):
    """How the training modes drive one model: the language model (``lm_forward``) or an
    encoder-decoder's decoder (``seq2seq.model.Seq2Seq.forward``); the losses below are written once
    over it.

    unpack(batch) -> (x, y, mask, cond): gold inputs x [B, T], targets y [B, T] (or frames [B, T, K]),
        mask [B, T] float or None (every position counts), cond: what else the model reads (a source) or None
    teacher(params, carries, x, cond, key) -> (logits [B, T, N], carries): the fast path, train=True,
        ``key`` the dropout key
    feedback(params, carries, x, cond, key, eps, fb, *, train, hidden=False) -> ``feedback_unroll``'s
        (logits, carries, fed, gold[, hs])
    head: the output distribution (``heads.py``)
    """

    unpack: Callable
    teacher: Callable
    feedback: Callable
    head: Head


def _xy_mask(batch):
    """(x, y) or (x, y, mask) -> x, y, mask (None for streams)."""
    x, y, *mask = batch
    return x, y, (mask[0] if mask else None)


def lm_forward(model: LanguageModel) -> Forward:
    """The ``Forward`` of the recurrent model: batch = (x, y) or (x, y, mask), no condition."""

    def unpack(batch):
        return _xy_mask(batch) + (None,)

    def teacher(params, carries, x, cond, key):
        return model.apply({"params": params}, x, carries, train=True, rngs={"dropout": key})

    def feedback(params, carries, x, cond, key, eps, fb, *, train, hidden=False):
        return feedback_forward(model, params, carries, x, key, eps, fb, train=train, hidden=hidden)

    return Forward(unpack, teacher, feedback, model.head_fns)


# ----------------------------------------------------------------------------- losses
def masked_nll(nll, mask):
    """(mean NLL over the counted positions, their NLL sum, their count): nll [B, T]; mask [B, T] float
    (1 = a real target) or None (every position counts: token streams)."""
    if mask is None:
        return nll.mean(), nll.sum(), jnp.asarray(nll.size, jnp.float32)
    total, count = (nll * mask).sum(), mask.sum()
    return total / jnp.maximum(count, 1.0), total, count


def _metrics(total, count, eps, gold):
    T = gold.shape[1]
    return {"nll_sum": total, "count": count, "eps": jnp.asarray(eps, jnp.float32),
            "gold_fed": gold[:, 1:].sum().astype(jnp.float32),
            "fed_count": jnp.asarray(gold.shape[0] * (T - 1), jnp.float32)}


def head_loss(head: Head, logits, y, mask, eps, gold):
    """(mean NLL of y under ``head`` at the counted positions, the step's metrics as sums)."""
    loss, total, count = masked_nll(head.nll(logits, y), mask)
    return loss, _metrics(total, count, eps, gold)


def forward_teacher_loss(fwd: Forward, params, carries, x, cond, y, mask, key):
    """Teacher forcing through ``fwd.teacher`` -> (mean NLL, (carries, metrics))."""
    logits, carries = fwd.teacher(params, carries, x, cond, key)
    loss, metrics = head_loss(fwd.head, logits, y, mask, 1.0, jnp.ones(x.shape[:2], bool))
    return loss, (carries, metrics)


def forward_sampled_loss(fwd: Forward, params, carries, x, cond, y, mask, key, eps, fb: Feedback):
    """Mean NLL of y when the inputs are chosen by ``fwd.feedback`` with probability eps of gold.

    Hard feedback (sample / argmax) runs in two passes: the time-outer pass without gradient only
    decides the tokens fed, then the fast teacher-forcing path (hoisted projections, the
    recurrence's hand-written VJP) runs on those tokens with the same dropout key, hence the same
    masks. No gradient flows through a hard choice, so this is the same loss and the same gradients
    as differentiating the time-outer pass (tests/test_forcing.py), at about the cost of a
    teacher-forcing step plus one forward pass (docs/perf_notes.md). Soft feedback differentiates
    through the mix and keeps the one-pass path. The token pass runs at ``fb.unroll``
    (``train.sampling_unroll``): it carries no gradient, and its tokens are the same for any unroll."""
    if fb.kind == "soft":
        return forward_sampled_loss_one_pass(fwd, params, carries, x, cond, y, mask, key, eps, fb)
    _, _, fed, gold = fwd.feedback(jax.lax.stop_gradient(params), carries, x, cond, key, eps, fb, train=True)
    logits, carries = fwd.teacher(params, carries, jax.lax.stop_gradient(fed), cond, key)
    loss, metrics = head_loss(fwd.head, logits, y, mask, eps, gold)
    return loss, (carries, metrics)


def forward_sampled_loss_one_pass(fwd: Forward, params, carries, x, cond, y, mask, key, eps, fb: Feedback):
    """The same loss differentiated through the time-outer pass (the reference; soft feedback's path)."""
    logits, carries, _, gold = fwd.feedback(params, carries, x, cond, key, eps, fb, train=True)
    loss, metrics = head_loss(fwd.head, logits, y, mask, eps, gold)
    return loss, (carries, metrics)


def teacher_forcing_loss(model, params, carries, x, y, key, mask=None):
    """The fast path: the whole window through ``model.__call__`` (hoisted input projections).
    x, y [B, T] tokens (or [B, T, K] frames); mask [B, T] or None -> (mean NLL, (carries, metrics))."""
    return forward_teacher_loss(lm_forward(model), params, carries, x, None, y, mask, key)


def sampled_loss(model, params, carries, x, y, key, eps, fb: Feedback, mask=None):
    """``forward_sampled_loss`` of the language model (two passes for hard feedback, one for soft)."""
    return forward_sampled_loss(lm_forward(model), params, carries, x, None, y, mask, key, eps, fb)


def sampled_loss_one_pass(model, params, carries, x, y, key, eps, fb: Feedback, mask=None):
    """The language model's loss differentiated through the time-outer pass (the reference)."""
    return forward_sampled_loss_one_pass(lm_forward(model), params, carries, x, None, y, mask, key, eps, fb)


def make_loss_fn(model, cfg):
    """``loss_fn(params, carries, batch, key, step) -> (mean NLL, (carries, metrics))`` of the language
    model: batch = (x, y) or (x, y, mask): x, y [B, T] tokens or [B, T, K] frames, mask [B, T] (padded
    sequences; streams have none)."""
    return make_forward_loss_fn(lm_forward(model), cfg)


def make_forward_loss_fn(fwd: Forward, cfg):
    """``loss_fn(params, carries, batch, key, step)`` of ``cfg.train.mode`` for any ``Forward``."""
    mode = cfg.train.mode
    if mode == "teacher_forcing":
        def loss_fn(params, carries, batch, key, step):
            x, y, mask, cond = fwd.unpack(batch)
            return forward_teacher_loss(fwd, params, carries, x, cond, y, mask, key)

        return loss_fn
    if mode == "professor_forcing":
        raise RnnlabError("train.mode=professor_forcing needs a discriminator beside the model: build it with "
                          "rnnlab.seq2seq.professor.attach (train.prepare does)")
    if mode not in SAMPLED_MODES:
        raise RnnlabError(f"train.mode={mode!r} is not valid; allowed: teacher_forcing, {', '.join(SAMPLED_MODES)}, "
                          f"professor_forcing")
    eps_fn = eps_schedule(cfg)
    fb = feedback_options(cfg)
    warm = int(cfg.train.schedule.warmup_steps) > 0

    def loss_fn(params, carries, batch, key, step):
        x, y, mask, cond = fwd.unpack(batch)
        eps = eps_fn(step)

        def tf(ops):
            p, c = ops
            loss, (c, m) = forward_teacher_loss(fwd, p, c, x, cond, y, mask, key)
            return loss, (c, dict(m, eps=eps))

        def ss(ops):
            p, c = ops
            return forward_sampled_loss(fwd, p, c, x, cond, y, mask, key, eps, fb)

        if not warm:
            return ss((params, carries))
        # during the warm-up (eps = 1) the fast path gives the same loss and gradients; lax.cond runs
        # one branch (both under vmap). Without a warm-up only the sampled path is compiled.
        return jax.lax.cond(eps >= 1.0, tf, ss, (params, carries))

    return loss_fn


# ----------------------------------------------------------------------------- free running
def free_run(model: LanguageModel, params, prompt, length: int, key, *, temperature: float = 1.0,
             greedy: bool = False):
    """Generation through the same feedback path at eps = 0: prompt [S, P] tokens (or [S, P, K]
    frames; P >= 1) -> (generated [S, length] (or [S, length, K]), logits [S, length, N] each was drawn
    from). The carry is warmed on the prompt teacher-forced (fast path); dropout is off."""
    prompt = jnp.asarray(prompt, model.head_fns.target_dtype)
    return _free_run(model, params, prompt, int(length), key, jnp.float32(temperature), bool(greedy))


@partial(jax.jit, static_argnames=("model", "length", "greedy"))
def _free_run(model, params, prompt, length, key, temperature, greedy):
    S, P = prompt.shape[:2]
    carries = initial_carries(model.cell, model.num_layers, S, model.hidden_size, model.forget_bias)
    if P > 1:
        _, carries = model.apply({"params": params}, prompt[:, :-1], carries)
    blank = jnp.zeros((S, length) + prompt.shape[2:], prompt.dtype)
    x = jnp.concatenate([prompt[:, -1:], blank], axis=1)  # [S, length + 1(, K)]
    fb = Feedback(kind="argmax" if greedy else "sample", temperature=temperature)
    logits, _, fed, _ = feedback_forward(model, params, carries, x, key, jnp.float32(0.0), fb)
    return fed[:, 1:], logits[:, :length]
