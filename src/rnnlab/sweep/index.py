"""The study's index ``<workdir>/sweep.json`` (members, overrides, status) and its comparison table."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from .. import RnnlabError
from ..tracking import _jsonable
from .spec import Member
from .status import member_status

INDEX_FILE = "sweep.json"
TABLE_COLUMNS = ("name", "cell", "train_mode", "seed", "num_params", "test_ppl", "optimal_ppl", "wall_s", "status")


def write_index(workdir, members: list[Member], *, config_file: str, cli: dict, sweep: dict, vmap_seeds: bool,
                extra: dict | None = None, running=(), draws: list[dict] | None = None) -> dict:
    """Write <workdir>/sweep.json: the members with their status from disk (``running`` while this
    process trains them; a killed sweep leaves that, the next run recomputes it), and the rows
    drawn for the random part (``random_draws``, read back by ``stored_draws``). A member's
    ``job_id`` (the SLURM job that last took it, rnnlab.launch.slurm) is kept unless ``extra``
    gives another."""
    jobs = stored_jobs(workdir)
    extra = {m.name: {**({"job_id": jobs[m.name]} if m.name in jobs else {}), **(extra or {}).get(m.name, {})}
             for m in members}
    index = {
        "study": Path(workdir).name, "config_file": config_file, "cli_overrides": cli, "sweep": sweep,
        "vmap_seeds": vmap_seeds, "updated": time.strftime("%Y-%m-%dT%H:%M:%S"),
        **({"random_draws": draws} if draws is not None else {}),
        "members": [{"name": m.name, "dir": m.name, "overrides": m.overrides, **member_status(Path(workdir) / m.name),
                     **((extra or {}).get(m.name, {})), **({"status": "running"} if m.name in running else {})}
                    for m in members],
    }
    path = Path(workdir) / INDEX_FILE
    tmp = path.with_name(f"{INDEX_FILE}.{os.getpid()}.tmp")  # several agents may share the study directory
    tmp.write_text(json.dumps(index, indent=2, sort_keys=True, default=_jsonable))
    os.replace(tmp, path)
    return index


def stored_jobs(workdir) -> dict:
    """{member name: job id} of the members sweep.json records a SLURM job for."""
    try:
        old = json.loads((Path(workdir) / INDEX_FILE).read_text())
        return {m["name"]: m["job_id"] for m in old.get("members", []) if m.get("job_id")}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return {}


def stored_draws(workdir, sweep: dict) -> list[dict] | None:
    """The random rows a previous run of this study recorded in sweep.json, when it ran the same
    random part (same distributions, samples and seed); else None. Re-running a study thus
    reproduces its members even if numpy's generator ever changed its stream."""
    try:
        old = json.loads((Path(workdir) / INDEX_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    keys = ("random", "samples", "seed")
    same = {k: sweep.get(k) for k in keys}
    if not isinstance(old, dict) or json.loads(json.dumps(same, default=_jsonable)) != {
            k: (old.get("sweep") or {}).get(k) for k in keys}:
        return None
    rows = old.get("random_draws")
    fields = set(sweep.get("random") or {})
    if (not isinstance(rows, list) or len(rows) != sweep.get("samples")
            or not all(isinstance(r, dict) and set(r) == fields for r in rows)):
        return None
    return rows


def summaries(workdir, index: dict | None = None) -> list[dict]:
    """Each member's summary.json (or its status) in study order."""
    workdir = Path(workdir)
    index = index or json.loads((workdir / INDEX_FILE).read_text())
    out = []
    for m in index["members"]:
        path = workdir / m["dir"] / "summary.json"
        s = json.loads(path.read_text()) if path.exists() else {}
        out.append({"name": m["name"], **s, "status": s.get("status", m.get("status", "pending"))})
    return out


def table(workdir, index: dict | None = None) -> str:
    """The study's comparison table: ``report.build_table`` (mean +- std over seeds) when the
    report module is there, else one row per member (``simple_table``)."""
    try:
        from ..report import build_table
    except ImportError:
        build_table = None
    if build_table is not None:
        try:
            return build_table(str(workdir))[1]
        except RnnlabError:
            pass
    return simple_table(summaries(workdir, index))


def simple_table(rows: list[dict]) -> str:
    """A markdown table of the members (cell, mode, seed, #params, test ppl, optimal ppl, wall s)."""
    def cell(r, k):
        v = r.get(k, "")
        if isinstance(v, float):
            return f"{v:.1f}" if k == "wall_s" else f"{v:.4f}"
        if k == "status" and v in ("failed", "diverged"):
            return f"{v}: {r.get('error', '')}"[:80]
        return str(v)

    cols = [c for c in TABLE_COLUMNS if any(c in r for r in rows)]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(cell(r, c) for c in cols) + " |" for r in rows]
    return "\n".join(lines)
