"""heads.py: the inverse-CDF categorical sampler (train.sampler=inverse_cdf) draws softmax(out / T)
for any N (blocks of ~sqrt(N), padding), never a token of probability 0, in the shape of out's
leading axes; the Gumbel sampler (the default) is jax.random.categorical itself."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnnlab import RnnlabError
from rnnlab.heads import BERNOULLI, CATEGORICAL, get_head, inverse_cdf_categorical, with_sampler

DRAWS = 40000


def draw_frequencies(logits, temperature=1.0, n=DRAWS):
    keys = jax.random.split(jax.random.key(0), n)
    toks = jax.jit(jax.vmap(lambda k: inverse_cdf_categorical(k, logits, temperature)))(keys)
    return np.bincount(np.asarray(toks).ravel(), minlength=logits.shape[-1]) / n


@pytest.mark.parametrize("N", [1, 2, 3, 11, 37, 100, 1000])
def test_frequencies_match_the_softmax(N):
    logits = jax.random.normal(jax.random.key(N), (N,)) * 2.0
    for temperature in (1.0, 0.5):
        p = np.asarray(jax.nn.softmax(logits / temperature))
        freq = draw_frequencies(logits, temperature)
        assert np.abs(freq - p).max() < 4.5 * math.sqrt(0.25 / DRAWS) + 1e-9


def test_zero_probability_tokens_are_never_drawn():
    """Tokens whose probability underflows to 0 (first, last, whole blocks, block edges) never come out."""
    N = 50  # blocks of 8: 7 blocks, the last one padded
    logits = np.full(N, -1e30, np.float32)
    alive = [8, 9, 15, 31, 49]  # a block start, its neighbour, a block end, another, the very last token
    logits[alive] = [0.0, 1.0, -1.0, 0.5, 2.0]
    freq = draw_frequencies(jnp.asarray(logits))
    assert set(np.flatnonzero(freq)) == set(alive)
    p = np.asarray(jax.nn.softmax(jnp.asarray(logits)))
    assert np.abs(freq - p).max() < 4.5 * math.sqrt(0.25 / DRAWS)


def test_leading_axes_and_rows_are_independent():
    """out [2, 3, N] -> tokens [2, 3] int32; each row follows its own logits (one-hot-like rows)."""
    N = 20
    target = np.arange(6).reshape(2, 3) * 3
    logits = jnp.asarray(np.where(np.arange(N) == target[..., None], 0.0, -1e30), jnp.float32)
    tok = inverse_cdf_categorical(jax.random.key(1), logits, 1.0)
    assert tok.shape == (2, 3) and tok.dtype == jnp.int32
    np.testing.assert_array_equal(np.asarray(tok), target)


def test_sampler_choice():
    assert get_head("categorical").sample is CATEGORICAL.sample  # the default: jax.random.categorical
    assert with_sampler(get_head("categorical"), "inverse_cdf").sample is inverse_cdf_categorical
    assert with_sampler(BERNOULLI, "inverse_cdf") is BERNOULLI  # one uniform per unit either way
    with pytest.raises(RnnlabError) as e:
        with_sampler(get_head("categorical"), "multinomial")
    assert "train.sampler" in str(e.value) and "inverse_cdf" in str(e.value)
