"""A study's members: load ``get_sweep()``, check it, apply command-line pins, expand it.

Members = the grid product of the ``product`` lists x the tuples of the (equal-length) ``zip``
lists x the ``samples`` rows of the ``random`` part (``random_search``); each member is the base
config plus its overrides (see the package docstring).
"""
from __future__ import annotations

import copy
import importlib.util
import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import RnnlabError
from ..config import validate
from .fields import check_field, get_field, set_field
from .labels import _fmt, _unique, label, short_names, zip_labels
from .random_search import check_random, draw

SWEEP_KEYS = ("product", "zip", "random", "samples", "seed")
SEED_FIELD = "train.seed"


@dataclass
class Member:
    name: str  # run directory name under the study's workdir
    overrides: dict  # dotted field -> value, in get_sweep order (product, then zip, then random fields)
    config: Any = field(repr=False)  # the member's full ConfigDict


@dataclass
class Study:
    """A checked get_sweep(): {field: values} of the product and zip parts, {field: Dist} of the
    random part with its number of samples (0 without one) and seed."""
    product: dict
    zipped: dict
    random: dict
    samples: int
    seed: int

    def draws(self) -> list[dict]:
        """The random part's rows {field: value} (``random_search.draw``); [{}] without one."""
        return draw(self.random, self.samples, self.seed) if self.random else [{}]


# ----------------------------------------------------------------------------- loading
def load_sweep(config_file) -> dict:
    """``get_sweep()`` of a config file (a python file, as for --config)."""
    path = Path(str(config_file).split(":")[0])
    if not path.is_file():
        raise RnnlabError(f"config file {str(config_file)!r} not found; pass --config=configs/<name>.py (see configs/)")
    spec = importlib.util.spec_from_file_location(f"_rnnlab_study_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        raise RnnlabError(f"could not load {path}: {type(e).__name__}: {_first_line(e)}") from None
    if not hasattr(module, "get_sweep"):
        raise RnnlabError(f"{path} has no get_sweep(); add one (see configs/quickstart.py) "
                          f"or train a single run with experiments.train")
    try:
        return module.get_sweep()
    except Exception as e:
        raise RnnlabError(f"{path}: get_sweep() raised {type(e).__name__}: {_first_line(e)}") from None


def _first_line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return lines[0] if lines else type(e).__name__


def error_line(e: BaseException) -> str:
    """One line for a failed member: the RnnlabError text, else ``Type: first line``."""
    return _first_line(e) if isinstance(e, RnnlabError) else f"{type(e).__name__}: {_first_line(e)}"


# ----------------------------------------------------------------------------- checking
def check_sweep(sweep, cfg) -> Study:
    """Validate a get_sweep() dict (fields, value lists, distributions) before anything trains."""
    if not isinstance(sweep, dict) or set(sweep) - set(SWEEP_KEYS):
        got = sorted(sweep) if isinstance(sweep, dict) else type(sweep).__name__
        raise RnnlabError(f"get_sweep() must return a dict with keys 'product' and/or 'zip' "
                          f"(each {{'a.b': [values]}}), and optionally 'random' with 'samples' and 'seed'; "
                          f"got {got}")
    out = []
    for key in ("product", "zip"):
        d = sweep.get(key) or {}
        if not isinstance(d, dict):
            raise RnnlabError(f"get_sweep()[{key!r}] must be a dict {{'a.b': [values]}}; got {type(d).__name__}")
        lists = {}
        for f, values in d.items():
            if not isinstance(f, str):
                raise RnnlabError(f"get_sweep()[{key!r}] has key {f!r}; keys are dotted config fields like 'model.cell'")
            check_field(cfg, f)
            if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)) or not values:
                raise RnnlabError(f"get_sweep()[{key!r}][{f!r}] must be a non-empty list of values; got {values!r}")
            lists[f] = list(values)
        out.append(lists)
    product, zipped = out
    both = sorted(set(product) & set(zipped))
    if both:
        raise RnnlabError(f"get_sweep(): {', '.join(both)} is in both 'product' and 'zip'; put each field in one")
    lengths = {f: len(v) for f, v in zipped.items()}
    if len(set(lengths.values())) > 1:
        raise RnnlabError(f"get_sweep()['zip'] lists must have equal lengths; got "
                          + ", ".join(f"{f}: {n}" for f, n in lengths.items()))
    random, samples, seed = check_random(sweep)
    for f in random:
        check_field(cfg, f, "get_sweep()['random']")
        part = "product" if f in product else "zip" if f in zipped else None
        if part:
            raise RnnlabError(f"get_sweep(): {f} is in both 'random' and {part!r}; put each field in one")
    return Study(product, zipped, random, samples, seed)


def _same(a, b) -> bool:
    """Equal as config values (1 == 1.0, but True is not 1)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return a == b


def _pin(product: dict, zipped: dict, cfg, pinned, zip_choice: str | None):
    """Apply command-line pins: a pinned product field keeps only the command-line value; pinned
    zip fields (or ``zip_choice``, a zip label) keep only the matching tuples."""
    product = dict(product)
    zl = zip_labels(zipped, short_names(list(product) + list(zipped)))
    n = len(zl)
    keep = list(range(n))
    for f in pinned:
        if f in product:
            v = get_field(cfg, f)
            same = [x for x in product[f] if _same(x, v)]
            product[f] = [same[0] if same else v]
        elif f in zipped:
            v = get_field(cfg, f)
            keep = [i for i in keep if _same(zipped[f][i], v)]
            if not keep:
                raise RnnlabError(f"--config.{f}={v!r} matches none of get_sweep()['zip'][{f!r}] "
                                  f"({', '.join(map(_fmt, zipped[f]))}); zipped fields can only be pinned to those values")
    if zip_choice is not None:
        if zip_choice not in zl:
            raise RnnlabError(f"--zip={zip_choice!r} is not one of the study's zipped tuples: {', '.join(zl) or 'none'}")
        keep = [i for i in keep if zl[i] == zip_choice]
        if not keep:
            raise RnnlabError(f"--zip={zip_choice!r} contradicts a --config override of a zipped field")
    zipped = {f: [vals[i] for i in keep] for f, vals in zipped.items()}
    return product, zipped


# ----------------------------------------------------------------------------- expansion
def expand(cfg, sweep: dict, *, pinned=(), zip_choice: str | None = None,
           draws: list[dict] | None = None) -> list[Member]:
    """The members of a study: base config ``cfg`` x get_sweep() ``sweep``. ``pinned``: dotted
    fields set on the command line (their value in ``cfg`` wins over the sweep's lists and random
    draws; rows of the random part that become equal are one member). ``draws``: the random
    part's rows to use instead of drawing them (those sweep.json recorded)."""
    study = check_sweep(sweep, cfg)
    product, zipped = study.product, study.zipped
    names = short_names(list(product) + list(zipped) + list(study.random))
    product, zipped = _pin(product, zipped, cfg, pinned, zip_choice)
    rows = []
    for row in study.draws() if draws is None else draws:
        row = {f: get_field(cfg, f) if f in pinned else v for f, v in row.items()}
        if row not in rows:
            rows.append(row)
    n_zip = len(next(iter(zipped.values()))) if zipped else 1
    combos = []
    for values in itertools.product(*product.values()):
        for i in range(n_zip):
            for row in rows:
                ov = dict(zip(product, values))
                ov.update({f: vals[i] for f, vals in zipped.items()})
                ov.update(row)
                combos.append(ov)
    labels = _unique([label(ov, names) for ov in combos], combos)
    members = []
    for name, ov in zip(labels, combos):
        c = copy.deepcopy(cfg)
        for f, v in ov.items():
            set_field(c, f, v)
        try:
            validate(c)
        except RnnlabError as e:
            raise RnnlabError(f"study member {name}: {e}") from None
        members.append(Member(name, ov, c))
    return members


def cli_fields(argv) -> list[str]:
    """Dotted fields overridden on the command line (``--config.a.b=v``, ``--config.a.b v``,
    ``--noconfig.a.b``)."""
    out = []
    for a in argv:
        m = re.match(r"^--(?:no)?config\.([A-Za-z0-9_.]+)(=|$)", a)
        if m and m.group(1) not in out:
            out.append(m.group(1))
    return out
