"""Generation: greedy / temperature / top-k / top-p, batched, one ``lax.scan`` over the new tokens.

``generate(model, params, prompt, length, key, ...)``: the carry is warmed on the prompt
(tokens [B, P], teacher-forced, one scan), then each step draws a token from the last logits and
feeds it back, inside a single ``lax.scan`` (no Python loop per token, one compiled program per
shape). Randomness (convention 5): row b of the batch has its own key ``fold_in(key, b)`` (or
``keys[b]`` when a batch of keys [B] is given) and draws step t with ``fold_in(row_key, t)``. So the
same key gives the same text, and row b of a batch is exactly what a batch of one with ``keys[b]``
gives: sample i of ``--num_samples=N`` does not depend on N.

``sample_text(model, params, vocab, prompt_text, ...)`` is the text-in, text-out layer the CLI
uses: it encodes the prompt (unknown tokens: ``<unk>`` with a warning at word level, an error
naming them at char level, or dropped), generates and decodes.

``translate_text(model, params, src_vocab, tgt_vocab, source, beam_size=...)`` is the same layer for
an encoder-decoder (``--source``): unknown source tokens become ``<unk>`` with a warning, then greedy
or beam decoding (``seq2seq/decode.py``) up to <eos> or a length limit.

Filtering order (``filter_logits``): divide by the temperature, keep the top-k, then keep the
top-p nucleus (the smallest set of most likely tokens whose probability reaches ``top_p``).
Temperature 0 (or ``greedy=True``) is the argmax of the raw logits.
"""
from __future__ import annotations

import math
import numbers
import warnings
from functools import partial
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from . import RnnlabError
from .data.pairs import detokenize, preprocess_nmt
from .model import initial_carries
from .seq2seq.decode import check_beam, decode
from .seq2seq.runs import load_pair_run, run_kind


def check_sampling_args(*, temperature=1.0, top_k=0, top_p=1.0, length=1) -> None:
    """One-line RnnlabError for a bad temperature (>= 0), top_k (>= 0), top_p ((0, 1]) or length (>= 0)."""
    if not (isinstance(temperature, numbers.Real) and math.isfinite(temperature) and temperature >= 0):
        raise RnnlabError(f"temperature={temperature!r} is not valid; it must be a number >= 0 (0 = greedy)")
    if isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral) or top_k < 0:
        raise RnnlabError(f"top_k={top_k!r} is not valid; it must be an integer >= 0 (0 = no top-k filter)")
    if not (isinstance(top_p, numbers.Real) and 0.0 < top_p <= 1.0):
        raise RnnlabError(f"top_p={top_p!r} is not valid; it must be in (0, 1] (1 = no nucleus filter)")
    if isinstance(length, bool) or not isinstance(length, numbers.Integral) or length < 0:
        raise RnnlabError(f"length={length!r} is not valid; it must be an integer >= 0")


def filter_logits(logits, *, temperature=1.0, top_k: int = 0, top_p: float = 1.0):
    """logits [..., V] -> logits / temperature with everything outside the top-k and outside the
    top-p nucleus set to -inf. top_k=0 and top_p=1.0 keep everything; ties at a cut are kept."""
    logits = logits.astype(jnp.float32) / jnp.maximum(jnp.float32(temperature), 1e-6)
    V = logits.shape[-1]
    if top_k and top_k < V:
        kth = jax.lax.top_k(logits, top_k)[0][..., -1:]
        logits = jnp.where(logits < kth, -jnp.inf, logits)
    if top_p < 1.0:
        sorted_logits = jnp.sort(logits, axis=-1)[..., ::-1]
        probs = jax.nn.softmax(sorted_logits, axis=-1)
        cum = jnp.cumsum(probs, axis=-1)
        # keep token k (in descending order) while the mass before it is below top_p: the smallest
        # prefix whose mass reaches top_p (the most likely token is always kept)
        keep = (cum - probs) < top_p
        cutoff = jnp.min(jnp.where(keep, sorted_logits, jnp.inf), axis=-1, keepdims=True)
        logits = jnp.where(logits < cutoff, -jnp.inf, logits)
    return logits


def next_token(logits, key, *, greedy: bool = False, temperature=1.0, top_k: int = 0, top_p: float = 1.0):
    """logits [V] -> token (int32 scalar), or logits [B, V] with keys [B] -> tokens [B].
    Argmax of the raw logits when ``greedy``; else one categorical draw per row from the filtered logits."""
    if greedy:
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)
    filtered = filter_logits(logits, temperature=temperature, top_k=top_k, top_p=top_p)
    if logits.ndim == 1:
        return jax.random.categorical(key, filtered).astype(jnp.int32)
    return jax.vmap(jax.random.categorical)(key, filtered).astype(jnp.int32)


def _is_single_key(key) -> bool:
    key = jnp.asarray(key) if not isinstance(key, jax.Array) else key
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return key.ndim == 0
    return key.ndim == 1  # raw uint32 key data: [2] is one key, [B, 2] a batch


def row_keys(key, batch_size: int):
    """One key per row: ``fold_in(key, b)`` for a single key; a batch of keys [B] is returned as is."""
    if _is_single_key(key):
        return jax.vmap(lambda b: jax.random.fold_in(key, b))(jnp.arange(batch_size))
    if key.shape[0] != batch_size:
        raise RnnlabError(f"got {key.shape[0]} keys for a prompt batch of {batch_size}; give one key or one per row")
    return key


def generate(model, params, prompt, length: int, key, *, temperature: float = 1.0, top_k: int = 0,
             top_p: float = 1.0, greedy: bool = False, return_logits: bool = False):
    """prompt [B, P] int (P >= 1) -> generated tokens [B, length] int32 (and, with ``return_logits``,
    the raw logits each token was drawn from, [B, length, V]). Temperature 0 means greedy (argmax).

    ``key``: one PRNG key (row b uses ``fold_in(key, b)``) or one key per row [B]. The model is run
    over the whole prompt to warm the carry (teacher-forced), then ``length`` tokens are drawn one
    by one inside a single lax.scan. Dropout is off.
    """
    check_sampling_args(temperature=temperature, top_k=top_k, top_p=top_p, length=length)
    prompt = np.asarray(prompt) if not isinstance(prompt, jax.Array) else prompt
    if prompt.ndim != 2 or prompt.shape[1] < 1 or prompt.shape[0] < 1:
        raise RnnlabError(f"prompt has shape {tuple(prompt.shape)}; it must be [B, P] token ids with B >= 1, P >= 1")
    if not jnp.issubdtype(prompt.dtype, jnp.integer):
        raise RnnlabError(f"prompt has dtype {prompt.dtype}; it must hold integer token ids")
    if isinstance(prompt, np.ndarray) and (prompt.min() < 0 or prompt.max() >= model.vocab_size):
        raise RnnlabError(f"prompt ids must be in [0, {model.vocab_size}); got {int(prompt.min())}..{int(prompt.max())}")
    greedy = bool(greedy or temperature == 0)
    keys = row_keys(key, prompt.shape[0])
    return _generate(model, params, jnp.asarray(prompt, jnp.int32), int(length), keys,
                     jnp.float32(1.0 if greedy else temperature), int(top_k), float(top_p), greedy,
                     bool(return_logits))


@partial(jax.jit, static_argnames=("model", "length", "top_k", "top_p", "greedy", "return_logits"))
def _generate(model, params, prompt, length, keys, temperature, top_k, top_p, greedy, return_logits):
    B = prompt.shape[0]
    carries = initial_carries(model.cell, model.num_layers, B, model.hidden_size, model.forget_bias)
    logits, carries = model.apply({"params": params}, prompt, carries)  # warm the carry on the prompt
    last = logits[:, -1]  # [B, V]: the distribution of the first new token

    def body(state, t):
        carries, last = state
        step_keys = jax.vmap(lambda k: jax.random.fold_in(k, t))(keys)
        tok = next_token(last, step_keys, greedy=greedy, temperature=temperature, top_k=top_k, top_p=top_p)
        lg, carries = model.apply({"params": params}, tok[:, None], carries)
        return (carries, lg[:, 0]), (tok, last)

    _, (toks, lgs) = jax.lax.scan(body, (carries, last), jnp.arange(length))
    toks = jnp.swapaxes(toks, 0, 1)  # [T, B] -> [B, T]
    if return_logits:
        return toks, jnp.swapaxes(lgs, 0, 1)
    return toks


# ---------------------------------------------------------------------------------------- text
START_TOKENS = ("<eos>", "\n", " ")  # what an empty prompt starts from (the first one the vocab has)


def encode_prompt(vocab, text: str, *, drop_unknown: bool = False) -> tuple[np.ndarray, str | None]:
    """Prompt text -> (ids [P] int32, warning or None).

    Tokens not in the vocab: dropped with ``drop_unknown``; else at word level mapped to ``<unk>``
    with a warning (an error naming them if the vocab has no ``<unk>``); at char level an error
    naming the characters. An empty prompt starts from the vocab's ``<eos>``, newline or space.
    """
    missing = vocab.missing(text)
    note = None
    if missing and drop_unknown:
        ids = vocab.encode(text, unknown="drop")
        note = f"dropped {vocab.level}s not in the vocab from the prompt: {', '.join(map(repr, missing[:10]))}"
    elif missing and vocab.level == "word" and vocab.unk is not None:
        ids = vocab.encode(text, unknown="unk")
        note = f"prompt words not in the vocab map to {vocab.unk}: {', '.join(map(repr, missing[:10]))}"
    elif missing:
        shown = ", ".join(map(repr, missing[:10]))
        extra = "" if vocab.level == "char" else " and the vocab has no <unk>"
        raise RnnlabError(f"prompt has {vocab.level}s not in the vocab: {shown}{extra}; remove them or pass "
                          f"--drop_unknown (the vocab has {vocab.size} tokens)")
    else:
        ids = vocab.encode(text, unknown="error")
    if ids.size == 0:
        start = next((t for t in START_TOKENS if t in vocab.stoi), None)
        if start is None:
            raise RnnlabError("the prompt is empty and the vocab has no <eos>, newline or space to start from; "
                              "give a --prompt of vocab tokens")
        ids = np.array([vocab.stoi[start]], np.int32)
    return np.asarray(ids, np.int32), note


def sample_text(model, params, vocab, prompt: str = "", *, length: int = 200, seed: int = 0,
                num_samples: int = 1, temperature: float = 0.8, top_k: int = 0, top_p: float = 1.0,
                greedy: bool = False, drop_unknown: bool = False,
                warn: Callable[[str], None] | None = None) -> list[str]:
    """Text in, ``num_samples`` continuations out (the generated text only, without the prompt).

    Key: ``jax.random.key(seed)``; sample i uses ``fold_in(key, i)``, so the same seed gives the
    same texts and sample i does not depend on ``num_samples``. ``warn`` receives the one-line
    warning about unknown prompt tokens (default: ``warnings.warn``).
    """
    if isinstance(num_samples, bool) or not isinstance(num_samples, numbers.Integral) or num_samples < 1:
        raise RnnlabError(f"num_samples={num_samples!r} is not valid; it must be an integer >= 1")
    ids, note = encode_prompt(vocab, prompt, drop_unknown=drop_unknown)
    if note:
        (warn or (lambda m: warnings.warn(m, stacklevel=3)))(note)
    batch = np.tile(ids[None, :], (num_samples, 1))
    toks = generate(model, params, batch, length, jax.random.key(seed), temperature=temperature,
                    top_k=top_k, top_p=top_p, greedy=greedy)
    return [vocab.decode(row) for row in np.asarray(toks)]


# ---------------------------------------------------------------------------------------- seq2seq
def encode_source(vocab, text: str) -> tuple[np.ndarray, str | None]:
    """A seq2seq source -> (ids [S] int32, warning or None). Word-level text gets the data's own
    preprocessing first (``data.pairs.preprocess_nmt``: lowercase, ``, . ! ?`` split off); tokens not
    in the source vocab map to ``<unk>`` (every pair vocab has it) with a warning naming them, at both
    levels; an empty source is an error (the encoder needs a token)."""
    text = preprocess_nmt(text).strip() if vocab.level == "word" else text
    tokens = vocab.tokenize(text)
    if not tokens:
        raise RnnlabError("--source is empty; give the source sentence (or symbols) to translate")
    missing = list(dict.fromkeys(t for t in tokens if t not in vocab.stoi))
    note = None
    if missing:
        note = (f"source {vocab.level}s not in the vocab map to {vocab.unk}: "
                f"{', '.join(map(repr, missing[:10]))}")
    return vocab.encode_tokens(tokens, unknown="unk"), note


def translate_text(model, params, src_vocab, tgt_vocab, source: str, *, beam_size: int = 1, max_len: int = 200,
                   alpha: float = 1.0, warn: Callable[[str], None] | None = None) -> str:
    """Text in, decoded target text out: greedy (``beam_size`` 1) or beam search, at most ``max_len``
    tokens (``seq2seq/decode.py``); the target is detokenised (``data.pairs.detokenize``)."""
    check_beam(beam_size)
    if isinstance(max_len, bool) or not isinstance(max_len, numbers.Integral) or max_len < 1:
        raise RnnlabError(f"length={max_len!r} is not valid; it must be an integer >= 1 (the most target tokens)")
    ids, note = encode_source(src_vocab, source)
    if note:
        (warn or (lambda m: warnings.warn(m, stacklevel=3)))(note)
    toks = decode(model, params, jnp.asarray(ids[None]), jnp.asarray([ids.size], jnp.int32), int(max_len) + 1,
                  beam_size, alpha)
    return detokenize(tgt_vocab, np.asarray(toks)[0])


def translate_run(workdir, source: str | None, *, checkpoint: str = "best", beam_size: int = 1, max_len: int = 200,
                  warn: Callable[[str], None] | None = None) -> str:
    """``translate_text`` with the seq2seq run in ``workdir`` (``seq2seq.runs.load_pair_run``): what
    ``experiments.sample --source`` prints. One-line errors for a run that is not seq2seq or a missing source."""
    kind = run_kind(workdir)
    if kind != "pairs":
        raise RnnlabError(f"--source is for sequence-to-sequence runs (data of kind pairs); {workdir} is a {kind} "
                          f"run: use --prompt")
    if source is None:
        raise RnnlabError(f"{workdir} is a sequence-to-sequence run: give --source=TEXT to decode")
    check_beam(beam_size)
    run = load_pair_run(workdir, checkpoint)
    return translate_text(run.model, run.params, run.src_vocab, run.tgt_vocab, source, beam_size=beam_size,
                          max_len=max_len, alpha=float(run.cfg.eval.get("length_alpha", 1.0)), warn=warn)
