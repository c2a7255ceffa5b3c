"""Model selection: per group, the setting of the searched fields with the best validation metric.

A study with a random search (``get_sweep()``'s ``random`` part, e.g. over ``train.lr``) has runs
that differ only in the searched fields S and the seed. ``select(runs, S)`` groups the runs by
every other field that defines a table row (data, cell, mode, H, layers, and whatever else varies),
and within each group scores each setting s of S over its finished seeds i = 1..n_s:

    score(s) = (any seed of s diverged, mean_i v_i(s)),    chosen = argmin_s score(s)

where v is ``best_val_ppl`` (token data) or ``best_val_nll`` (frame data, nats per frame): lower
is better, and a setting whose training diverged ranks after every setting that trained (a
divergence is a property of the setting, not bad luck to average away). Ties go to the first
setting in table order (smaller values first). The row reports the chosen value(s), the number of
settings tried, and the chosen setting's validation and test metric, mean ± std (n - 1) over its
seeds, with n. Only the validation metric chooses; the test metric is only reported.
"""
from __future__ import annotations

import difflib

from .. import RnnlabError
from .grouping import (KEY_COLUMNS, METRICS, SEED_FIELD, _short_names, _stats, group_by, metric_stats,
                       unfinished, varying_fields, with_config)
from .runs_io import LEVEL_METRICS, level_of, load_runs, searched_fields, unreadable_runs
from .tables import (MEAN_NOTE, _cell_value, _unfinished_text, csv_text, latex_table, markdown_lines, metric_columns,
                     nll_note, raw, stat_columns, unfinished_lines, unreadable_lines)

SELECT_METRICS = tuple(m for m in METRICS if m[0] in ("best_val_ppl", "test_ppl", "test_bpc", "best_val_nll", "test_nll"))


def check_select(runs, fields) -> list[str]:
    """The searched fields as a list; RnnlabError for an empty list, the seed, or a field no run has."""
    fields = [fields] if isinstance(fields, str) else [str(f).strip() for f in fields or ()]
    fields = [f for f in fields if f]
    if not fields:
        raise RnnlabError("model selection needs the searched fields: pass select=[...] (--select=train.lr), "
                          "or report a study whose sweep.json has a random part")
    known = sorted({k for r in with_config(runs) for k in r["config"]})
    for f in fields:
        if f == SEED_FIELD:
            raise RnnlabError(f"select: {SEED_FIELD} is averaged over, not selected; pass the searched fields (e.g. train.lr)")
        if f not in known:
            close = difflib.get_close_matches(f, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise RnnlabError(f"select: {f!r} is not a config field of these runs{hint}; "
                              f"fields are dotted paths like train.lr (see src/rnnlab/config.py)")
    return fields


def _choose(settings, val_key):
    """-> (index of the chosen setting or None, [candidate summaries]) for [(values, members)]."""
    cands, best = [], None
    for i, (vals, members) in enumerate(settings):
        done = [r for r in members if r["status"] == "finished"]
        mean, std, n = _stats(r["summary"].get(val_key) for r in done)
        diverged = any(r["status"] == "diverged" for r in members)
        cands.append({"values": list(vals), "val_mean": mean, "val_std": std, "n": n, "diverged": diverged})
        if n and (best is None or (diverged, mean) < (cands[best]["diverged"], cands[best]["val_mean"])):
            best = i
    return best, cands


def select(runs, fields) -> tuple[list[str], list[str], list[dict]]:
    """-> (group fields, searched fields, rows). A row: the group fields' values, the chosen values
    of the searched fields (None when no setting finished), ``settings`` (how many were tried),
    ``level``, ``metric`` (the validation key that chose), ``n``, ``seeds``, ``<metric>_mean`` /
    ``_std`` of the chosen setting, ``candidates`` ([{"values", "val_mean", "val_std", "n",
    "diverged"}] of every setting), ``unfinished`` and ``runs`` (of the chosen setting; of the
    whole group when none finished)."""
    fields = check_select(runs, fields)
    groups = [f for f, _ in KEY_COLUMNS if f not in fields] + [f for f in varying_fields(runs) if f not in fields]
    rows = []
    for vals, members in group_by(runs, groups):
        done = [r for r in members if r["status"] == "finished"]
        level = level_of(done[0]["summary"]) if done else "token"
        val_key = LEVEL_METRICS[level][0]
        settings = group_by(members, fields)
        best, cands = _choose(settings, val_key)
        row = dict(zip(groups, vals))
        chosen = settings[best] if best is not None else (tuple(None for _ in fields), members)  # none finished
        row.update(zip(fields, chosen[0]))
        won = [r for r in chosen[1] if r["status"] == "finished"]
        row.update({"settings": len(settings), "level": level, "metric": val_key, "n": len(won),
                    "seeds": sorted(r["config"].get(SEED_FIELD) for r in won)})
        metric_stats(row, won, [k for k, _, _ in SELECT_METRICS])
        row.update({"candidates": cands, "unfinished": unfinished(chosen[1]), "runs": [r["path"] for r in chosen[1]]})
        rows.append(row)
    return groups, fields, rows


def selection_columns(groups, fields, rows) -> list[tuple[str, object]]:
    short = dict(KEY_COLUMNS) | _short_names([f for f in groups + fields if f not in dict(KEY_COLUMNS)])
    cols = [(short[f], lambda r, f=f: _cell_value(r[f])) for f in groups]
    cols += [(f"{short[f]} (chosen)", lambda r, f=f: _cell_value(r[f]) if r["n"] else "none finished") for f in fields]
    cols.append(("settings", lambda r: str(r["settings"])))
    cols += metric_columns(rows, SELECT_METRICS)
    cols.append(("seeds", lambda r: str(r["n"])))
    if any(r["unfinished"] for r in rows):
        cols.append(("not finished", _unfinished_text))
    return cols


def selection_markdown(groups, fields, rows, unreadable=()) -> str:
    names = ", ".join(fields)
    keys = sorted({r["metric"] for r in rows}) or [LEVEL_METRICS["token"][0]]
    note = (f"per row, the setting of {names} with the lowest mean {' / '.join(keys)} over its seeds (a setting "
            f"with a diverged seed ranks last); its metrics: {MEAN_NOTE}.{nll_note(rows)}")
    lines = markdown_lines(selection_columns(groups, fields, rows), rows) + ["", note] + unfinished_lines(rows)
    return "\n".join(lines + unreadable_lines(unreadable)) + "\n"


def selection_latex(groups, fields, rows) -> str:
    return latex_table(selection_columns(groups, fields, rows), len(groups) + len(fields), rows)


def selection_csv(groups, fields, rows) -> str:
    """Raw numbers: group fields, chosen values, settings, n, seeds, <metric>_mean / _std, unfinished."""
    stats = stat_columns(rows, SELECT_METRICS)
    header = groups + fields + ["settings", "n", "seeds"] + stats + ["unfinished"]
    value = lambda v: raw(v) if isinstance(v, float) or v is None else _cell_value(v)  # noqa: E731  all digits
    return csv_text(header, [[_cell_value(r[f]) for f in groups] + [value(r[f]) for f in fields]
                             + [r["settings"], r["n"], " ".join(map(str, r["seeds"]))]
                             + [raw(r.get(c)) for c in stats] + [_unfinished_text(r)] for r in rows])


def build_selection(runs, select_fields=None) -> tuple[list[dict], str]:
    """``runs``: a runs directory (searched fields default to its sweep.json random part) or run
    records -> (rows, markdown table with the unreadable runs listed after it)."""
    if not isinstance(runs, list):
        select_fields = select_fields or searched_fields(runs)
        runs = load_runs(runs)
    groups, fields, rows = select(runs, select_fields)
    return rows, selection_markdown(groups, fields, rows, unreadable_runs(runs))

