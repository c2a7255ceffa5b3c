"""Run directories -> run records, with every unreadable or inconsistent run kept and named.

A run directory is a folder holding ``config.json`` (found recursively; folders inside a run's
``wandb/`` or ``checkpoints/`` and hidden folders are skipped), with its ``summary.json`` (written
when the run finished, or with ``status`` failed / diverged) and ``metrics.jsonl``.

Every record (``make_run``) is a dict: ``config`` (flat ``{"model.cell": "gru", ...}``, defaults of
``base_config()`` filled in for fields a run predates; None when config.json is unusable),
``summary``, ``history`` (metrics.jsonl records), ``status``, ``error``, ``path``, ``name``, ``file``.

A run whose files cannot be trusted gets ``status = "unreadable"``, ``error`` = the one-line reason
and ``file`` = the file at fault. It is never averaged and never silently dropped: the tables list
it in their "unreadable runs" section. The checks (``check_config``, ``check_summary``):

* config.json: valid JSON, an object, with the sections data / model / train; a section of
  base_config() must be an object there, a leaf must not be one, and a leaf must have its
  default's type (number, string, bool, list; None is allowed anywhere);
* summary.json: valid JSON, an object, a string ``status``; ``cell`` / ``train_mode`` / ``seed``
  (when present) equal to config.json's; a finished run must hold its level's numbers: ``test_ppl``
  and ``best_val_ppl`` (token data) or ``test_nll`` and ``best_val_nll`` (``level: "frame"``),
  finite; every metric of the tables it holds must be a number.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from .. import RnnlabError
from ..config import base_config
from ..tracking import read_jsonl

UNREADABLE = "unreadable"
REQUIRED_SECTIONS = ("data", "model", "train")
# the numbers a finished run of each level must hold: (validation metric selected on, test metric)
LEVEL_METRICS = {"token": ("best_val_ppl", "test_ppl"), "frame": ("best_val_nll", "test_nll")}
# every summary key a table shows (grouping.METRICS): must be a number when present
NUMERIC_KEYS = ("best_val_ppl", "test_ppl", "test_bpc", "optimal_ppl", "best_val_nll", "test_nll", "val_nll",
                "train_nll", "nll_oracle", "nll_test", "tokens_per_sec", "wall_s", "num_params")


def flatten(d: dict, prefix: str = "") -> dict:
    """{"model": {"cell": "gru"}} -> {"model.cell": "gru"}; lists become tuples (hashable)."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = tuple(v) if isinstance(v, list) else v
    return out


def _default_tree() -> dict:
    return json.loads(base_config().to_json())


def _defaults() -> dict:
    return flatten(_default_tree())


# fields a training mode does not use: None for those runs, so they neither split rows nor show
# (teacher forcing has no schedule and no feedback; always sampling has eps = 0, no schedule)
_FEEDBACK_FIELDS = ("train.feedback", "train.feedback_temperature", "train.coin")
UNUSED_BY_MODE = {"teacher_forcing": ("train.schedule.",) + _FEEDBACK_FIELDS, "always_sampling": ("train.schedule.",)}


def _drop_unused(flat: dict) -> dict:
    unused = UNUSED_BY_MODE.get(flat.get("train.mode"), ())
    return {k: (None if k.startswith(unused) else v) for k, v in flat.items()}


def level_of(summary: dict) -> str:
    """``frame`` (NLL per frame: music) or ``token`` (perplexity), from what a summary holds."""
    if summary.get("level") == "frame" or ("test_nll" in summary and "test_ppl" not in summary):
        return "frame"
    return "token"


# ----------------------------------------------------------------------------- checks
def _kind(v) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, (list, tuple)):
        return "list"
    return "object" if isinstance(v, dict) else type(v).__name__


def _show(v) -> str:
    text = json.dumps(v) if not isinstance(v, float) or math.isfinite(v) else str(v)
    return text if len(text) <= 40 else text[:37] + "..."


def check_config(config) -> str | None:
    """None when ``config`` (parsed config.json) is a run config, else the one-line reason."""
    if not isinstance(config, dict):
        return f"holds a JSON {_kind(config)}, not an object of config sections"
    missing = [s for s in REQUIRED_SECTIONS if s not in config]
    if missing:
        return f"has no {', '.join(missing)} section{'s' if len(missing) > 1 else ''} (an rnnlab config.json has {', '.join(REQUIRED_SECTIONS)})"

    def walk(given: dict, default: dict, prefix: str) -> str | None:
        for k, v in given.items():
            if k not in default or v is None:
                continue  # a field newer than this code, or unset: nothing to compare with
            d, name = default[k], f"{prefix}{k}"
            if isinstance(d, dict):
                if not isinstance(v, dict):
                    return f"{name} is {_show(v)}, expected a section (a JSON object of fields)"
                bad = walk(v, d, name + ".")
                if bad:
                    return bad
            elif d is not None and _kind(v) != _kind(d):
                return f"{name} is {_show(v)} ({_kind(v)}), expected a {_kind(d)} like {_show(d)}"
        return None

    return walk(config, _default_tree(), "")


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_summary(summary, flat_config: dict | None) -> str | None:
    """None when ``summary`` (parsed summary.json) is usable with this run's config, else the reason."""
    if not isinstance(summary, dict):
        return f"holds a JSON {_kind(summary)}, not an object"
    status = summary.get("status")
    if not isinstance(status, str) or not status:
        return "has no status (finished, failed or diverged)" if status is None else f"status is {_show(status)}, not a string"
    if flat_config is not None:
        for key, field in (("cell", "model.cell"), ("train_mode", "train.mode"), ("seed", "train.seed")):
            if key in summary and field in flat_config and summary[key] != flat_config[field]:
                return f"{key} is {_show(summary[key])} but config.json has {field}={_show(flat_config[field])}"
    for key in NUMERIC_KEYS:
        if key in summary and summary[key] is not None and not _number(summary[key]):
            return f"{key} is {_show(summary[key])}, not a number"
    if status == "finished":
        need = LEVEL_METRICS[level_of(summary)]
        absent = [k for k in need if k not in summary]
        if absent:
            return f"says finished but has no {' or '.join(absent)}"
        bad = [k for k in need if not math.isfinite(summary[k])]
        if bad:
            return f"says finished but {bad[0]} is {summary[bad[0]]}"
    return None


# ----------------------------------------------------------------------------- records
def make_run(config, summary, history: list[dict], *, path: str, name: str = "", config_error: str | None = None,
             summary_error: str | None = None) -> dict:
    """The record every reader returns (see the module docstring). ``config`` / ``summary``: the
    parsed config.json / summary.json (``summary`` None: no summary yet, status incomplete);
    ``config_error`` / ``summary_error``: why a file could not be parsed at all."""
    name = name or Path(path).name
    rec = {"config": None, "summary": {}, "history": list(history), "status": "incomplete", "error": "",
           "path": path, "name": name, "file": ""}

    def unreadable(file: str, reason: str) -> dict:
        return {**rec, "status": UNREADABLE, "error": f"{file}: {reason}", "file": f"{path}/{file}"}

    reason = config_error or check_config(config)
    if reason:
        return unreadable("config.json", reason)
    rec["config"] = _drop_unused({**_defaults(), **flatten(config)})
    if summary is None and summary_error is None:
        return rec
    reason = summary_error or check_summary(summary, rec["config"])
    if reason:
        return unreadable("summary.json", reason)
    rec["summary"] = dict(summary)
    rec["status"] = summary["status"]
    rec["error"] = str(summary.get("error") or summary.get("message") or "")
    return rec


def read_json(path: Path):
    """-> (value, None) or (None, the one-line reason it cannot be read)."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        return None, f"cannot be read ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
    if not text.strip():
        return None, "is empty"
    try:
        return json.loads(text), None
    except json.JSONDecodeError as e:
        return None, f"is not valid JSON ({e.msg}: line {e.lineno} column {e.colno}; truncated?)"


def _skipped(rel_parts) -> bool:
    return any(p in ("wandb", "checkpoints") or p.startswith(".") for p in rel_parts)


RUN_FILES = ("config.json", "summary.json", "metrics.jsonl")


def load_runs(runs_dir) -> list[dict]:
    """Every run directory under ``runs_dir`` (itself included) -> records, unreadable ones included
    (``status == "unreadable"``; a folder with a summary.json or metrics.jsonl but no config.json
    is one too)."""
    root = Path(runs_dir)
    if not root.is_dir():
        raise RnnlabError(f"runs directory {root} not found; pass --runs=DIR, a folder of run directories")
    dirs = {p.parent for f in RUN_FILES for p in root.rglob(f) if not _skipped(p.relative_to(root).parts[:-1])}
    runs = []
    for d in sorted(dirs, key=lambda d: d / "config.json"):
        rel = d.relative_to(root).parts
        config, config_error = read_json(d / "config.json") if (d / "config.json").exists() else (None, "is missing")
        summary, summary_error = read_json(d / "summary.json") if (d / "summary.json").exists() else (None, None)
        runs.append(make_run(config, summary, read_jsonl(d / "metrics.jsonl"), path=str(d), name="/".join(rel) or root.name,
                             config_error=config_error, summary_error=summary_error))
    if not runs:
        raise RnnlabError(f"no run directories (config.json) under {root}; train or sweep into it first")
    return runs


def readable(runs) -> list[dict]:
    """The records whose files passed the checks (the only ones a table or a plot uses)."""
    return [r for r in runs if r["status"] != UNREADABLE]


def unreadable_runs(runs) -> list[dict]:
    """[{"path", "file", "reason"}] of the runs left out of every mean, in load order."""
    return [{"path": r["path"], "file": r["file"], "reason": r["error"]} for r in runs if r["status"] == UNREADABLE]


def searched_fields(runs_dir) -> list[str]:
    """The randomly searched fields of a study: the keys of ``sweep.json``'s ``sweep["random"]``
    (the study's get_sweep()); [] when there is no sweep.json or no random part."""
    path = Path(runs_dir) / "sweep.json"
    if not path.exists():
        return []
    index, reason = read_json(path)
    if reason:
        raise RnnlabError(f"{path} {reason}; re-run the sweep command to rewrite it, or pass --select=FIELD,...")
    sweep = index.get("sweep") if isinstance(index, dict) else None
    random = sweep.get("random") if isinstance(sweep, dict) else None
    if random is None:
        return []
    if not isinstance(random, dict) or not all(isinstance(k, str) for k in random):
        raise RnnlabError(f"{path}: sweep.random is {_show(random)}, expected {{field: distribution}}; "
                          f"pass --select=FIELD,... instead")
    return list(random)
