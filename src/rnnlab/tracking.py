"""Loggers (convention 10): the training loop's only way to report.

``Logger`` protocol: ``log(step, metrics)``, ``summary(summary)``, ``close()``. The run directory's
``metrics.jsonl`` (one JSON object per log step) and ``summary.json`` are the source of truth; other
loggers mirror them.
"""
from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Protocol


class Logger(Protocol):
    def log(self, step: int, metrics: dict) -> None: ...

    def summary(self, summary: dict) -> None: ...

    def close(self) -> None: ...


def _jsonable(v):
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)  # JSON has no nan/inf; keep them readable
    return v


def write_json(path, obj) -> None:
    """Write JSON atomically (temp file + rename), so a crash never leaves half a file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True, default=_jsonable)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_jsonl(path) -> list[dict]:
    out = []
    p = Path(path)
    if not p.exists():
        return out
    for line in p.read_text().splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            break  # a torn last line (killed mid-write): everything before it is intact
    return out


class JSONLLogger:
    """Appends one JSON object per log call to ``metrics.jsonl``. On resume from step s, lines
    after s are dropped first (they will be logged again), so the file equals an uninterrupted run's."""

    def __init__(self, workdir, resume_step: int | None = None):
        self.path = Path(workdir) / "metrics.jsonl"
        self.summary_path = Path(workdir) / "summary.json"
        if resume_step is None:
            self.path.write_text("")
        else:
            keep = [r for r in read_jsonl(self.path) if r.get("step", 0) <= resume_step]
            self.path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in keep))
        self._f = open(self.path, "a")

    def log(self, step, metrics):
        rec = {"step": int(step), **{k: _jsonable(v) for k, v in metrics.items()}}
        self._f.write(json.dumps(rec, sort_keys=True) + "\n")
        self._f.flush()

    def summary(self, summary):
        write_json(self.summary_path, summary)

    def close(self):
        self._f.close()


class ProgressLogger:
    """A tqdm progress bar on stderr: step, loss, perplexity, tokens/s; validation lines printed."""

    def __init__(self, total_steps: int, initial: int = 0, enabled: bool = True, desc: str = "train"):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total_steps, initial=initial, disable=not enabled, desc=desc,
                        dynamic_ncols=True, mininterval=1.0, file=sys.stderr)
        self.last = initial

    def log(self, step, metrics):
        if "train/loss" in metrics:
            self.bar.update(step - self.last)
            self.last = step
            self.bar.set_postfix(loss=f"{metrics['train/loss']:.3f}", ppl=f"{metrics['train/ppl']:.2f}",
                                 tok_s=f"{metrics.get('train/tokens_per_sec', 0):.0f}", refresh=False)
        if "val/ppl" in metrics:
            self.bar.write(f"step {step}: val ppl {metrics['val/ppl']:.3f}", file=sys.stderr)

    def summary(self, summary):
        pass

    def close(self):
        self.bar.close()


class MultiLogger:
    def __init__(self, loggers):
        self.loggers = list(loggers)

    def log(self, step, metrics):
        for lg in self.loggers:
            lg.log(step, metrics)

    def summary(self, summary):
        for lg in self.loggers:
            lg.summary(summary)

    def close(self):
        for lg in self.loggers:
            lg.close()


def make_loggers(cfg, workdir, *, total_steps: int, resume_step: int | None, run_name: str) -> MultiLogger:
    loggers = [JSONLLogger(workdir, resume_step)]
    loggers.append(ProgressLogger(total_steps, resume_step or 0, enabled=bool(cfg.train.progress)))
    return MultiLogger(loggers)
