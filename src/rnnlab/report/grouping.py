"""Run records -> table rows: group by every config field that differs, mean +- std over seeds.

Runs are grouped into rows by every config field that differs between them, except the seed (and
fields that cannot change results: output, logging, checkpointing); data, cell, mode, hidden size
and layers are always shown. Each row gives the mean and sample standard deviation (n - 1) over
its finished seeds, and notes the runs that did not finish (unreadable ones with a usable
config.json among them, by their status ``unreadable``: never in a mean).
"""
from __future__ import annotations

import math

from ..config import TRAIN_MODES
from .runs_io import UNREADABLE

# config fields that never define a row: the seed (averaged over) and fields that cannot change
# the results (where output goes, how it is shown, how often it is logged or checkpointed).
IGNORED_FIELDS = {"train.seed", "train.progress", "train.log_every", "data.dir", "checkpoint.every_steps",
                  "checkpoint.keep"}
IGNORED_PREFIXES = ("wandb.",)
SEED_FIELD = "train.seed"
# always shown, in this order: (config field, column title)
KEY_COLUMNS = (("data.name", "data"), ("model.cell", "cell"), ("train.mode", "mode"),
               ("model.hidden_size", "H"), ("model.num_layers", "layers"))
CELL_ORDER = ("rnn", "rnn_relu", "gru", "gru_cho", "lstm")
# (summary key, column title, format kind); a column appears when some row has the key, so token
# data shows perplexities (and bpc) and frame data (level "frame") its NLL in nats per frame
METRICS = (("best_val_ppl", "best valid ppl", "ppl"), ("test_ppl", "test ppl", "ppl"),
           ("test_bpc", "test bpc", "bpc"), ("best_val_nll", "best valid NLL", "nll"), ("test_nll", "test NLL", "nll"),
           ("optimal_ppl", "optimal ppl", "ppl"), ("nll_oracle", "NLL-oracle", "nll"), ("nll_test", "NLL-test", "nll"),
           ("tokens_per_sec", "tokens/s", "int"), ("wall_s", "time (s)", "time"))
SAMPLED = lambda mode: mode != "teacher_forcing"  # noqa: E731  modes whose eps is not constant 1


def _ignored(field: str) -> bool:
    return field in IGNORED_FIELDS or field.startswith(IGNORED_PREFIXES)


def with_config(runs) -> list[dict]:
    """The records that have a usable config (all but those whose config.json is unreadable)."""
    return [r for r in runs if r["config"] is not None]


def varying_fields(runs) -> list[str]:
    """Config fields (flat names) whose value differs between runs, seed and neutral fields aside."""
    runs = with_config(runs)
    fields = sorted({k for r in runs for k in r["config"]})
    out = []
    for f in fields:
        if _ignored(f) or f in dict(KEY_COLUMNS):
            continue
        if len({repr(r["config"].get(f)) for r in runs} - {"None"}) > 1:  # None: unused by that run's mode
            out.append(f)
    return out


def _short_names(fields) -> dict:
    """model.dropout -> dropout, train.schedule.kind -> schedule.kind (the section dropped when the
    rest is unique)."""
    rest = [f.split(".", 1)[-1] for f in fields]
    return {f: (r if rest.count(r) == 1 else f) for f, r in zip(fields, rest)}


def _sort_key(value, field):
    if field == "model.cell" and value in CELL_ORDER:
        return (0, CELL_ORDER.index(value), "")
    if field == "train.mode" and value in TRAIN_MODES:
        return (0, TRAIN_MODES.index(value), "")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (1, float(value), "")
    return (2, 0.0, repr(value))


def _stats(values) -> tuple[float, float, int]:
    """(mean, sample std (n - 1; nan for one value), n) of the finite values."""
    vals = []
    for v in values:
        try:
            v = float(v)
        except (TypeError, ValueError):
            continue
        if math.isfinite(v):
            vals.append(v)
    n = len(vals)
    if n == 0:
        return math.nan, math.nan, 0
    mean = sum(vals) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (n - 1)) if n > 1 else math.nan
    return mean, std, n


def group_by(runs, fields: list[str]) -> list[tuple[tuple, list[dict]]]:
    """[(values of ``fields``, runs)] sorted by data, mode, cell (those of them in ``fields``),
    then the other fields in order."""
    groups: dict[tuple, list] = {}
    for r in with_config(runs):
        groups.setdefault(tuple(r["config"].get(f) for f in fields), []).append(r)
    order = [fields.index(f) for f in ("data.name", "train.mode", "model.cell") if f in fields]
    order += [i for i in range(len(fields)) if i not in order]

    def key(item):
        vals = item[0]
        return tuple(_sort_key(vals[i], fields[i]) for i in order)

    return sorted(groups.items(), key=key)


def group_runs(runs) -> tuple[list[str], list[tuple[tuple, list[dict]]]]:
    """-> (key fields, [(key values, runs)]) with rows sorted by data, mode, cell, then the rest."""
    fields = [f for f, _ in KEY_COLUMNS] + varying_fields(runs)
    return fields, group_by(runs, fields)


def unfinished(members) -> list[dict]:
    """[{"seed", "status", "error", "path"}] of the runs among ``members`` that did not finish."""
    return [{"seed": r["config"].get(SEED_FIELD), "status": r["status"], "error": r["error"], "path": r["path"]}
            for r in members if r["status"] != "finished"]


def metric_stats(row: dict, done, keys) -> None:
    """``row[<key>_mean]``, ``row[<key>_std]`` over the runs ``done`` that report each key."""
    for key in keys:
        have = [r["summary"][key] for r in done if key in r["summary"]]
        if have:
            row[f"{key}_mean"], row[f"{key}_std"], _ = _stats(have)


def aggregate(runs) -> tuple[list[str], list[dict]]:
    """-> (key fields, rows). A row: the key fields' values, ``seeds`` (finished), ``n``,
    ``num_params``, ``<metric>_mean`` / ``<metric>_std`` for each metric in METRICS that its runs
    report, ``unfinished`` ([{"seed", "status", "error", "path"}]) and ``runs`` (paths)."""
    fields, groups = group_runs(runs)
    rows = []
    for vals, members in groups:
        done = [r for r in members if r["status"] == "finished"]
        row = dict(zip(fields, vals))
        row["seeds"] = sorted(r["config"].get(SEED_FIELD) for r in done)
        row["n"] = len(done)
        params = {r["summary"].get("num_params") for r in done} - {None}
        row["num_params"] = params.pop() if len(params) == 1 else (_stats(params)[0] if params else None)
        metric_stats(row, done, [k for k, _, _ in METRICS])
        row["unfinished"] = unfinished(members)
        row["runs"] = [r["path"] for r in members]
        rows.append(row)
    return fields, rows


def is_unreadable(u: dict) -> bool:
    return u["status"] == UNREADABLE
