"""A member's state on disk (its run directory): finished / failed / diverged / running / partial /
pending, failure records, and clearing a failure before a retry."""
from __future__ import annotations

import json
import time
import traceback
from pathlib import Path

from ..config import to_dict
from ..tracking import write_json
from .locks import held_elsewhere
from .spec import Member, error_line


def member_status(run_dir) -> dict:
    """{'status': finished | failed | diverged | running (another process holds it) | partial (has a
    checkpoint) | pending, and the summary's key numbers}."""
    run_dir = Path(run_dir)
    path = run_dir / "summary.json"
    if path.exists():
        try:
            s = json.loads(path.read_text())
        except json.JSONDecodeError:
            s = {}
        if s.get("status") == "finished":
            return {"status": "finished", **{k: s[k] for k in ("test_ppl", "best_val_ppl", "wall_s") if k in s}}
        if s.get("status") in ("failed", "diverged"):  # diverged: non-finite loss (faults.py), not retried
            return {"status": s["status"], "error": s.get("error", "")}
    if held_elsewhere(run_dir):
        return {"status": "running"}
    if has_checkpoint(run_dir):
        return {"status": "partial"}
    return {"status": "pending"}


def record_failure(run_dir, member: Member, e: BaseException) -> str:
    """summary.json (status failed, the one-line error), error.txt (the traceback), and config.json
    when training never wrote it (so reports list the failed run)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    msg = error_line(e)
    if member_status(run_dir)["status"] == "diverged":  # training wrote summary.json (status diverged): keep it
        return msg
    if not (run_dir / "config.json").exists():
        write_json(run_dir / "config.json", to_dict(member.config))
    c = member.config
    write_json(run_dir / "summary.json", {
        "status": "failed", "error": msg, "run_name": member.name, "overrides": member.overrides,
        "cell": c.model.cell, "train_mode": c.train.mode, "seed": c.train.seed, "data": c.data.name,
        "hidden_size": c.model.hidden_size, "num_layers": c.model.num_layers,
        "failed_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    })
    (run_dir / "error.txt").write_text("".join(traceback.format_exception(type(e), e, e.__traceback__)))
    return msg


def has_checkpoint(run_dir) -> bool:
    latest = Path(run_dir) / "checkpoints" / "latest"
    return latest.is_dir() and any(p.name.isdigit() for p in latest.iterdir())


def stale_failure(run_dir) -> bool:
    """A failed member with no checkpoint: nothing of it is worth keeping."""
    return member_status(run_dir)["status"] == "failed" and not has_checkpoint(run_dir)


def clear_failure(run_dir) -> None:
    """Before a retry: drop the failed summary (so a killed retry does not look failed), and the
    config.json too when there is no checkpoint it would have to match."""
    run_dir = Path(run_dir)
    if member_status(run_dir)["status"] != "failed":
        return
    if not has_checkpoint(run_dir):
        (run_dir / "config.json").unlink(missing_ok=True)
    (run_dir / "summary.json").unlink()
