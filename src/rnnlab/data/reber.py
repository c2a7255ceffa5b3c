"""The embedded Reber grammar (Hochreiter & Schmidhuber 1997): a stream source with an exact
entropy rate (numpy only)."""
from __future__ import annotations

import math

import numpy as np

from .. import RnnlabError
from .corpus import Corpus, cfg_get
from .vocab import Vocab

REBER_SYMBOLS = ("B", "T", "P", "S", "X", "V", "E")

# The Reber grammar after its leading B (Reber 1967; Hochreiter & Schmidhuber 1997, Fig. 3):
# state -> [(symbol, next state)], each of the two choices with probability 1/2; state 6 emits E.
_REBER_INNER = {1: [("T", 2), ("P", 3)], 2: [("S", 2), ("X", 4)], 3: [("T", 3), ("V", 5)],
                4: [("X", 3), ("S", 6)], 5: [("P", 4), ("V", 6)]}


def reber_automaton():
    """The embedded Reber stream as a deterministic automaton with emission probabilities.

    States: 'start' -B-> 'open' -T|P-> inner(f, 0) -B-> inner(f, 1) ... inner(f, 6) -E-> 'close f'
    -f-> 'end' -E-> 'start', where f in {T, P} is remembered through the inner string (the
    long-range dependency). Returns (names [S], nxt [S, 7] int (-1 = impossible), prob [S, 7]).
    """
    names = ["start", "open"] + [f"{f}{i}" for f in "TP" for i in range(7)] + ["closeT", "closeP", "end"]
    idx = {n: i for i, n in enumerate(names)}
    sym = {s: i for i, s in enumerate(REBER_SYMBOLS)}
    nxt = np.full((len(names), len(REBER_SYMBOLS)), -1, dtype=np.int64)
    prob = np.zeros((len(names), len(REBER_SYMBOLS)))

    def arc(src, s, dst, p):
        nxt[idx[src], sym[s]] = idx[dst]
        prob[idx[src], sym[s]] = p

    arc("start", "B", "open", 1.0)
    for f in "TP":
        arc("open", f, f"{f}0", 0.5)
        arc(f"{f}0", "B", f"{f}1", 1.0)
        for i, choices in _REBER_INNER.items():
            for s, j in choices:
                arc(f"{f}{i}", s, f"{f}{j}", 0.5)
        arc(f"{f}6", "E", f"close{f}", 1.0)
        arc(f"close{f}", f, "end", 1.0)
    arc("end", "E", "start", 1.0)
    return names, nxt, prob


def reber_entropy_rate() -> dict:
    """Exact entropy rate of the embedded Reber stream, from the automaton's stationary distribution.

    H = sum_s pi(s) H(next symbol | s) over automaton states s. Every string carries 7 bits (the
    outer T/P choice + on average 6 binary choices inside) in on average 12 symbols, B and E
    included, so H = 7/12 bits per symbol. (REFERENCES.md's 0.636 = 7/11 bits counts 11 predictions
    per string, i.e. leaves out the leading B; in a stream that B is a target too, predictable after E.)
    Without the long-range dependency (a model that forgets the outer T/P) the closing symbol costs
    one more bit: 8/12.
    """
    names, nxt, prob = reber_automaton()
    s = len(names)
    trans = np.zeros((s, s))
    for i in range(s):
        for k in range(len(REBER_SYMBOLS)):
            if nxt[i, k] >= 0:
                trans[i, nxt[i, k]] += prob[i, k]
    # stationary pi: pi (P - I) = 0, sum(pi) = 1
    a = np.vstack([trans.T - np.eye(s), np.ones(s)])
    pi = np.linalg.lstsq(a, np.r_[np.zeros(s), 1.0], rcond=None)[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        h_state = -np.sum(np.where(prob > 0, prob * np.log(prob), 0.0), axis=1)
    h = float(pi @ h_state)
    p_close = float(pi[names.index("closeT")] + pi[names.index("closeP")])
    h_no_lr = h + p_close * math.log(2.0)
    symbols_per_string = 1.0 / float(pi[names.index("start")])
    return {
        "entropy_rate_nats": h,
        "entropy_rate_bits": h / math.log(2.0),
        "optimal_bpc": h / math.log(2.0),
        "optimal_ppl": math.exp(h),
        "entropy_rate_bits_no_long_range": h_no_lr / math.log(2.0),
        "optimal_ppl_no_long_range": math.exp(h_no_lr),
        "symbols_per_string": symbols_per_string,
        "bits_per_string": h / math.log(2.0) * symbols_per_string,
    }


def reber_sample(n: int, rng: np.random.Generator) -> np.ndarray:
    """A stream of ``n`` symbol ids (indices into REBER_SYMBOLS) of concatenated embedded Reber
    strings, starting at a string's B (the last string may be cut)."""
    names, nxt, prob = reber_automaton()
    out = np.empty(n, dtype=np.int32)
    u = rng.random(n)
    # per state: the possible symbols and the cumulative probabilities
    choices = [np.flatnonzero(prob[i] > 0) for i in range(len(names))]
    cums = [np.cumsum(prob[i, c]) for i, c in enumerate(choices)]
    state = names.index("start")
    for t in range(n):
        c = choices[state]
        k = c[0] if len(c) == 1 else c[min(int(np.searchsorted(cums[state], u[t], side="right")), len(c) - 1)]
        out[t] = k
        state = nxt[state, k]
    return out


def reber_logprob(ids) -> np.ndarray:
    """ln p(ids[t] | ids[:t]) under the true grammar for t = 1..N-1: float64 [N-1].

    ``ids`` [N] must start at a string's B (as every split of the ``reber`` corpus does). Its mean,
    negated, is the cross-entropy of the optimal model: the target a trained model should approach.
    """
    names, nxt, prob = reber_automaton()
    ids = np.asarray(ids).reshape(-1)
    if ids.size == 0 or ids[0] != REBER_SYMBOLS.index("B"):
        raise RnnlabError("reber_logprob needs ids that start with the B of a string; give a whole reber split")
    out = np.empty(ids.size - 1)
    logp = np.log(np.where(prob > 0, prob, 1.0))
    state = nxt[names.index("start"), ids[0]]
    for t in range(1, ids.size):
        k = int(ids[t])
        if nxt[state, k] < 0:
            raise RnnlabError(f"symbol {REBER_SYMBOLS[k]!r} at position {t} is impossible in the embedded Reber "
                              f"grammar; give a stream generated by the reber source")
        out[t - 1] = logp[state, k]
        state = nxt[state, k]
    return out


def _positive_int(cfg, name: str, default: int) -> int:
    v = cfg_get(cfg, name, default)
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 2:
        raise RnnlabError(f"data.{name}={v!r} is not valid; it must be an integer >= 2 (tokens in the split)")
    return int(v)


def load_reber(cfg, level: str) -> Corpus:
    seed = int(cfg_get(cfg, "seed", 0))
    sizes = [_positive_int(cfg, f"num_{s}", d) for s, d in (("train", 200_000), ("valid", 20_000), ("test", 20_000))]
    # one independent generator per split, each split starts at a string's B
    rngs = [np.random.default_rng([seed, k]) for k in range(3)]
    train, valid, test = (reber_sample(n, r) for n, r in zip(sizes, rngs))
    meta = dict(reber_entropy_rate(), seed=seed)
    return Corpus(name="reber", level="char", vocab=Vocab(itos=list(REBER_SYMBOLS), level="char"),
                  train=train, valid=valid, test=test, meta=meta)

