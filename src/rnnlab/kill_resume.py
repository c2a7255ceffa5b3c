"""Kill -9 a training run at random moments, re-run the same command, and check that it ends
exactly where an uninterrupted run ends.

    report = kill_resume("configs/quickstart.py", "runs/kill_resume", trials=10, seed=0)

One reference run trains uninterrupted. Each trial then runs the same command in its own run
directory, SIGKILLs it after a random time (drawn between the moment the reference run logged its
first metrics and its end, so kills land in train steps, validations and checkpoint saves), and
re-runs the same command, 1 to ``max_kills`` times, then lets it finish. A trial matches when its
summary.json equals the reference's (``params_sha256``, perplexities, validation history, every
field except timings and environment), its metrics.jsonl equals the reference's except the timing
fields, and no temporary checkpoint folder is left behind. ``points`` adds deterministic kills
through ``RNNLAB_KILL_AT`` (faults.py): e.g. ``("save:2", "step:30", "eval:1")`` kills the first
process inside its 2nd checkpoint save, the second at its 30th step, the third in its first
validation.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .faults import KILL_ENV
from .tracking import read_jsonl

# Fields that measure time or the machine, not the run.
METRIC_TIMING = {"train/tokens_per_sec", "wall_s"}
SUMMARY_TIMING = {"tokens_per_sec", "compile_s", "wall_s", "git_commit", "device", "jax_version", "flax_version",
                  "optax_version", "python_version", "run_name"}
# A small run: ~50 steps, a checkpoint every 5 steps, a log line every 5, two validations.
SMALL = ("--config.data.num_train=20000", "--config.data.num_valid=2000", "--config.data.num_test=2000",
         "--config.train.epochs=2", "--config.checkpoint.every_steps=5", "--config.train.log_every=5")
REPO = Path(__file__).resolve().parents[2]


def train_command(config: str, workdir, overrides=()) -> list[str]:
    """The CLI command of one run (quiet: no progress bar, no W&B)."""
    from .config import base_config

    quiet = ["--config.train.progress=False", "--config.wandb.mode=disabled"]
    if "free_running" in base_config().eval:  # end-of-run sampling metrics: slow, not what is tested here
        quiet.append("--config.eval.free_running=False")
    return [sys.executable, "-m", "experiments.train", f"--config={config}", f"--workdir={workdir}", *quiet,
            *overrides]


def _tmp_dirs(workdir) -> list[str]:
    ck = Path(workdir) / "checkpoints"
    return sorted(str(p.relative_to(workdir)) for p in ck.glob("*/*") if ".orbax-checkpoint-tmp" in p.name)


def run_once(cmd, *, kill_after: float | None = None, kill_at: str = "", timeout: float = 900.0,
             wait_for=None) -> dict:
    """Run ``cmd`` (in the repository root); SIGKILL it after ``kill_after`` seconds if it is still
    running; ``kill_at`` sets RNNLAB_KILL_AT. ``wait_for``: a path whose appearance is timed
    (``first_output_s``). -> {rc, killed, seconds, first_output_s, stderr}."""
    env = dict(os.environ)
    env.pop(KILL_ENV, None)
    if kill_at:
        env[KILL_ENV] = kill_at
    with tempfile.TemporaryFile() as err:
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=err)
        first = None
        killed = False
        deadline = t0 + (kill_after if kill_after is not None else timeout)
        while p.poll() is None:
            now = time.monotonic()
            if first is None and wait_for is not None and Path(wait_for).exists() and Path(wait_for).stat().st_size:
                first = now - t0
            if now >= deadline:
                if kill_after is not None:
                    p.send_signal(signal.SIGKILL)
                    killed = True
                else:
                    p.kill()
                p.wait()
                break
            time.sleep(0.02)
        seconds = time.monotonic() - t0
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    return {"rc": p.returncode, "killed": killed or p.returncode == -signal.SIGKILL, "seconds": seconds,
            "first_output_s": first, "stderr": stderr[-2000:]}


def compare_runs(ref, run) -> list[str]:
    """Differences between two finished run directories (empty = equal): summary.json except timing
    and environment fields, metrics.jsonl except timing fields, leftover temporary checkpoints."""
    ref, run = Path(ref), Path(run)
    diffs = []
    try:
        a = json.loads((ref / "summary.json").read_text())
        b = json.loads((run / "summary.json").read_text())
    except (OSError, ValueError) as e:
        return [f"summary.json unreadable: {e}"]
    for k in sorted(set(a) | set(b)):
        if k not in SUMMARY_TIMING and a.get(k) != b.get(k):
            diffs.append(f"summary {k}: {a.get(k)!r} != {b.get(k)!r}")
    ma = [{k: v for k, v in r.items() if k not in METRIC_TIMING} for r in read_jsonl(ref / "metrics.jsonl")]
    mb = [{k: v for k, v in r.items() if k not in METRIC_TIMING} for r in read_jsonl(run / "metrics.jsonl")]
    if ma != mb:
        first = next((i for i, (x, y) in enumerate(zip(ma, mb)) if x != y), min(len(ma), len(mb)))
        diffs.append(f"metrics.jsonl differs ({len(ma)} vs {len(mb)} lines; first difference at line {first + 1})")
    if _tmp_dirs(run):
        diffs.append(f"temporary checkpoint folders left: {_tmp_dirs(run)}")
    return diffs


def _kill_record(res: dict, workdir, spec: str | float) -> dict:
    ck = Path(workdir) / "checkpoints" / "latest"
    steps = sorted(int(p.name) for p in ck.iterdir() if p.name.isdigit()) if ck.is_dir() else []
    return {"kill": spec, "killed": res["killed"], "rc": res["rc"], "seconds": round(res["seconds"], 2),
            "in_save": bool(_tmp_dirs(workdir)), "latest_checkpoint": steps[-1] if steps else None}


def run_trial(cmd_for, workdir, kills: list, *, timeout: float = 900.0) -> dict:
    """One trial: each entry of ``kills`` (seconds, or a RNNLAB_KILL_AT spec) starts the command and
    kills it; then the command runs to its end. -> {kills: [...], final_rc, stderr}."""
    workdir = Path(workdir)
    shutil.rmtree(workdir, ignore_errors=True)
    cmd = cmd_for(workdir)
    out = []
    for k in kills:
        if isinstance(k, str):
            res = run_once(cmd, kill_at=k, timeout=timeout)
        else:
            res = run_once(cmd, kill_after=float(k), timeout=timeout)
        out.append(_kill_record(res, workdir, k))
        if not res["killed"]:  # it finished (or failed) before the kill came
            if res["rc"] != 0:
                return {"kills": out, "final_rc": res["rc"], "stderr": res["stderr"]}
            break
    final = run_once(cmd, timeout=timeout)
    return {"kills": out, "final_rc": final["rc"], "stderr": final["stderr"]}


def kill_resume(config: str, workdir, *, trials: int = 5, seed: int = 0, max_kills: int = 3, overrides=SMALL,
                points=(), timeout: float = 900.0, log=print, reference=None) -> dict:
    """The experiment (see the module docstring). ``points``: one extra trial killed at each
    RNNLAB_KILL_AT spec in turn. ``reference``: a finished run directory of the same config to
    compare with (default: run one; random kill times need it). -> {matched, tried, reference_s, trials}."""
    root = Path(workdir)
    root.mkdir(parents=True, exist_ok=True)

    def cmd_for(wd):
        return train_command(config, wd, overrides)

    if reference is not None and trials:
        raise ValueError("random kill times are drawn from the reference run's duration: run it here (reference=None)")
    if reference is None:
        ref = root / "reference"
        shutil.rmtree(ref, ignore_errors=True)
        r = run_once(cmd_for(ref), timeout=timeout, wait_for=ref / "metrics.jsonl")
        if r["rc"] != 0:
            raise RuntimeError(f"the reference run failed (rc {r['rc']}): {r['stderr'][-500:]}")
        start = r["first_output_s"] or 0.3 * r["seconds"]
        log(f"reference: {r['seconds']:.1f} s (first metrics after {start:.1f} s), "
            f"params_sha256 {json.loads((ref / 'summary.json').read_text())['params_sha256'][:16]}")
    else:
        ref, r, start = Path(reference), {"seconds": None}, None
    rng = np.random.default_rng(seed)
    plans = []
    if points:
        plans.append(("points", list(points)))
    for i in range(trials):
        n = int(rng.integers(1, max_kills + 1))
        plans.append((f"random_{i}", [round(float(rng.uniform(start, r["seconds"])), 2) for _ in range(n)]))
    results = []
    for name, kills in plans:
        res = run_trial(cmd_for, root / name, kills, timeout=timeout)
        diffs = compare_runs(ref, root / name) if res["final_rc"] == 0 else [f"final run failed: rc {res['final_rc']}"]
        res.update(name=name, matched=not diffs, diffs=diffs)
        results.append(res)
        shown = ", ".join(f"{k['kill']}{'' if k['killed'] else ' (finished first)'}"
                          f"{' [in save]' if k['in_save'] else ''}" for k in res["kills"])
        log(f"{name}: kills at {shown} -> {'MATCH' if not diffs else 'DIFFER: ' + '; '.join(diffs[:3])}")
    matched = sum(t["matched"] for t in results)
    kills = [k for t in results for k in t["kills"]]
    landed, in_save = sum(k["killed"] for k in kills), sum(k["killed"] and k["in_save"] for k in kills)
    report = {"matched": matched, "tried": len(results), "kills": landed, "kills_in_save": in_save,
              "reference_s": r["seconds"], "config": config, "overrides": list(overrides), "trials": results}
    (root / "report.json").write_text(json.dumps(report, indent=2, default=str))
    log(f"resumes matched: {matched}/{len(results)} ({landed} kills landed, {in_save} of them inside a checkpoint "
        f"save; a kill drawn after the run's end is not counted)")
    return report
