"""Loggers (convention 10): the training loop's only way to report.

``Logger`` protocol: ``log(step, metrics)``, ``summary(summary)``, ``close()`` (and, optionally,
``status(text)``: what the run is doing when no step moves: compiling, the final evaluation). The
run directory's ``metrics.jsonl`` (one JSON object per log step) and ``summary.json`` are the source
of truth; other loggers mirror them (W&B: completed from metrics.jsonl on resume and when a finished
run is re-run, so after any kill its records equal metrics.jsonl; ``wandb_offline.py``).
"""
from __future__ import annotations

import json
import math
import os
import random
import string
import sys
from pathlib import Path
from typing import Protocol

from .wandb_offline import (WANDB_RUN_FILE, as_logged, first_missing, history_rows, iter_wandb_records,  # noqa: F401
                            offline_history, read_wandb_offline, same_value, wait_for_exit_record)


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
            text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in keep)
            if not self.path.exists() or self.path.read_text() != text:  # atomic: a kill here loses nothing
                tmp = self.path.with_name(self.path.name + ".tmp")
                tmp.write_text(text)
                os.replace(tmp, self.path)
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
    """A tqdm progress bar on stderr: step, loss, perplexity, tokens/s; validation lines printed.
    While no step moves it says why in its description: ``run (compiling)`` from the start until
    the first step is done, ``run (final evaluation)`` during the last validation and test passes."""

    def __init__(self, total_steps: int, initial: int = 0, enabled: bool = True, desc: str = "train"):
        from tqdm.auto import tqdm

        self.desc = desc
        self.bar = tqdm(total=total_steps, initial=initial, disable=not enabled, desc=f"{desc} (compiling)",
                        dynamic_ncols=True, mininterval=1.0, file=sys.stderr)
        self.last = initial

    def status(self, text: str) -> None:
        """Show ``text`` next to the run's name ('' = none)."""
        self.bar.set_description_str(f"{self.desc} ({text})" if text else self.desc, refresh=True)

    def log(self, step, metrics):
        if "train/loss" in metrics:
            self.bar.update(step - self.last)
            self.last = step
            self.bar.set_postfix(loss=f"{metrics['train/loss']:.3f}", ppl=f"{metrics['train/ppl']:.2f}",
                                 tok_s=f"{metrics.get('train/tokens_per_sec', 0):.0f}", refresh=False)
        if "val/ppl" in metrics and not self.bar.disable:
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

    def status(self, text: str) -> None:
        for lg in self.loggers:
            if hasattr(lg, "status"):
                lg.status(text)

    def summary(self, summary):
        for lg in self.loggers:
            lg.summary(summary)

    def close(self):
        for lg in self.loggers:
            lg.close()


# ----------------------------------------------------------------------------- W&B
# W&B mirrors the run directory (convention 10): config = config.json, one history row per log
# step (the records of metrics.jsonl that share a step, merged), summary = summary.json. Files go
# to <workdir>/wandb/; the run id is kept in <workdir>/wandb_run.json so a resumed run continues
# the same W&B run. W&B never stops training: any failure is one warning line on stderr, after
# which the run goes on with metrics.jsonl alone.


def _warn(msg: str) -> None:
    print(f"warning: {msg}", file=sys.stderr, flush=True)


def _one_line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return f"{type(e).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def _finish_timeout() -> float:
    return float(os.environ.get("WANDB_FINISH_TIMEOUT", 300))


def _has_wandb_key() -> bool:
    """True when an API key is available (WANDB_API_KEY or a `wandb login` entry in ~/.netrc)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        import netrc

        host = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai").split("//")[-1].split("/")[0]
        path = os.environ.get("NETRC", os.path.expanduser("~/.netrc"))
        return os.path.exists(path) and netrc.netrc(path).authenticators(host) is not None
    except Exception:
        return False


class WandbLogger:
    """Mirror of the run on W&B: project ``wandb.project``, group ``wandb.group`` (the study), tags
    ``[cell, mode]``, name ``wandb.name`` or the run name, ``dir=workdir``.

    Modes (``cfg.wandb.mode``; ``WANDB_MODE=offline`` / ``disabled`` in the environment turn it down):
    ``offline`` writes ``<workdir>/wandb/offline-run-*/run-<id>.wandb`` (``wandb sync`` uploads it
    later); ``online`` streams to the server, falling back to offline (one warning line) when there
    is no API key or ``wandb.init`` fails or times out (``WANDB_INIT_TIMEOUT``, default 60 s).
    A resumed run (``resume_step`` given) reuses the id in ``wandb_run.json``: offline, each process
    writes one more ``offline-run-*-<id>`` folder (``read_wandb_offline`` merges them like
    metrics.jsonl); online, W&B keeps the steps it already has and drops re-logged ones. Either way
    it first re-sends the metrics.jsonl rows W&B lacks (``_complete``): a process killed with
    SIGKILL never flushes its W&B records, so without this the rows it logged before its last
    checkpoint would be missing for good.
    """

    def __init__(self, cfg, workdir, *, run_name: str, resume_step: int | None = None):
        self.run = None
        self.workdir = Path(workdir)
        self.finished = False
        try:
            self._init(cfg, run_name, resume_step)
        except Exception as e:
            _warn(f"W&B disabled for this run: {_one_line(e)}; metrics.jsonl is unaffected")
            self.run = None

    def _init(self, cfg, run_name, resume_step):
        import wandb

        mode = cfg.wandb.mode
        id_path = self.workdir / WANDB_RUN_FILE
        run_id = None
        if resume_step is not None and id_path.exists():
            try:
                run_id = json.loads(id_path.read_text())["id"]
            except (OSError, ValueError, KeyError, TypeError):
                run_id = None
        if not run_id and os.environ.get("WANDB_SWEEP_ID") and os.environ.get("WANDB_RUN_ID"):
            run_id = os.environ["WANDB_RUN_ID"]  # launched by `wandb agent`: the run the sweep assigned
        if not run_id:  # W&B's id alphabet: 8 characters of [a-z0-9]
            rng = random.SystemRandom()
            run_id = "".join(rng.choice(string.ascii_lowercase + string.digits) for _ in range(8))
        from .config import to_dict

        kwargs = dict(
            project=cfg.wandb.project, entity=cfg.wandb.entity or None, group=cfg.wandb.group or None,
            name=cfg.wandb.name or run_name, tags=[str(cfg.model.cell), str(cfg.train.mode)],
            config=to_dict(cfg), dir=str(self.workdir), id=run_id, resume="allow", reinit="create_new",
        )
        timeout = float(os.environ.get("WANDB_INIT_TIMEOUT", 60))
        if mode == "online" and os.environ.get("WANDB_MODE", "").lower() in ("offline", "dryrun"):
            mode = "offline"  # the environment may turn W&B down (offline, disabled), never up
        if mode == "online" and not _has_wandb_key():
            _warn("W&B online needs an API key (wandb login or WANDB_API_KEY); logging offline instead")
            mode = "offline"
        for attempt in ([mode, "offline"] if mode == "online" else [mode]):
            settings = wandb.Settings(silent=True, console="off", init_timeout=timeout, finish_timeout=_finish_timeout())
            try:
                self.run = wandb.init(mode=attempt, settings=settings, **kwargs)
                break
            except Exception as e:
                nxt = "logging offline instead" if attempt == "online" else "W&B disabled for this run"
                _warn(f"W&B init ({attempt}) failed: {_one_line(e)}; {nxt}; metrics.jsonl is unaffected")
        if self.run is not None:
            self.mode = attempt
            write_json(id_path, {"id": self.run.id, "project": cfg.wandb.project, "entity": cfg.wandb.entity,
                                 "mode": attempt})
            if resume_step is not None:
                self._complete()

    def _complete(self) -> None:
        """Send every metrics.jsonl row (``history_rows``; the file holds the rows up to the resumed
        checkpoint) that W&B lacks. Offline, what W&B holds is read back from this run's earlier
        offline files, and the rows from the first one missing or different on are sent again (the
        newest file wins from its first step on, in ``read_wandb_offline`` as in ``wandb sync``);
        online, the server's history is not read back: the rows from the run's resumed step on."""
        rows = history_rows(read_jsonl(self.workdir / "metrics.jsonl"))
        if self.mode == "offline":
            start = first_missing(rows, offline_history(self.workdir, self.run.id))
        else:
            have = int(getattr(self.run, "step", 0) or 0)
            start = next((i for i, r in enumerate(rows) if r["step"] >= have), len(rows))
        for r in rows[start:]:
            self._call("log", lambda r=r: self.run.log(as_logged(r), step=int(r["step"])))

    def _call(self, what, fn):
        if self.run is None:
            return
        try:
            fn()
        except Exception as e:
            _warn(f"W&B {what} failed: {_one_line(e)}; W&B disabled for the rest of this run")
            run, self.run = self.run, None
            try:
                run.finish(exit_code=1)
            except Exception:
                pass

    def log(self, step, metrics):
        rec = {k: (v.item() if hasattr(v, "item") else v) for k, v in metrics.items()}
        self._call("log", lambda: self.run.log(rec, step=int(step)))

    def summary(self, summary):
        self.finished = summary.get("status") == "finished"
        self._call("summary", lambda: self.run.summary.update(summary))
        if summary.get("status") == "preempted":  # W&B's preemption rule: marked, then a non-zero exit (close)
            self._call("mark_preempting", lambda: self.run.mark_preempting())  # so a W&B sweep requeues the run

    def close(self):
        # No summary with status finished means the run stopped early: W&B marks it failed.
        log_file = None
        if self.run is not None and getattr(self, "mode", "") == "offline":
            try:
                log_file = Path(self.run.dir).parent / f"run-{self.run.id}.wandb"
            except Exception:  # noqa: BLE001  (W&B internals: never stop the run over them)
                log_file = None
        self._call("finish", lambda: self.run.finish(exit_code=0 if self.finished else 1))
        if log_file is not None and self.run is not None and not wait_for_exit_record(log_file, _finish_timeout()):
            _warn(f"W&B has not finished writing {log_file} yet; metrics.jsonl is unaffected (the next run of this "
                  f"command completes the W&B files)")
        self.run = None


def _wandb_on(cfg) -> bool:
    return cfg.wandb.mode != "disabled" and os.environ.get("WANDB_MODE", "").lower() != "disabled"


def complete_wandb_mirror(cfg, workdir, *, run_name: str) -> None:
    """A finished run re-run: if its offline W&B records lack metrics.jsonl rows or summary.json
    values (a kill after summary.json was written and before W&B flushed), send them in one more
    offline segment that ends with exit code 0. Nothing to do when they are complete, W&B is off, the
    run never had a W&B mirror, or it is online (the server is not read back)."""
    workdir = Path(workdir)
    try:
        info = json.loads((workdir / WANDB_RUN_FILE).read_text())
        summary = json.loads((workdir / "summary.json").read_text())
    except (OSError, ValueError):
        return
    if not _wandb_on(cfg) or info.get("mode") != "offline":
        return
    rows = history_rows(read_jsonl(workdir / "metrics.jsonl"))
    try:
        wb = read_wandb_offline(workdir, info["id"])
    except (FileNotFoundError, ValueError, OSError, KeyError):
        wb = {"history": [], "summary": {}}
    stored = json.loads(json.dumps(summary, default=_jsonable))
    logged = {k for r in rows for k in r}  # W&B's summary keeps the last logged value of these (wall_s)
    if first_missing(rows, wb["history"]) == len(rows) and all(
            k in wb["summary"] and same_value(wb["summary"][k], v) for k, v in stored.items() if k not in logged):
        return
    logger = WandbLogger(cfg, workdir, run_name=run_name, resume_step=rows[-1]["step"] if rows else 0)
    logger.summary(summary)
    logger.close()


def make_loggers(cfg, workdir, *, total_steps: int, resume_step: int | None, run_name: str) -> MultiLogger:
    loggers = [JSONLLogger(workdir, resume_step)]
    loggers.append(ProgressLogger(total_steps, resume_step or 0, enabled=bool(cfg.train.progress), desc=run_name))
    if _wandb_on(cfg):
        loggers.append(WandbLogger(cfg, workdir, run_name=run_name, resume_step=resume_step))
    return MultiLogger(loggers)
