"""A random recurrent LM as the data source (``data.name=oracle``), and the free-running metrics.

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

Free-running metrics (``free_running_metrics``), from S prompts of P gold tokens cut from the test
split (for ``reber``: prompts that end where a string begins), each followed by a sample of
``eval.sample_len`` tokens drawn by the model at ``eval.sample_temperature``:

* ``nll_test``: the model's NLL of held-out oracle samples = teacher-forced test loss (coverage).
* ``nll_oracle`` (oracle source): the oracle's NLL of the model's samples given the same prompt
  (quality); the oracle's own samples score ``oracle_entropy`` on average (a test checks it).
* ``valid_fraction`` (reber): the fraction of samples whose first string is a complete, valid
  embedded Reber string (``undecided_fraction``: samples too short to finish it).
* ``exposure_gap`` {k: gap}: mean NLL of the gold continuation (``eval.gap_tokens`` tokens) after k
  self-fed steps minus after the k gold steps, same prompts. Even the oracle has a positive gap (its
  k own tokens are not the ones the continuation followed), so the oracle source also reports
  ``oracle_exposure_gap`` (the oracle run through the same procedure) and ``exposure_gap_kl``
  {k: mean KL(oracle || model) at the scored positions after self-fed minus after gold steps}:
  0 for the oracle itself, > 0 when the model is worse on its own prefixes (He et al. 2019's
  exposure-bias measure as a difference).
* ``distinct_n`` {n: distinct n-grams / all n-grams of the samples} and ``distinct_n_data`` (the
  same for the gold continuations of the same length), Li et al. 2016.
* ``model_entropy``: mean entropy of the model's next-token distribution along its own samples.
* ``sample_ppl_ref`` (``eval.reference`` set): perplexity of the samples under the reference run's
  model (same vocab), given the same prompts.
"""
from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import RnnlabError
from .data import REBER_SYMBOLS, Corpus, Vocab, _reber_automaton
from .forcing import free_run
from .model import LanguageModel, initial_carries

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


def _entropy(logits):
    """logits [..., V] -> entropy of softmax in nats [...] (float32)."""
    logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    return -(jnp.exp(logp) * logp).sum(-1)


def _token_logp(logits, tokens):
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
    ent = np.asarray(_entropy(logits[3, 1:n_ent]), np.float64)  # H(x_t | x_<t), t >= 1
    blocks = np.array_split(ent, 50)
    means = np.array([b.mean() for b in blocks])
    test_nll = -np.asarray(_token_logp(logits[2, 1:n_test], jnp.asarray(streams[2][1:])), np.float64)
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


# ----------------------------------------------------------------------------- scoring helpers
@functools.partial(jax.jit, static_argnames=("model",))
def _logits(model, params, tokens):
    """Teacher-forced logits [S, L, V] of tokens [S, L] from zero carries."""
    carries = initial_carries(model.cell, model.num_layers, tokens.shape[0], model.hidden_size, model.forget_bias)
    return model.apply({"params": params}, tokens, carries)[0]


def continuation_logits(model, params, context, m: int, pad_to: int = 0):
    """context [S, L] -> the logits [S, m, V] that predict its last m tokens (teacher-forced).
    ``pad_to``: right-pad the context to this length first (the padding comes after the scored
    tokens, so it changes nothing), so that contexts of several lengths share one compiled program."""
    context = np.asarray(context, np.int32)
    L = context.shape[1]
    if pad_to > L:
        context = np.pad(context, ((0, 0), (0, pad_to - L)))
    return _logits(model, params, jnp.asarray(context[:, :-1]))[:, L - 1 - m:L - 1]


def continuation_nll(model, params, context, m: int, pad_to: int = 0) -> np.ndarray:
    """NLL [S, m] (nats) of the last m tokens of context [S, L] given everything before them."""
    lg = continuation_logits(model, params, context, m, pad_to)
    return -np.asarray(_token_logp(lg, jnp.asarray(context[:, -m:], jnp.int32)), np.float64)


def distinct_n(samples, n: int) -> float:
    """Distinct n-grams / all n-grams over the rows of samples [S, L] (n-grams do not cross rows)."""
    samples = np.asarray(samples)
    S, L = samples.shape
    if L < n:
        return float("nan")
    grams = np.stack([samples[:, i:L - n + 1 + i] for i in range(n)], axis=-1).reshape(-1, n)
    return float(len({tuple(g) for g in grams.tolist()}) / grams.shape[0])


def reber_first_string(tokens) -> str:
    """'valid' | 'invalid' | 'undecided': the first embedded Reber string of tokens [L] (which
    should start with its B), checked against the grammar's automaton."""
    names, nxt, _ = _reber_automaton()
    state = names.index("start")
    for t, k in enumerate(np.asarray(tokens).tolist()):
        if not 0 <= k < len(REBER_SYMBOLS) or nxt[state, k] < 0:
            return "invalid"
        state = int(nxt[state, k])
        if t > 0 and names[state] == "start":
            return "valid"
    return "undecided"


def prompt_positions(corpus: Corpus, S: int, P: int, C: int) -> np.ndarray:
    """S positions p in the test split with p - P >= 0 and p + C <= N, evenly spaced; for reber, the
    starts of strings (a B right after an E)."""
    ids = corpus.test
    N = ids.size
    if N - C < P:
        raise RnnlabError(f"the test split ({N} tokens) is too short for eval.prompt_len={P} plus {C} tokens of "
                          f"continuation; lower eval.prompt_len / sample_len / exposure_ks or use a longer split")
    if corpus.name == "reber":
        b, e = REBER_SYMBOLS.index("B"), REBER_SYMBOLS.index("E")
        cand = np.flatnonzero((ids[1:] == b) & (ids[:-1] == e)) + 1
        cand = cand[(cand >= P) & (cand + C <= N)]
        if cand.size == 0:
            raise RnnlabError("the reber test split has no string start with room for the prompt and sample; "
                              "use a longer test split (data.num_test)")
        return cand[np.linspace(0, cand.size - 1, S).round().astype(int)]
    return np.linspace(P, N - C, S).round().astype(int)


# ----------------------------------------------------------------------------- free-running metrics
def _gaps(model, params, prompts, gold, own, ks, m, pad_to, oracle: Oracle | None = None) -> tuple[dict, dict]:
    """Exposure-bias gap {k: NLL(gold cont | k own tokens) - NLL(gold cont | k gold tokens)} and,
    with an oracle, the same difference of KL(oracle || model) at the scored positions."""
    gap, gap_kl = {}, {}
    for k in ks:
        ctx_gold = np.concatenate([prompts, gold[:, :k + m]], axis=1)
        ctx_own = np.concatenate([prompts, own[:, :k], gold[:, k:k + m]], axis=1)
        nll_gold = continuation_nll(model, params, ctx_gold, m, pad_to)
        nll_own = continuation_nll(model, params, ctx_own, m, pad_to)
        gap[str(k)] = float(nll_own.mean() - nll_gold.mean())
        if oracle is not None:
            kls = []
            for ctx in (ctx_gold, ctx_own):
                lm = jax.nn.log_softmax(continuation_logits(model, params, ctx, m, pad_to), -1)
                lo = jax.nn.log_softmax(continuation_logits(oracle.model, oracle.params, ctx, m, pad_to), -1)
                kls.append(float(np.asarray((jnp.exp(lo) * (lo - lm)).sum(-1), np.float64).mean()))
            gap_kl[str(k)] = kls[1] - kls[0]
    return gap, gap_kl


def free_running_metrics(model, params, corpus: Corpus, cfg, key, *, test: dict | None = None) -> dict:
    """The free-running metrics of a trained model (module docstring); top-level summary keys.
    ``test``: the teacher-forced test result (its ``loss`` becomes ``nll_test``)."""
    e = cfg.eval
    S, P, n, m = int(e.num_samples), int(e.prompt_len), int(e.sample_len), int(e.gap_tokens)
    ks = sorted({int(k) for k in e.exposure_ks})
    kmax = max(ks, default=0)
    C = max(n, kmax + m)
    pos = prompt_positions(corpus, S, P, C)
    ids = corpus.test
    prompts = np.stack([ids[p - P:p] for p in pos]).astype(np.int32)
    gold = np.stack([ids[p:p + C] for p in pos]).astype(np.int32)
    k_sample, k_oracle = jax.random.split(key)
    temp = float(e.sample_temperature)
    own, own_logits = free_run(model, params, prompts, max(n, kmax), k_sample, temperature=temp)
    own = np.asarray(own)
    samples = own[:, :n]

    out: dict = {}
    if test is not None:
        out["nll_test"] = float(test["loss"])
    out["model_entropy"] = float(np.asarray(_entropy(own_logits[:, :n]), np.float64).mean())
    out["distinct_n"] = {str(k): distinct_n(samples, k) for k in e.distinct_n}
    out["distinct_n_data"] = {str(k): distinct_n(gold[:, :n], k) for k in e.distinct_n}
    oracle = get_oracle(cfg.data) if corpus.name == "oracle" else None
    L = P + C  # every scored context is padded to this length: one compiled program per model
    out["exposure_gap"], gap_kl = _gaps(model, params, prompts, gold, own, ks, m, L, oracle)
    if oracle is not None:
        ctx = np.concatenate([prompts, samples], axis=1)
        out["nll_oracle"] = float(continuation_nll(oracle.model, oracle.params, ctx, n, L).mean())
        out["exposure_gap_kl"] = gap_kl
        o_own, _ = free_run(oracle.model, oracle.params, prompts, max(kmax, 1), k_oracle, temperature=1.0)
        out["oracle_exposure_gap"], _ = _gaps(oracle.model, oracle.params, prompts, gold, np.asarray(o_own), ks, m, L)
        out["oracle_entropy"] = corpus.meta.get("oracle_entropy")
    if corpus.name == "reber":
        verdicts = [reber_first_string(row) for row in samples]
        out["valid_fraction"] = verdicts.count("valid") / len(verdicts)
        out["undecided_fraction"] = verdicts.count("undecided") / len(verdicts)
        out["oracle_entropy"] = corpus.meta.get("entropy_rate_nats")
    if str(e.reference):
        from .runs import load_run

        ref = load_run(str(e.reference))
        if list(ref.vocab.itos) != list(corpus.vocab.itos):
            raise RnnlabError(f"eval.reference={str(e.reference)!r} has a different vocabulary ({ref.vocab.size} "
                              f"tokens) than this run ({corpus.vocab.size}); name a run trained on the same data")
        ctx = np.concatenate([prompts, samples], axis=1)
        out["sample_ppl_ref"] = math.exp(float(continuation_nll(ref.model, ref.params, ctx, n, L).mean()))
    return out


def log_items(metrics: dict, prefix: str = "eval/") -> dict:
    """Flatten {name: value or {k: value}} to ``{'eval/name': v, 'eval/name/k': v}`` for metrics.jsonl."""
    out = {}
    for name, v in metrics.items():
        if isinstance(v, dict):
            out.update({f"{prefix}{name}/{k}": x for k, x in v.items()})
        elif v is not None:
            out[f"{prefix}{name}"] = v
    return out


# ----------------------------------------------------------------------------- the study's table
MODE_ORDER = ("teacher_forcing", "scheduled_sampling", "always_sampling", "soft_sampling")
SCHEDULE_ORDER = ("constant", "linear", "exponential", "inverse_sigmoid")


def _mean_std(xs) -> str:
    xs = [x for x in xs if x is not None and math.isfinite(x)]
    if not xs:
        return "-"
    m = sum(xs) / len(xs)
    if len(xs) == 1:
        return f"{m:.3f}"
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))
    return f"{m:.3f} ± {sd:.3f}"


def modes_table(workdir, k: int | None = None) -> str:
    """Markdown table of a training-modes study (every finished run under ``workdir``): one row per
    cell x mode (x schedule), mean ± std over seeds of teacher-forced test ppl, NLL-test, NLL-oracle,
    the exposure-bias gap and its KL form at k (default: the largest k) and distinct-2; plus the
    oracle's own row (its exact test NLL, its entropy, its gap)."""
    import json
    from pathlib import Path

    rows: dict = {}
    oracle_rows = []
    for path in sorted(Path(workdir).rglob("summary.json")):
        s = json.loads(path.read_text())
        if s.get("status") != "finished" or "exposure_gap" not in s:
            continue
        cfg = json.loads((path.parent / "config.json").read_text())
        mode = s["train_mode"]
        kind = cfg["train"]["schedule"]["kind"] if mode in ("scheduled_sampling", "soft_sampling") else ""
        rows.setdefault((s["cell"], mode, kind), []).append(s)
        oracle_rows.append(s)
    if not rows:
        raise RnnlabError(f"no finished run with free-running metrics under {workdir}; run the study first "
                          f"(configs/tf_vs_ss.py turns eval.free_running on)")
    ks = sorted(int(x) for x in next(iter(rows.values()))[0]["exposure_gap"])
    k = str(max(ks) if k is None else k)
    cells = [c for c in ("rnn", "rnn_relu", "gru", "gru_cho", "lstm") if any(r[0] == c for r in rows)]
    cells += sorted({r[0] for r in rows} - set(cells))
    order = lambda key: (cells.index(key[0]), MODE_ORDER.index(key[1]) if key[1] in MODE_ORDER else 9,
                         SCHEDULE_ORDER.index(key[2]) if key[2] in SCHEDULE_ORDER else -1)
    head = ["cell", "mode", "schedule", "seeds", "test ppl", "NLL-test", "NLL-oracle", f"gap k={k}",
            f"gap KL k={k}", "distinct-2"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    get = lambda rs, f: [f(r) for r in rs]
    for key in sorted(rows, key=order):
        rs = rows[key]
        lines.append("| " + " | ".join([key[0], key[1], key[2] or "-", str(len(rs)),
                                        _mean_std(get(rs, lambda r: r["test_ppl"])),
                                        _mean_std(get(rs, lambda r: r.get("nll_test"))),
                                        _mean_std(get(rs, lambda r: r.get("nll_oracle"))),
                                        _mean_std(get(rs, lambda r: r["exposure_gap"].get(k))),
                                        _mean_std(get(rs, lambda r: r.get("exposure_gap_kl", {}).get(k))),
                                        _mean_std(get(rs, lambda r: r.get("distinct_n", {}).get("2")))]) + " |")
    o = oracle_rows[0]
    if "oracle_test_nll" in o:
        lines.append("| " + " | ".join(["oracle", "(the source)", "-", "-", f"{math.exp(o['oracle_test_nll']):.3f}",
                                        f"{o['oracle_test_nll']:.3f}", f"{o['oracle_entropy']:.3f} (entropy)",
                                        _mean_std([r.get("oracle_exposure_gap", {}).get(k) for r in oracle_rows]),
                                        "0", _mean_std([r.get("distinct_n_data", {}).get("2") for r in oracle_rows])])
                     + " |")
    return "\n".join(lines)
