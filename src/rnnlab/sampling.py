"""Generation: greedy / temperature / top-k / top-p, batched, one ``lax.scan`` over the new tokens.

``generate(model, params, prompt, length, key, ...)``: the carry is warmed on the prompt
(tokens [B, P]), then each step draws a token from the last logits and feeds it back. The per-step
key is ``fold_in(key, t)`` (convention 5), so the same key gives the same text.
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from .model import initial_carries


def filter_logits(logits, *, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0):
    """logits [..., V] -> logits scaled by 1/temperature with everything outside the top-k and the
    top-p nucleus set to -inf. top_k=0 and top_p=1.0 keep everything."""
    logits = logits.astype(jnp.float32) / jnp.maximum(temperature, 1e-6)
    V = logits.shape[-1]
    if top_k and top_k < V:
        kth = jax.lax.top_k(logits, top_k)[0][..., -1:]
        logits = jnp.where(logits < kth, -jnp.inf, logits)
    if top_p < 1.0:
        sorted_logits = jnp.sort(logits, axis=-1)[..., ::-1]
        probs = jax.nn.softmax(sorted_logits, axis=-1)
        cum = jnp.cumsum(probs, axis=-1)
        # keep the smallest prefix whose mass reaches top_p (the first token is always kept)
        keep = (cum - probs) < top_p
        cutoff = jnp.min(jnp.where(keep, sorted_logits, jnp.inf), axis=-1, keepdims=True)
        logits = jnp.where(logits < cutoff, -jnp.inf, logits)
    return logits


def next_token(logits, key, *, greedy: bool = False, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0):
    """logits [B, V] -> tokens [B] int32 (argmax when greedy or temperature == 0)."""
    if greedy:
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)
    filtered = filter_logits(logits, temperature=temperature, top_k=top_k, top_p=top_p)
    return jax.random.categorical(key, filtered, axis=-1).astype(jnp.int32)


def generate(model, params, prompt, length: int, key, *, temperature: float = 1.0, top_k: int = 0,
             top_p: float = 1.0, greedy: bool = False, return_logits: bool = False):
    """prompt [B, P] int32 (P >= 1) -> generated tokens [B, length] (and the logits each token was
    drawn from, [B, length, V]). Temperature 0 means greedy (argmax).

    The model is run over the whole prompt to warm the carry (teacher-forced), then ``length``
    tokens are drawn one by one inside a single lax.scan (one compiled program per shape).
    """
    greedy = bool(greedy or temperature == 0)
    return _generate(model, params, jnp.asarray(prompt, jnp.int32), length, key,
                     jnp.float32(1.0 if greedy else temperature), int(top_k), float(top_p), greedy,
                     return_logits)


@partial(jax.jit, static_argnames=("model", "length", "top_k", "top_p", "greedy", "return_logits"))
def _generate(model, params, prompt, length, key, temperature, top_k, top_p, greedy, return_logits):
    B = prompt.shape[0]
    carries = initial_carries(model.cell, model.num_layers, B, model.hidden_size, model.forget_bias)
    logits, carries = model.apply({"params": params}, prompt, carries)
    last = logits[:, -1]

    def body(state, t):
        carries, last = state
        tok = next_token(last, jax.random.fold_in(key, t), greedy=greedy, temperature=temperature,
                         top_k=top_k, top_p=top_p)
        lg, carries = model.apply({"params": params}, tok[:, None], carries)
        return (carries, lg[:, 0]), (tok, last)

    _, (toks, lgs) = jax.lax.scan(body, (carries, last), jnp.arange(length))
    toks = jnp.swapaxes(toks, 0, 1)
    if return_logits:
        return toks, jnp.swapaxes(lgs, 0, 1)
    return toks
