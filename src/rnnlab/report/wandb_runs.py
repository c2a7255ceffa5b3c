"""W&B as a source of runs: the public API's runs -> the records of ``runs_io.make_run``.

The same checks apply as for run directories: a W&B run whose config or summary is inconsistent
is a record with status ``unreadable`` (listed, never averaged).
"""
from __future__ import annotations

import json

from .. import RnnlabError
from .runs_io import make_run


def _plain(obj):
    """W&B API objects (SummarySubDict, ...) -> plain JSON values."""
    try:
        return json.loads(json.dumps(obj, default=lambda o: dict(o) if hasattr(o, "keys") else str(o)))
    except (TypeError, ValueError):
        return obj


# W&B run states -> our status when a run has no summary status (it never finished)
WANDB_STATES = {"finished": "finished", "running": "incomplete", "pending": "incomplete",
                "crashed": "failed", "failed": "failed", "killed": "failed"}


def run_from_wandb(run) -> dict:
    """One ``wandb.apis.public.Run`` (or anything with ``config``, ``summary``, ``state``, ``name``,
    ``path`` and ``scan_history()``) -> the record of ``make_run``; history rows become
    metrics.jsonl records (``_step`` -> ``step``, W&B's own ``_`` keys dropped)."""
    config = {k: v for k, v in _plain(dict(run.config)).items() if not k.startswith("_")}
    raw = getattr(run.summary, "_json_dict", None)
    summary = _plain(dict(raw) if raw is not None else {k: run.summary[k] for k in run.summary.keys()})
    summary = {k: v for k, v in summary.items() if not k.startswith("_")}
    if "status" not in summary:
        summary["status"] = WANDB_STATES.get(getattr(run, "state", ""), "incomplete")
        if summary["status"] == "finished":
            summary["status"] = "incomplete"  # finished without our summary: not a completed run
    history = []
    for row in run.scan_history():
        if "_step" not in row:
            continue
        rec = {"step": int(row["_step"])}
        rec.update({k: v for k, v in row.items() if not k.startswith("_") and v is not None})
        if len(rec) > 1:
            history.append(rec)
    path = getattr(run, "path", None)
    path = "/".join(path) if isinstance(path, (list, tuple)) else str(path or run.id)
    return make_run(config, summary, history, path=f"wandb:{path}", name=run.name)


def runs_from_wandb(path: str, filters: dict | None = None, api=None) -> list[dict]:
    """Runs of a W&B project (``entity/project``; needs network and an API key), optionally
    filtered (W&B's MongoDB-style filters, e.g. ``{"group": "quickstart"}``)."""
    if api is None:
        try:
            import wandb

            api = wandb.Api(timeout=60)
        except Exception as e:
            raise RnnlabError(f"cannot reach W&B for {path!r} ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                              f"log in (wandb login) or read the run directories with --runs=DIR") from None
    try:
        runs = [run_from_wandb(r) for r in api.runs(path, filters=filters or {})]
    except RnnlabError:
        raise
    except Exception as e:
        first = str(e).splitlines()[0] if str(e) else ""
        raise RnnlabError(f"reading W&B runs of {path!r} failed ({type(e).__name__}: {first}); "
                          f"check entity/project and your login, or use --runs=DIR") from None
    if not runs:
        raise RnnlabError(f"no runs in W&B project {path!r}" + (f" matching {filters}" if filters else ""))
    return runs
