"""A random recurrent LM as the data source (``data.name=oracle``).

The oracle (SeqGAN, Yu et al. 2017; Texygen, Zhu et al. 2018) is a fixed random ``LanguageModel``
(one layer of ``data.oracle.cell``, default LSTM): every weight and bias is drawn from
N(0, init_std^2) with numpy's seeded generator (``data.seed``), so its distribution is known
exactly. Each split is one stream it generates from a zero carry and a start input (token 0, not
part of the stream), drawn at temperature 1 through ``forcing.free_run`` (the same time-outer scan
scheduled sampling uses). ``corpus.meta`` holds:

* ``oracle_entropy``: its entropy rate in nats per token, estimated on a separate sample of
  ``data.oracle.entropy_tokens`` tokens as the mean conditional entropy
  ``H(p(. | x_<t)) = -sum_v p log p`` along the sample (the Rao-Blackwellised form of the mean
  -log p(x_t | x_<t): same expectation, less variance), with ``oracle_entropy_stderr`` (batch means
  over 50 blocks);
* ``oracle_test_nll``: the oracle's exact NLL of the test split (targets ids[1:]), the best a model
  can score on that split; ``optimal_ppl = exp(oracle_entropy)`` as for the Reber source.
"""
from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import RnnlabError
from ..forcing import free_run
from ..model import LanguageModel, initial_carries
from .corpus import Corpus
from .vocab import Vocab

ORACLE_DEFAULTS = {"vocab_size": 32, "cell": "lstm", "hidden_size": 32, "embed_size": 32, "init_std": 1.0,
                   "entropy_tokens": 100_000}
SIZE_DEFAULTS = {"num_train": 200_000, "num_valid": 20_000, "num_test": 20_000}


# ----------------------------------------------------------------------------- the oracle
class Oracle(NamedTuple):
    model: LanguageModel
    params: dict


def _get(cfg, name, default):
    v = getattr(cfg, name, None) if not isinstance(cfg, dict) else cfg.get(name)
    return default if v is None else v


def oracle_spec(data_cfg) -> tuple:
    """The hashable description of the oracle and its splits: (V, cell, H, E, std, seed, entropy
    tokens, train, valid, test)."""
    o = _get(data_cfg, "oracle", {}) or {}
    spec = {k: _get(o, k, d) for k, d in ORACLE_DEFAULTS.items()}
    sizes = {k: int(_get(data_cfg, k, d)) for k, d in SIZE_DEFAULTS.items()}
    for k, v in {**sizes, "vocab_size": spec["vocab_size"], "entropy_tokens": spec["entropy_tokens"]}.items():
        if int(v) < 2:
            raise RnnlabError(f"data oracle field {k}={v!r} is not valid; it must be an integer >= 2")
    return (int(spec["vocab_size"]), str(spec["cell"]), int(spec["hidden_size"]), int(spec["embed_size"]),
            float(spec["init_std"]), int(_get(data_cfg, "seed", 0)), int(spec["entropy_tokens"]),
            sizes["num_train"], sizes["num_valid"], sizes["num_test"])


@functools.lru_cache(maxsize=8)
def _make_oracle(V, cell, H, E, std, seed) -> Oracle:
    model = LanguageModel(vocab_size=V, cell=cell, hidden_size=H, num_layers=1, embed_size=E, forget_bias=None)
    carries = initial_carries(cell, 1, 1, H, None)
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 1), jnp.int32), carries))["params"]
    leaves, tree = jax.tree_util.tree_flatten(shapes)
    rng = np.random.default_rng([seed, 0x0AC1E])
    params = [jnp.asarray(rng.normal(0.0, std, leaf.shape), jnp.float32) for leaf in leaves]
    return Oracle(model, jax.tree_util.tree_unflatten(tree, params))


def get_oracle(data_cfg) -> Oracle:
    """The oracle that ``data_cfg`` (the data section) names: same fields, same oracle."""
    V, cell, H, E, std, seed = oracle_spec(data_cfg)[:6]
    return _make_oracle(V, cell, H, E, std, seed)


def entropy(logits):
    """logits [..., V] -> entropy of softmax in nats [...] (float32)."""
    logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    return -(jnp.exp(logp) * logp).sum(-1)


def token_logp(logits, tokens):
    logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    return jnp.take_along_axis(logp, tokens[..., None], axis=-1)[..., 0]


@functools.lru_cache(maxsize=4)
def _oracle_streams(spec: tuple):
    V, cell, H, E, std, seed, n_ent, n_train, n_valid, n_test = spec
    oracle = _make_oracle(V, cell, H, E, std, seed)
    sizes = (n_train, n_valid, n_test, n_ent)
    # four independent streams (train, valid, test, entropy sample) as the rows of one batch: one scan
    toks, logits = free_run(oracle.model, oracle.params, np.zeros((4, 1), np.int32), max(sizes),
                            jax.random.key(seed))
    toks = np.asarray(toks)
    streams = [toks[r, :n].astype(np.int32) for r, n in enumerate(sizes)]
    ent = np.asarray(entropy(logits[3, 1:n_ent]), np.float64)  # H(x_t | x_<t), t >= 1
    blocks = np.array_split(ent, 50)
    means = np.array([b.mean() for b in blocks])
    test_nll = -np.asarray(token_logp(logits[2, 1:n_test], jnp.asarray(streams[2][1:])), np.float64)
    h = float(ent.mean())
    meta = {"oracle_entropy": h, "oracle_entropy_stderr": float(means.std(ddof=1) / math.sqrt(len(means))),
            "oracle_test_nll": float(test_nll.mean()), "entropy_rate_nats": h,
            "entropy_rate_bits": h / math.log(2.0), "optimal_ppl": math.exp(h), "uniform_nll": math.log(V),
            "oracle": {"vocab_size": V, "cell": cell, "hidden_size": H, "embed_size": E, "init_std": std,
                       "seed": seed, "entropy_tokens": n_ent}}
    return streams[:3], meta


def load_oracle_corpus(data_cfg, level: str = "") -> Corpus:
    """The ``oracle`` corpus: three streams of token ids ``0..V-1`` (vocab ``t0 .. t{V-1}``, word level)."""
    spec = oracle_spec(data_cfg)
    (train, valid, test), meta = _oracle_streams(spec)
    vocab = Vocab(itos=[f"t{i}" for i in range(spec[0])], level="word")
    return Corpus(name="oracle", level="word", vocab=vocab, train=train.copy(), valid=valid.copy(),
                  test=test.copy(), meta=dict(meta, oracle=dict(meta["oracle"])))


