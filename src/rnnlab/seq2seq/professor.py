"""Professor forcing (Lamb et al. 2016), ``train.mode=professor_forcing``, for the language model and
for the encoder-decoder's decoder alike (both drive the model through a ``forcing.Forward``).

Each step runs the model twice on the batch, from the same carries and with the same dropout masks:
teacher-forced (eps = 1) and free-running (eps = 0: fed its own samples, ``train.feedback`` at
``train.feedback_temperature``), and keeps the last layer's hidden states of both, b_tf and b_free
[B, T, H] (the "behaviour" sequences). A discriminator D (a bidirectional GRU over a behaviour
sequence, masked past each row's length, the two directions' outputs averaged over the real steps,
then an MLP; Lamb et al.'s architecture, official code anirudh9119/LM_GANS) gives the logit that a
sequence is teacher-forced. With sg = stop_gradient and BCE(z, 1) = softplus(-z):

    L_D   = mean_b BCE(D(sg b_tf), 1) + mean_b BCE(D(sg b_free), 0)             (the discriminator's)
    L_adv = mean_b BCE(sg-D(b_free), 1)  [+ mean_b BCE(sg-D(b_tf), 0) with train.professor.reverse]
    loss  = NLL_tf + weight * g_adv * L_adv + g_D * L_D

where sg-D is D with its parameters under stop_gradient, acc = D's accuracy on this batch (2B
sequences, logit > 0 = "teacher-forced"), g_D = 1[acc < train_below (0.99)] and g_adv =
1[acc > adversarial_above (0.75)] (Lamb's gating; traced 0/1 factors). So every term reaches only
its own parameters: L_D only D's, NLL and L_adv only the model's.

Two optimizers in one jitted step: the discriminator's parameters live under ``params
["discriminator"]`` beside the model's, ``optax.multi_transform`` gives them Adam(train.professor.lr)
and the rest the run's optimizer (clipping included); while g_D = 0 the discriminator's gradient is
exactly zero and ``skip_zero_updates`` leaves its parameters and Adam state as they were (Adam would
otherwise still move them by its momentum). The whole state is one TrainState, so checkpoints and
resume are those of every other run (bit for bit, tested). Metrics (sums): ``disc_loss_sum``,
``disc_right`` / ``disc_count`` (accuracy), ``disc_trained`` and ``adv_on`` (steps gated on),
``adv_sum``; the train NLL is the teacher-forced one.

Shapes: B batch, T time, H the model's hidden size, D the discriminator's.
"""
from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from ..cells import get_cell
from ..forcing import Feedback, Forward, feedback_options, head_loss, lm_forward
from ..model import model_carries
from ..optim import _global_norm
from ..unroll import masked_unroll

DISC = "discriminator"  # the top-level key of the discriminator's parameters


class Discriminator(nn.Module):
    """Behaviour sequence hs [B, T, H], mask [B, T] -> logit [B] that it was teacher-forced."""

    in_size: int  # H of the model whose hidden states it reads
    hidden_size: int = 64  # D: per direction, and the MLP's width

    def setup(self):
        gru = get_cell("gru")
        init = partial(gru.init, in_dim=self.in_size, hidden=self.hidden_size)  # PyTorch's U(+-1/sqrt(D))
        self.forward_gru = self.param("forward_gru", init)
        self.backward_gru = self.param("backward_gru", init)
        self.mlp_hidden = nn.Dense(self.hidden_size)
        self.mlp_out = nn.Dense(1)

    def __call__(self, hs, mask):
        gru = get_cell("gru")
        xs, m = jnp.swapaxes(hs, 0, 1), mask.T  # [T, B, H], [T, B]
        c0 = (gru.initial_carry((hs.shape[0],), self.hidden_size),)
        _, fwd = masked_unroll(gru, [self.forward_gru], c0, xs, m)
        _, bwd = masked_unroll(gru, [self.backward_gru], c0, xs[::-1], m[::-1])  # each row from its last step
        feats = jnp.concatenate([fwd, bwd[::-1]], axis=-1)  # [T, B, 2D], zero on padding
        pooled = feats.sum(0) / jnp.maximum(m.sum(0), 1.0)[:, None]  # mean over the real steps [B, 2D]
        return self.mlp_out(nn.relu(self.mlp_hidden(pooled)))[:, 0]


class Settings(NamedTuple):
    """``train.professor`` and the free-running pass's feedback."""

    weight: float = 1.0
    reverse: bool = False
    train_below: float = 0.99
    adversarial_above: float = 0.75
    feedback: Feedback = Feedback()


def settings(cfg) -> Settings:
    pf = cfg.train.professor
    return Settings(float(pf.weight), bool(pf.reverse), float(pf.train_below), float(pf.adversarial_above),
                    feedback_options(cfg))


def generator_params(params: dict) -> dict:
    """The model's parameters: ``params`` without the discriminator's."""
    return {k: v for k, v in params.items() if k != DISC}


def _bce_one(z):
    """-log sigmoid(z): the binary cross-entropy of logit z against label 1 (label 0: _bce_one(-z))."""
    return jax.nn.softplus(-z)


def professor_loss_fn(fwd: Forward, disc: Discriminator, s: Settings):
    """``loss_fn(params, carries, batch, key, step)`` of the module docstring."""

    def loss_fn(params, carries, batch, key, step):
        gen, dp = generator_params(params), params[DISC]
        x, y, mask, cond = fwd.unpack(batch)
        m = jnp.ones(x.shape[:2], jnp.float32) if mask is None else mask
        logits, carries_out, _, _, b_tf = fwd.feedback(gen, carries, x, cond, key, jnp.float32(1.0), s.feedback,
                                                       train=True, hidden=True)
        b_free = fwd.feedback(gen, carries, x, cond, key, jnp.float32(0.0), s.feedback, train=True, hidden=True)[4]
        nll, metrics = head_loss(fwd.head, logits, y, mask, 1.0, jnp.ones(x.shape[:2], bool))
        rows = (m.sum(1) > 0).astype(jnp.float32)  # rows with a target (a last batch's filler rows have none)
        n = jnp.maximum(rows.sum(), 1.0)
        mean = lambda v: (v * rows).sum() / n  # noqa: E731
        D = lambda p, b: disc.apply({"params": p}, b, m)  # noqa: E731
        sg = jax.lax.stop_gradient
        d_tf, d_free = D(dp, sg(b_tf)), D(dp, sg(b_free))
        disc_loss = mean(_bce_one(d_tf)) + mean(_bce_one(-d_free))
        right = ((d_tf > 0) * rows).sum() + ((d_free <= 0) * rows).sum()
        acc = sg(right / (2.0 * n))
        g_d = (acc < s.train_below).astype(jnp.float32)
        g_adv = (acc > s.adversarial_above).astype(jnp.float32)
        adv = mean(_bce_one(D(sg(dp), b_free)))
        if s.reverse:
            adv = adv + mean(_bce_one(-D(sg(dp), b_tf)))
        loss = nll + s.weight * g_adv * adv + g_d * disc_loss
        metrics.update(disc_loss_sum=disc_loss, disc_right=right, disc_count=2.0 * rows.sum(), disc_trained=g_d,
                       adv_on=g_adv, adv_sum=adv)
        return loss, (carries_out, metrics)

    return loss_fn


def skip_zero_updates(inner: optax.GradientTransformation) -> optax.GradientTransformation:
    """``inner``, except that a step whose gradients are all exactly zero (the discriminator's gate is
    off) changes neither the parameters nor the state. Hand-written: optax has no such wrapper
    (``apply_if_finite`` skips non-finite steps, ``conditionally_mask`` decides by step count)."""

    def update(grads, state, params=None):
        active = _global_norm(grads) > 0
        updates, new_state = inner.update(grads, state, params)
        updates = jax.tree_util.tree_map(lambda u: jnp.where(active, u, jnp.zeros_like(u)), updates)
        new_state = jax.tree_util.tree_map(lambda a, b: jnp.where(active, a, b), new_state, state)
        return updates, new_state

    return optax.GradientTransformation(inner.init, update)


@dataclasses.dataclass(frozen=True)
class ProfessorForcing:
    """A model with a discriminator beside it: what ``train.py`` trains for mode professor_forcing.
    Its params are the model's plus ``params["discriminator"]``; ``apply`` and every other attribute
    are the model's (``apply`` drops the discriminator's parameters), so evaluation, decoding and
    generation see the model alone. Hashable: a jit static argument like the models."""

    generator: Any  # model.LanguageModel or seq2seq.model.Seq2Seq
    discriminator: Discriminator
    settings: Settings

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.generator, name)

    def apply(self, variables, *args, **kwargs):
        return self.generator.apply({"params": generator_params(variables["params"])}, *args, **kwargs)

    def forward(self) -> Forward:
        own = getattr(self.generator, "forward", None)
        return own() if own is not None else lm_forward(self.generator)

    def init_params(self, key, cfg) -> dict:
        g = self.generator
        if hasattr(g, "init_params"):
            gen = g.init_params(key, cfg)
        else:  # the recurrent model: its parameters do not depend on the batch shape
            inputs = jnp.zeros((1, 1, g.num_features), jnp.float32) if g.frames else jnp.zeros((1, 1), jnp.int32)
            gen = g.init(key, inputs, model_carries(cfg, 1))["params"]
        hs, mask = jnp.zeros((1, 1, g.hidden_size), jnp.float32), jnp.ones((1, 1), jnp.float32)
        return {**gen, DISC: self.discriminator.init(jax.random.fold_in(key, 1), hs, mask)["params"]}

    def make_loss_fn(self, cfg):
        return professor_loss_fn(self.forward(), self.discriminator, self.settings)


def attach(model, tx: optax.GradientTransformation, cfg):
    """(model, the run's optimizer) -> (ProfessorForcing, one optimizer for both): the run's optimizer
    on the model's parameters, ``skip_zero_updates(adam(train.professor.lr))`` on the discriminator's."""
    pf = cfg.train.professor
    wrapped = ProfessorForcing(model, Discriminator(in_size=int(model.hidden_size), hidden_size=int(pf.hidden_size)),
                               settings(cfg))
    labels = lambda params: {k: (DISC if k == DISC else "model") for k in params}  # noqa: E731
    both = optax.multi_transform({"model": tx, DISC: skip_zero_updates(optax.adam(float(pf.lr)))}, labels)
    return wrapped, both


def disc_log(a: dict) -> dict:
    """The discriminator's metrics.jsonl items from the summed train metrics ``a`` of a log window."""
    n = a["steps"] or 1.0
    return {"train/disc_loss": a["disc_loss_sum"] / n, "train/disc_acc": a["disc_right"] / a["disc_count"],
            "train/disc_trained": a["disc_trained"] / n, "train/adv_on": a["adv_on"] / n,
            "train/adv_loss": a["adv_sum"] / n}
