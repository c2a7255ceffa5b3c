"""The random part of a study: distributions over config fields, drawn once per study.

    get_sweep() -> {"product": {...}, "random": {"train.lr": {"log_uniform": [1e-4, 1e-2]},
                                                 "model.dropout": {"uniform": [0.0, 0.5]}},
                    "samples": 10, "seed": 0}

Distributions (one key each):

    log_uniform: [lo, hi]   0 < lo < hi; log x ~ U(log lo, log hi)   (W&B log_uniform_values)
    uniform:     [lo, hi]   lo < hi;     x ~ U(lo, hi)               (W&B uniform)
    int_uniform: [lo, hi]   integers lo < hi; x ~ U{lo, ..., hi}, both ends included (W&B int_uniform)
    choice:      [v1, ...]  one of the values, each with probability 1/K (W&B values)

``draw`` makes ``samples`` rows {field: value} from ``numpy.random.default_rng(seed)``, one row
at a time (one value per field, in get_sweep order), so row i depends only on the spec, the seed and
the rows before it: raising ``samples`` keeps the earlier members and their run directories. A
continuous value is rounded to the fewest significant digits, 2 or more, that keep it inside
[lo, hi] and apart from the field's earlier values: the member's name (``lr=3.1e-05``) is then its
exact value, and no two rows share a value of a continuous field. A row equal to an earlier one
(possible only when every field is discrete) is drawn again; a discrete space with fewer points
than ``samples`` is an error.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .. import RnnlabError

DISTRIBUTIONS = ("log_uniform", "uniform", "int_uniform", "choice")
CONTINUOUS = ("log_uniform", "uniform")


class Dist(NamedTuple):
    kind: str  # one of DISTRIBUTIONS
    args: list  # [lo, hi] for log_uniform / uniform / int_uniform; the values for choice


def _number(x, integer: bool = False) -> bool:
    if isinstance(x, bool):
        return False
    return isinstance(x, int) if integer else isinstance(x, (int, float)) and math.isfinite(x)


def check_dist(name: str, spec) -> Dist:
    """A ``{'log_uniform': [lo, hi]}``-style spec of field ``name`` -> Dist; RnnlabError otherwise."""
    where = f"get_sweep()['random'][{name!r}]"
    if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in DISTRIBUTIONS:
        got = next(iter(spec)) if isinstance(spec, dict) and len(spec) == 1 else spec
        raise RnnlabError(f"{where}: unknown distribution {got!r}; use one of {', '.join(DISTRIBUTIONS)}, "
                          f"e.g. {{'log_uniform': [1e-4, 1e-2]}} or {{'choice': [values]}}")
    kind, args = next(iter(spec.items()))
    where += f"[{kind!r}]"
    if kind == "choice":
        if isinstance(args, (str, bytes)) or not isinstance(args, (list, tuple)) or not args:
            raise RnnlabError(f"{where} must be a non-empty list of values; got {args!r}")
        return Dist(kind, list(args))
    integer = kind == "int_uniform"
    if (not isinstance(args, (list, tuple)) or len(args) != 2
            or not all(_number(x, integer) for x in args)):
        raise RnnlabError(f"{where} must be [lo, hi], two {'integers' if integer else 'finite numbers'}; "
                          f"got {args!r}")
    lo, hi = args
    if lo >= hi:
        raise RnnlabError(f"{where} = [{lo!r}, {hi!r}]: lo must be below hi")
    if kind == "log_uniform" and lo <= 0:
        raise RnnlabError(f"{where} = [{lo!r}, {hi!r}]: lo must be > 0 for a log-uniform distribution")
    return Dist(kind, [lo, hi])


def check_random(sweep: dict) -> tuple[dict, int, int]:
    """The random part of a get_sweep() dict -> ({field: Dist}, samples, seed); ({}, 0, 0) without one.
    (Fields are checked against the config by ``spec.check_sweep``.)"""
    random = sweep.get("random") or {}
    if not isinstance(random, dict):
        raise RnnlabError(f"get_sweep()['random'] must be a dict {{'a.b': {{'log_uniform': [lo, hi]}}}}; "
                          f"got {type(random).__name__}")
    if not random:
        extra = [k for k in ("samples", "seed") if k in sweep]
        if extra:
            raise RnnlabError(f"get_sweep() has {' and '.join(map(repr, extra))} but no 'random' part; "
                              f"add 'random': {{'a.b': {{'log_uniform': [lo, hi]}}}} or drop them")
        return {}, 0, 0
    dists = {}
    for f, spec in random.items():
        if not isinstance(f, str):
            raise RnnlabError(f"get_sweep()['random'] has key {f!r}; keys are dotted config fields like 'train.lr'")
        dists[f] = check_dist(f, spec)
    if "samples" not in sweep:
        raise RnnlabError("get_sweep() has a 'random' part but no 'samples'; add 'samples': N (N >= 1 draws, "
                          "each combined with every product/zip member)")
    samples, seed = sweep["samples"], sweep.get("seed", 0)
    if not _number(samples, integer=True) or samples < 1:
        raise RnnlabError(f"get_sweep()['samples'] must be an integer >= 1; got {samples!r}")
    if not _number(seed, integer=True) or seed < 0:
        raise RnnlabError(f"get_sweep()['seed'] must be an integer >= 0 (numpy default_rng); got {seed!r}")
    if all(d.kind not in CONTINUOUS for d in dists.values()):
        size = math.prod(len({repr(v) for v in d.args}) if d.kind == "choice" else d.args[1] - d.args[0] + 1
                         for d in dists.values())
        if samples > size:
            raise RnnlabError(f"get_sweep(): samples={samples} but the random part has only {size} distinct "
                              f"points (all its fields are choice / int_uniform); use fewer samples or 'product'")
    return dists, samples, seed


def _draw_one(rng: np.random.Generator, d: Dist):
    if d.kind == "log_uniform":  # what scipy.stats.loguniform does, without importing scipy
        lo, hi = d.args
        return min(max(math.exp(rng.uniform(math.log(lo), math.log(hi))), lo), hi)  # exp(log hi) may pass hi
    if d.kind == "uniform":
        return float(rng.uniform(d.args[0], d.args[1]))
    if d.kind == "int_uniform":
        return int(rng.integers(d.args[0], d.args[1], endpoint=True))
    return d.args[int(rng.integers(len(d.args)))]  # choice: the value itself (python type kept)


def _short(v: float, taken: set, lo: float, hi: float) -> float:
    """``v`` at the fewest significant digits (>= 2) that keep it in [lo, hi] and out of ``taken``."""
    for digits in range(2, 17):
        r = float(f"{v:.{digits}g}")
        if lo <= r <= hi and r not in taken:
            return r
    return v  # 17 significant digits: the float itself


def draw(dists: dict, samples: int, seed: int) -> list[dict]:
    """``samples`` distinct rows {field: value} (see the module docstring)."""
    rng = np.random.default_rng(seed)
    rows, seen = [], set()
    taken = {f: set() for f, d in dists.items() if d.kind in CONTINUOUS}
    while len(rows) < samples:
        row = {f: _draw_one(rng, d) for f, d in dists.items()}
        for f in taken:
            row[f] = _short(row[f], taken[f], *dists[f].args)
        key = repr(list(row.values()))
        if key in seen or any(row[f] in taken[f] for f in taken):
            continue  # a repeat: draw again
        seen.add(key)
        rows.append(row)
        for f in taken:
            taken[f].add(row[f])
    return rows
