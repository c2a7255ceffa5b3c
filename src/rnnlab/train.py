"""Training: TrainState, the pure jitted train step, and ``train_and_evaluate``, the one loop with
side effects (convention 6 and 10).

``train_step(state, batch, key) -> (state, metrics)`` is pure: no logging, no ``.item()``, no I/O.
Its metrics are sums (NLL sum, token count) that the loop adds up and divides once when it logs.
Randomness: ``jax.random.key(train.seed)`` is split by purpose (init, dropout, sampling); the step's
key is ``fold_in(purpose_key, state.step)``, so a resumed run draws the same numbers.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import platform
import subprocess
import time
from functools import partial
from pathlib import Path
from typing import Any, Callable

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import RnnlabError, faults
from .checkpoint import Checkpointer
from .config import to_dict, validate
from .data.batching import train_windows
from .data.registry import load_corpus
from .evaluate import evaluate, make_eval_fn
from .forcing import make_loss_fn
from .model import build_model, count_params, model_carries
from .free_running import free_running_metrics, log_items
from .tracking import make_loggers, write_json


# optax >= 0.2.5 spells it optax.tree.norm (optax.global_norm warns there); older optax has only global_norm
_global_norm = getattr(getattr(optax, "tree", None), "norm", None) or optax.global_norm


@flax.struct.dataclass
class TrainState:
    step: jax.Array  # int32 scalar: optimizer steps taken
    params: dict
    opt_state: optax.OptState
    carries: tuple  # recurrent state carried across TBPTT windows (reset at each epoch start)


# ----------------------------------------------------------------------------- optimizer
def lr_schedule(cfg, steps_per_epoch: int) -> optax.Schedule:
    """Zaremba et al.: lr held for ``lr_hold_epochs`` epochs, then multiplied by ``lr_decay`` at the
    start of every later epoch (TF ptb_word_lm: lr * decay ** max(epoch + 1 - max_epoch, 0));
    optional linear warm-up. Built from optax schedules."""
    t = cfg.train
    hold = max(t.lr_hold_epochs - 1, 0) * steps_per_epoch
    if t.lr_hold_epochs == 0:  # decay from the first epoch on: epoch 0 already gets lr * decay
        sched = optax.exponential_decay(t.lr * t.lr_decay, steps_per_epoch, t.lr_decay, staircase=True)
    else:
        sched = optax.exponential_decay(t.lr, steps_per_epoch, t.lr_decay, transition_begin=hold, staircase=True)
    if t.lr_decay == 1.0:
        sched = optax.constant_schedule(t.lr)
    if t.warmup_steps:
        warm = optax.linear_schedule(0.0, t.lr, t.warmup_steps)
        sched = optax.join_schedules([warm, sched], [t.warmup_steps])
    return sched


def make_optimizer(cfg, steps_per_epoch: int):
    t = cfg.train
    sched = lr_schedule(cfg, steps_per_epoch)
    opt = {
        "sgd": lambda: optax.sgd(sched),
        "adam": lambda: optax.adam(sched),
        "adamw": lambda: optax.adamw(sched, weight_decay=t.weight_decay),
    }[t.optimizer]()
    parts = [optax.clip_by_global_norm(t.clip_norm)] if t.clip_norm > 0 else []
    tx = optax.chain(*parts, opt)
    if t.get("skip_nonfinite", False):  # skip (and count) updates with a non-finite gradient (faults.py)
        tx = optax.apply_if_finite(tx, max_consecutive_errors=t.max_skips_in_a_row)
    return tx, sched


# ----------------------------------------------------------------------------- state and step
def split_keys(seed: int) -> dict:
    """Keys by purpose from one seed (convention 5)."""
    init, dropout, sample, evaluation = jax.random.split(jax.random.key(seed), 4)
    return {"init": init, "dropout": dropout, "sample": sample, "eval": evaluation}


def create_train_state(cfg, model, tx, key) -> TrainState:
    B, T = cfg.train.batch_size, cfg.train.bptt
    carries = model_carries(cfg, B)
    params = model.init(key, jnp.zeros((B, T), jnp.int32), carries)["params"]
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params), carries=carries)


def make_train_step(model, tx, cfg):
    """The pure step: fn(state, batch=(x [B,T], y [B,T]), key) -> (state, metrics). Not jitted here,
    so callers can jit it, vmap it over seeds, or both. ``metrics["nonfinite"]`` is 1.0 when the loss or
    a gradient is not finite; with ``train.skip_nonfinite`` that update is skipped (faults.py)."""
    loss_fn = make_loss_fn(model, cfg)
    skip = bool(cfg.train.get("skip_nonfinite", False))

    def train_step(state: TrainState, batch, key):
        x, y = batch
        key = jax.random.fold_in(key, state.step)
        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
        (loss, (carries, metrics)), grads = grad_fn(state.params, state.carries, x, y, key, state.step)
        ok = faults.all_finite(loss, grads)
        if skip:  # apply_if_finite looks at the gradients only: a non-finite loss makes them NaN too
            grads = faults.poison_unless(ok, grads)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = dict(metrics, grad_norm_sum=_global_norm(grads), steps=jnp.float32(1.0))
        carries = jax.lax.stop_gradient(carries)
        if skip:  # a skipped step leaves the carries as they were and its sums out of the metrics
            carries = faults.select_tree(ok, carries, state.carries)
            metrics = faults.mask_metrics(ok, metrics)
        metrics["nonfinite"] = jnp.where(ok, 0.0, 1.0).astype(jnp.float32)
        return state.replace(step=state.step + 1, params=params, opt_state=opt_state, carries=carries), metrics

    return train_step


# ----------------------------------------------------------------------------- provenance
def params_sha256(params) -> str:
    """Hash of the parameters (names, dtypes, shapes and bytes), so two runs compare exactly."""
    h = hashlib.sha256()
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        a = np.asarray(leaf)
        h.update(jax.tree_util.keystr(path).encode())
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def git_commit() -> str:
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10)
        if sha.returncode != 0:
            return "unknown"
        return sha.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def environment() -> dict:
    d = jax.devices()[0]
    return {"device": f"{d.platform}:{d.device_kind}", "jax_version": jax.__version__,
            "flax_version": flax.__version__, "optax_version": optax.__version__,
            "python_version": platform.python_version(), "git_commit": git_commit()}


# ----------------------------------------------------------------------------- run directory
# Fields that may differ between two invocations of the same run (where output goes, how it is shown).
RUN_NEUTRAL = {("train", "progress"), ("data", "dir"), ("wandb", "mode"), ("wandb", "project"),
               ("wandb", "group"), ("wandb", "name"), ("wandb", "entity")}


def _diff(a: dict, b: dict, prefix=()) -> list[str]:
    out = []
    for k in sorted(set(a) | set(b)):
        key = prefix + (k,)
        if key in RUN_NEUTRAL:
            continue
        va, vb = a.get(k, "<missing>"), b.get(k, "<missing>")
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _diff(va, vb, key)
        elif va != vb:
            out.append(f"{'.'.join(key)}: {va!r} -> {vb!r}")
    return out


def check_workdir_config(workdir: Path, cfg, write: bool = True) -> None:
    """Refuse a run directory that holds a different run's config; else write config.json."""
    path = workdir / "config.json"
    new = to_dict(cfg)
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except json.JSONDecodeError:
            raise RnnlabError(f"{path} is not valid JSON; move the run directory away or use another --workdir")
        diff = _diff(old, new)
        if diff:
            shown = "; ".join(diff[:3]) + (f"; and {len(diff) - 3} more" if len(diff) > 3 else "")
            raise RnnlabError(f"workdir {workdir} holds a different run's config ({shown}); "
                              f"use another --workdir or the same config")
    if write:
        write_json(path, new)


# ----------------------------------------------------------------------------- the loop
# train_and_evaluate = prepare (shared by every seed of a config) + one RunRecorder (the host side
# of one run directory) + train_loop (the steps). multiseed.py drives the same pieces with several
# recorders and the step vmapped over seeds, so both write identical run directories.
@dataclasses.dataclass
class Setup:
    """What every run of one configuration shares, whatever its train.seed: data, model, optimizer."""
    corpus: Any  # data.Corpus
    model: Any  # model.LanguageModel
    x_tr: np.ndarray  # [W, B, T] train windows (inputs)
    y_tr: np.ndarray  # [W, B, T] targets
    steps_per_epoch: int  # W
    total_steps: int
    tx: optax.GradientTransformation
    lr_fn: optax.Schedule
    eval_fn: Callable


def prepare(cfg) -> Setup:
    """Load the corpus, build the model, the train windows and the optimizer (no run directory)."""
    corpus = load_corpus(cfg.data)
    model = build_model(cfg, corpus.vocab.size)
    B, T = cfg.train.batch_size, cfg.train.bptt
    n = len(corpus.train)
    if n < B * (T + 1):  # not one [B, T] window (data.train_windows)
        raise RnnlabError(f"train.batch_size={B} and train.bptt={T} are too large for the train split ({n} tokens); "
                          f"need batch_size * (bptt + 1) <= {n}")
    x_tr, y_tr = train_windows(corpus.train, B, T)
    W = x_tr.shape[0]
    total_steps = cfg.train.epochs * W
    if cfg.train.max_steps:
        total_steps = min(total_steps, cfg.train.max_steps)
    tx, lr_fn = make_optimizer(cfg, W)
    return Setup(corpus, model, x_tr, y_tr, W, total_steps, tx, lr_fn, make_eval_fn(model))


def finished_summary(workdir) -> dict | None:
    """The run's summary.json if it says status finished, else None."""
    path = Path(workdir) / "summary.json"
    if path.exists():
        try:
            done = json.loads(path.read_text())
        except json.JSONDecodeError:
            return None
        if done.get("status") == "finished":
            return done
    return None


class RunRecorder:
    """The host side of one run directory while it trains: checkpoints, the loggers and ``meta``
    (best validation perplexity, history, running metric sums, time); ``finish`` writes summary.json.
    ``train_loop`` drives one recorder per run in the program (several when seeds are vmapped)."""

    def __init__(self, cfg, workdir, setup: Setup, *, run_name: str, config_file: str = "", t_start: float):
        self.cfg, self.workdir, self.setup = cfg, Path(workdir), setup
        self.run_name, self.config_file, self.t_start = run_name, config_file, t_start
        self.ckpt = Checkpointer(self.workdir, cfg.checkpoint.keep)
        self.meta = {"best_val_ppl": math.inf, "history": [], "acc": None, "train_time": 0.0, "train_tokens": 0,
                     "wall_s": 0.0, "compile_s": 0.0}
        self.resume_step = None
        self.wall_prev = 0.0  # time spent by earlier (interrupted) processes of this run
        self.logger = None
        self.diverged: str | None = None  # the message, once the run has diverged (faults.py)
        self.diverged_step: int | None = None

    def start(self, state: TrainState) -> TrainState:
        """Restore the latest checkpoint if there is one (-> the state to continue from) and open the loggers."""
        restored = self.ckpt.resume(state)  # the newest usable checkpoint (falls back past damaged ones)
        if restored is not None:
            state, self.meta, _ = restored
            state = jax.tree_util.tree_map(jnp.asarray, state)
            self.resume_step = int(state.step)
            # metrics.jsonl as it was at that checkpoint: later lines (and a torn one) are logged again
            faults.truncate_file(self.workdir / "metrics.jsonl", self.meta.get("metrics_bytes"))
        self.wall_prev = self.meta["wall_s"]
        self.logger = make_loggers(self.cfg, self.workdir, total_steps=self.setup.total_steps,
                                   resume_step=self.resume_step, run_name=self.run_name)
        return state

    def wall(self, now: float | None = None) -> float:
        """Seconds since the run began, over all its processes."""
        return self.wall_prev + ((time.perf_counter() if now is None else now) - self.t_start)

    def log_train(self, step: int, a: dict, dt: float, tokens: int, now: float) -> None:
        """Log the train metrics summed over the last log window (``a``: host floats)."""
        tps = tokens / dt if dt > 0 and tokens else 0.0
        self.meta["train_time"] += dt
        self.meta["train_tokens"] += tokens
        n = a["steps"]  # applied updates in the window (skipped ones are left out of the sums)
        loss = a["nll_sum"] / a["count"] if a["count"] else math.nan
        rec = {"epoch": step / self.setup.steps_per_epoch, "train/loss": loss,
               "train/ppl": math.exp(min(loss, 700)),
               "train/grad_norm": a["grad_norm_sum"] / n if n else math.nan, "train/eps": a["eps"] / n if n else math.nan,
               "train/lr": float(self.setup.lr_fn(step - 1)), "train/tokens_per_sec": tps,
               "wall_s": self.wall(now)}
        if a.get("fed_count"):  # fraction of fed inputs that were gold (scheduled sampling: about eps)
            rec["train/gold_frac"] = a["gold_fed"] / a["fed_count"]
        if self.cfg.train.get("skip_nonfinite", False):
            rec["train/skipped"] = a.get("skipped", 0.0)
            self.meta["skipped"] = self.meta.get("skipped", 0.0) + a.get("skipped", 0.0)
        self.logger.log(step, rec)

    def validate(self, step: int, params) -> bool:
        """Validation perplexity now; logs it and returns whether it improved on the best so far."""
        s = self.setup
        faults.kill_point("eval")
        v = evaluate(s.model, params, s.corpus.valid, self.cfg, s.corpus.level, s.eval_fn)
        epoch = step / s.steps_per_epoch
        improved = v["ppl"] < self.meta["best_val_ppl"]
        if improved:
            self.meta["best_val_ppl"] = v["ppl"]
        self.meta["history"].append({"step": step, "epoch": epoch, "val_ppl": v["ppl"]})
        rec = {"epoch": epoch, "val/loss": v["loss"], "val/ppl": v["ppl"], "val/best_ppl": self.meta["best_val_ppl"],
               "wall_s": self.wall()}  # seconds since the run began (plots)
        if "bpc" in v:
            rec["val/bpc"] = v["bpc"]
        self.logger.log(step, rec)
        return improved

    def save(self, step: int, state: TrainState, acc: dict | None, best: bool) -> None:
        """Checkpoint ``state`` (this run's, unbatched) with the host loop state."""
        self.meta["acc"] = acc
        self.meta["wall_s"] = self.wall()
        self.meta["metrics_bytes"] = faults.file_size(self.workdir / "metrics.jsonl")  # cut back to this on resume
        self.ckpt.save(step, state, self.meta, best=best)

    def diverge(self, step: int, message: str) -> None:
        """The run hit a non-finite loss or gradient: summary.json gets status diverged (the step, the
        message, the last good checkpoint); nothing more is logged, evaluated or saved for it."""
        self.diverged, self.diverged_step = message, step
        cfg = self.cfg
        self.logger.summary({
            "status": "diverged", "error": message, "diverged_step": step,
            "last_checkpoint_step": self.ckpt.latest_complete_step(), "run_name": self.run_name,
            "config_file": self.config_file, "cell": cfg.model.cell, "train_mode": cfg.train.mode,
            "seed": cfg.train.seed, "data": cfg.data.name, "hidden_size": cfg.model.hidden_size,
            "num_layers": cfg.model.num_layers, "steps_per_epoch": self.setup.steps_per_epoch,
            "skipped_steps": int(self.meta.get("skipped", 0)), "wall_s": self.wall(), **environment()})

    def finish(self, step: int, params) -> dict:
        """Final valid/test perplexity; writes summary.json (status finished) and returns it."""
        s, cfg, meta = self.setup, self.cfg, self.meta
        level = s.corpus.level
        val = evaluate(s.model, params, s.corpus.valid, cfg, level, s.eval_fn)
        test = evaluate(s.model, params, s.corpus.test, cfg, level, s.eval_fn)
        env = environment()
        summary = {
            "status": "finished", "run_name": self.run_name, "config_file": self.config_file,
            "cell": cfg.model.cell, "train_mode": cfg.train.mode, "seed": cfg.train.seed,
            "data": cfg.data.name, "level": level, "hidden_size": cfg.model.hidden_size,
            "num_layers": cfg.model.num_layers, "num_params": count_params(params),
            "val_ppl": val["ppl"], "val_loss": val["loss"], "test_ppl": test["ppl"], "test_loss": test["loss"],
            "test_tokens": test["count"], "best_val_ppl": min(meta["best_val_ppl"], val["ppl"]),
            "steps": step, "epochs": step / s.steps_per_epoch, "steps_per_epoch": s.steps_per_epoch,
            "tokens_per_sec": meta["train_tokens"] / meta["train_time"] if meta["train_time"] else 0.0,
            "compile_s": meta["compile_s"], "wall_s": self.wall(),
            "params_sha256": params_sha256(params), "val_history": meta["history"], **env,
        }
        if level == "char":
            summary["val_bpc"], summary["test_bpc"] = val["bpc"], test["bpc"]
        if cfg.train.get("skip_nonfinite", False):
            summary["skipped_steps"] = int(meta.get("skipped", 0))
        for k, v in s.corpus.meta.items():  # the corpus' facts; its "seed" (data.seed) must not hide train.seed
            summary[k if k not in summary else f"data_{k}"] = v
        if cfg.eval.get("free_running", False):  # nll_test, nll_oracle, exposure_gap, ... (free_running.py)
            free = free_running_metrics(s.model, params, s.corpus, cfg, split_keys(cfg.train.seed)["eval"], test=test)
            summary.update(free)
            self.logger.log(step, log_items(free))
        self.logger.log(step, {"test/loss": test["loss"], "test/ppl": test["ppl"],
                               **({"test/bpc": test["bpc"]} if "bpc" in test else {})})
        self.logger.summary(summary)
        return summary

    def close(self) -> None:
        if self.logger is not None:
            self.logger.close()
        self.ckpt.close()


def start_run_dir(workdir, cfg, setup: Setup) -> None:
    """Create the run directory and write config.json and vocab.json (once config and data are good)."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    check_workdir_config(workdir, cfg)
    faults.check_vocab(workdir, setup.corpus.vocab.to_json())  # a resumed run must see the same vocabulary
    write_json(workdir / "vocab.json", setup.corpus.vocab.to_json())


def _whole(tree, i):
    return tree


def _slice(tree, i):
    return jax.tree_util.tree_map(lambda x: x[i], tree)


def train_loop(cfg, setup: Setup, recorders: list, state: TrainState, step_fn, key, *, step: int,
               fresh_carries: Callable, batched: bool = False):
    """Run ``step_fn(state, (x, y), key)`` from ``step`` to ``setup.total_steps``, logging train
    metrics, validating and checkpointing through the recorders. One run: ``batched=False`` and one
    recorder. Several runs in one program (seeds vmapped): every leaf of ``state``, the metrics and
    ``key`` has a leading axis, run i's slice goes to ``recorders[i]``. ``fresh_carries()`` gives the
    zero carries each epoch starts from. Returns (state, step)."""
    part = _slice if batched else _whole
    B, T = cfg.train.batch_size, cfg.train.bptt
    W, total_steps = setup.steps_per_epoch, setup.total_steps
    x_tr, y_tr = setup.x_tr, setup.y_tr
    first_step = step
    accs = [r.meta["acc"] for r in recorders]
    acc = None
    if accs[0] is not None:
        accs = [{k: jnp.float32(v) for k, v in a.items()} for a in accs]
        acc = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *accs) if batched else accs[0]
    log_every, ck_every, ev_every = cfg.train.log_every, cfg.checkpoint.every_steps, cfg.train.eval_every
    t_window = time.perf_counter()
    tokens_window = 0
    guard = faults.NonFiniteGuard(step, len(recorders))  # non-finite steps, checked at each boundary below
    while step < total_steps:
        w = step % W
        if w == 0:
            state = state.replace(carries=fresh_carries())
        t0 = time.perf_counter()
        state, m = step_fn(state, (x_tr[w], y_tr[w]), key)
        faults.kill_point("step")
        guard.add(m.get("nonfinite"))
        if step == first_step:  # first step of this process: compile time
            jax.block_until_ready(state.params)
            for r in recorders:
                r.meta["compile_s"] = time.perf_counter() - t0
            t_window = time.perf_counter()
        else:
            tokens_window += B * T
        acc = m if acc is None else jax.tree_util.tree_map(jnp.add, acc, m)
        step += 1
        epoch_end = step % W == 0 or step == total_steps
        do_eval, do_save = epoch_end or (ev_every and step % ev_every == 0), epoch_end or (ck_every and step % ck_every == 0)
        if (step % log_every == 0 or do_eval or do_save) and faults.check_runs(guard, recorders, state.opt_state,
                                                                                cfg, step):
            break  # every run diverged (nothing after the bad step was logged or saved)
        live = [r.diverged is None for r in recorders]
        if step % log_every == 0 or step == total_steps:
            a = jax.device_get(acc)
            now = time.perf_counter()
            for i, r in enumerate(recorders):
                if live[i]:
                    r.log_train(step, {k: float(v) for k, v in part(a, i).items()}, now - t_window, tokens_window, now)
            acc, tokens_window, t_window = None, 0, time.perf_counter()
        improved = [False] * len(recorders)
        if do_eval:
            t_pause = time.perf_counter()
            improved = [live[i] and r.validate(step, part(state.params, i)) for i, r in enumerate(recorders)]
            t_window += time.perf_counter() - t_pause  # the window's clock skips evaluation; its tokens stay counted
        if do_save:
            t_pause = time.perf_counter()
            a = None if acc is None else jax.device_get(acc)
            for i, r in enumerate(recorders):
                if live[i]:
                    r.save(step, part(state, i), None if a is None else {k: float(v) for k, v in part(a, i).items()},
                           improved[i])
            t_window += time.perf_counter() - t_pause
    return state, step


def train_and_evaluate(cfg, workdir, *, run_name: str | None = None, config_file: str = "") -> dict:
    """Train one language model and write config.json, metrics.jsonl, summary.json (and
    checkpoints) under ``workdir``. Re-running the same command resumes from the latest checkpoint;
    a finished run is not trained again. Returns the summary."""
    validate(cfg)
    workdir = Path(workdir)
    check_workdir_config(workdir, cfg, write=False)
    done = finished_summary(workdir)
    if done is not None:
        return done
    faults.raise_if_diverged(workdir)  # a diverged run stays diverged (same config, same numbers)
    faults.install_from_env()
    try:
        return _train_and_evaluate(cfg, workdir, run_name=run_name, config_file=config_file)
    except OSError as e:  # a full disk or a permission problem while writing the run directory: one line
        raise RnnlabError(faults.io_error_message(e, f"could not write to run directory {workdir}") +
                          "; files written before are intact; fix the cause and re-run the same command "
                          "to resume from the last checkpoint") from None


def _train_and_evaluate(cfg, workdir: Path, *, run_name: str | None, config_file: str) -> dict:
    t_start = time.perf_counter()
    setup = prepare(cfg)
    start_run_dir(workdir, cfg, setup)
    keys = split_keys(cfg.train.seed)
    state = create_train_state(cfg, setup.model, setup.tx, keys["init"])
    rec = RunRecorder(cfg, workdir, setup, run_name=run_name or workdir.name, config_file=config_file,
                      t_start=t_start)
    try:
        state = rec.start(state)
        step_fn = jax.jit(make_train_step(setup.model, setup.tx, cfg), donate_argnums=0)
        B = cfg.train.batch_size
        state, step = train_loop(cfg, setup, [rec], state, step_fn, keys["dropout"], step=int(state.step),
                                 fresh_carries=lambda: model_carries(cfg, B))
        if rec.diverged is not None:
            raise faults.Diverged(rec.diverged, rec.diverged_step)
        return rec.finish(step, state.params)
    finally:
        rec.close()
