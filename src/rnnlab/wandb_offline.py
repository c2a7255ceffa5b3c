"""W&B's offline files read back, and what they lack compared with the run directory.

A run directory is the source of truth (convention 10); W&B mirrors it. ``read_wandb_offline`` reads
what W&B stored offline for a run (its ``<workdir>/wandb/offline-run-*-<id>/run-<id>.wandb`` files,
one per process that trained it) without a server or the CLI; ``history_rows`` turns metrics.jsonl
into the rows W&B keeps (one per step: the records of that step merged), and ``first_missing``
finds the first of them that W&B lacks or holds with other values, from which ``WandbLogger``
re-sends them (on resume and when a finished run is re-run).

Why a reader of our own: wandb 0.31 ships no Python reader of its transaction log any more (the
``wandb.sdk.internal.datastore`` module of wandb < 0.19 went with the move to the Go ``wandb-core``);
the only reader left is ``wandb leet inspect --json`` (a subcommand of its terminal UI, a
subprocess per file, output not documented as stable). The test suite checks that ours gives the
same rows as that one.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

WANDB_RUN_FILE = "wandb_run.json"


# A .wandb file (wandb >= 0.16, still in 0.31) is a LevelDB-style log: a 7-byte header
# (b":W&B", magic 0xBEE1, version 0), then 32 KiB blocks of chunks, each with a 7-byte header
# (crc32 of type + data, length, type: 1 full, 2 first, 3 middle, 4 last); each record is a
# serialized wandb_internal_pb2.Record. `wandb leet inspect --json` prints the same records.
_LOG_BLOCK, _LOG_HEADER = 32768, 7


def iter_wandb_records(path):
    """Yield the ``wandb_internal_pb2.Record`` protobufs of one ``run-<id>.wandb`` file, in order
    (stops at a torn or corrupt tail, as a killed run can leave)."""
    import struct
    import zlib

    from wandb.proto import wandb_internal_pb2 as pb

    data = Path(path).read_bytes()
    ident, magic, version = struct.unpack("<4sHB", data[:7])
    if ident != b":W&B" or magic != 0xBEE1:
        raise ValueError(f"{path} is not a W&B transaction log (header {data[:7]!r})")
    i, buf = _LOG_HEADER, b""
    while i + _LOG_HEADER <= len(data):
        left = _LOG_BLOCK - i % _LOG_BLOCK
        if left < _LOG_HEADER:  # block trailer padding
            i += left
            continue
        crc, length, kind = struct.unpack("<IHB", data[i:i + _LOG_HEADER])
        chunk = data[i + _LOG_HEADER:i + _LOG_HEADER + length]
        if kind == 0 or len(chunk) < length or zlib.crc32(bytes([kind]) + chunk) & 0xFFFFFFFF != crc:
            return
        i += _LOG_HEADER + length
        if kind in (2, 3):
            buf += chunk
            continue
        rec = pb.Record()
        rec.ParseFromString(buf + chunk if kind == 4 else chunk)
        buf = b""
        yield rec


def _items(items) -> dict:
    """History / summary / config items -> nested plain dict (values are JSON strings)."""
    out: dict = {}
    for it in items:
        keys = list(it.nested_key) or [it.key]
        d = out
        for k in keys[:-1]:
            d = d.setdefault(k, {})
        d[keys[-1]] = json.loads(it.value_json)
    return out


def read_wandb_offline(workdir, run_id: str | None = None) -> dict:
    """Read back what W&B stored for a run directory from its offline files (no server, no CLI).

    Returns ``{"id", "project", "group", "name", "tags", "config", "history", "summary", "files"}``:
    ``history`` is one dict per logged step (``_step``, ``_runtime``, ``_timestamp`` and the
    metrics), ``config`` and ``summary`` the last values. The segments of a resumed run (one
    ``offline-run-*-<id>`` folder per process) are merged in order, each dropping the earlier
    rows from its first step on, as ``JSONLLogger`` does with metrics.jsonl.
    """
    workdir = Path(workdir)
    if run_id is None:
        run_id = json.loads((workdir / WANDB_RUN_FILE).read_text())["id"]
    files = sorted((workdir / "wandb").glob(f"*run-*-{run_id}/run-{run_id}.wandb"))
    if not files:
        raise FileNotFoundError(f"no W&B files for run {run_id} under {workdir / 'wandb'}")
    out = {"id": run_id, "project": "", "group": "", "name": "", "tags": [], "config": {}, "history": [],
           "summary": {}, "files": [str(f) for f in files]}
    for f in files:
        rows = []
        for rec in iter_wandb_records(f):
            kind = rec.WhichOneof("record_type")
            if kind == "run":
                r = rec.run
                out.update(project=r.project, group=r.run_group, name=r.display_name, tags=list(r.tags))
                out["config"].update({k: v for k, v in _items(r.config.update).items() if k != "_wandb"})
            elif kind == "config":
                out["config"].update({k: v for k, v in _items(rec.config.update).items() if k != "_wandb"})
            elif kind == "history":
                rows.append(_items(rec.history.item))
            elif kind == "summary":
                out["summary"].update(_items(rec.summary.update))
        if rows:
            first = rows[0].get("_step", 0)
            out["history"] = [r for r in out["history"] if r.get("_step", 0) < first] + rows
    return out


def history_rows(records: list[dict]) -> list[dict]:
    """metrics.jsonl records -> one row per step, the records of a step merged in order, by step
    (what W&B's history holds for them: its ``_step`` is our ``step``)."""
    rows: dict[int, dict] = {}
    for r in records:
        rows.setdefault(int(r["step"]), {}).update(r)
    return [rows[s] for s in sorted(rows)]


def _number(v):
    """metrics.jsonl writes non-finite floats as 'nan' / 'inf' / '-inf' (JSON has none): back to floats."""
    if isinstance(v, str) and v in ("nan", "inf", "-inf", "NaN", "Infinity", "-Infinity"):
        return float(v.replace("Infinity", "inf"))
    return v


def same_value(a, b) -> bool:
    a, b = _number(a), _number(b)
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def as_logged(row: dict) -> dict:
    """A history row as ``WandbLogger.log`` sends it: the metrics without ``step``, floats as floats."""
    return {k: _number(v) for k, v in row.items() if k != "step"}


def first_missing(rows: list[dict], history: list[dict]) -> int:
    """Index of the first row (``history_rows``) that W&B's ``history`` lacks or holds with another
    value; ``len(rows)`` when it holds them all."""
    have = {int(h.get("_step", -1)): h for h in history}
    for i, r in enumerate(rows):
        h = have.get(int(r["step"]))
        if h is None or any(k not in h or not same_value(h[k], v) for k, v in r.items() if k != "step"):
            return i
    return len(rows)


def offline_history(workdir, run_id: str) -> list[dict]:
    """The merged history of the run's offline files ([] when there are none yet)."""
    try:
        return read_wandb_offline(workdir, run_id)["history"]
    except (FileNotFoundError, ValueError, OSError):
        return []


def wait_for_exit_record(path, timeout: float = 30.0) -> bool:
    """Wait until the offline file ``path`` holds its run's exit record (True), at most ``timeout``
    seconds (False). ``wandb.finish()`` returns before wandb-core has written the file (measured:
    the file is still its 7-byte header when finish returns, complete ~50 ms later on an idle CPU),
    so a process killed, or a reader, right after it would find the run's records missing."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if any(r.WhichOneof("record_type") == "exit" for r in iter_wandb_records(path)):
                return True
        except (OSError, ValueError):
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
