"""Training: TrainState, the pure jitted train step, and ``train_and_evaluate``, the one loop with
side effects (convention 6 and 10).

``train_step(state, batch, key) -> (state, metrics)`` is pure: no logging, no ``.item()``, no I/O.
Its metrics are sums (NLL sum, token count) that the loop adds up and divides once when it logs.
Randomness: ``jax.random.key(train.seed)`` is split by purpose (init, dropout, sampling); the step's
key is ``fold_in(purpose_key, state.step)``, so a resumed run draws the same numbers.
"""
from __future__ import annotations

import hashlib
import json
import math
import platform
import subprocess
import time
from functools import partial
from pathlib import Path

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import RnnlabError
from .checkpoint import Checkpointer
from .config import to_dict, validate
from .data import load_corpus, train_windows
from .evaluate import evaluate, make_eval_fn
from .forcing import make_loss_fn
from .model import build_model, count_params, model_carries
from .tracking import make_loggers, write_json


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
    return optax.chain(*parts, opt), sched


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
    so callers can jit it, vmap it over seeds, or both."""
    loss_fn = make_loss_fn(model, cfg)

    def train_step(state: TrainState, batch, key):
        x, y = batch
        key = jax.random.fold_in(key, state.step)
        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
        (_, (carries, metrics)), grads = grad_fn(state.params, state.carries, x, y, key, state.step)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = dict(metrics, grad_norm_sum=optax.global_norm(grads), steps=jnp.float32(1.0))
        carries = jax.lax.stop_gradient(carries)
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
               ("wandb", "group"), ("wandb", "name")}


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
def train_and_evaluate(cfg, workdir, *, run_name: str | None = None, config_file: str = "") -> dict:
    """Train one language model and write config.json, metrics.jsonl, summary.json (and
    checkpoints) under ``workdir``. Re-running the same command resumes from the latest checkpoint;
    a finished run is not trained again. Returns the summary."""
    validate(cfg)
    workdir = Path(workdir)
    check_workdir_config(workdir, cfg, write=False)
    summary_path = workdir / "summary.json"
    if summary_path.exists():
        done = json.loads(summary_path.read_text())
        if done.get("status") == "finished":
            return done
    t_start = time.perf_counter()

    corpus = load_corpus(cfg.data)
    workdir.mkdir(parents=True, exist_ok=True)
    check_workdir_config(workdir, cfg)  # only now that the config and the data are known to be good
    write_json(workdir / "vocab.json", corpus.vocab.to_json())
    model = build_model(cfg, corpus.vocab.size)
    B, T = cfg.train.batch_size, cfg.train.bptt
    x_tr, y_tr = train_windows(corpus.train, B, T)
    W = x_tr.shape[0]
    if W == 0:
        raise RnnlabError(f"train.batch_size={B} x train.bptt={T} is too large for the train split "
                          f"({len(corpus.train)} tokens); need (tokens // batch_size - 1) >= bptt")
    total_steps = cfg.train.epochs * W
    if cfg.train.max_steps:
        total_steps = min(total_steps, cfg.train.max_steps)

    tx, lr_fn = make_optimizer(cfg, W)
    keys = split_keys(cfg.train.seed)
    state = create_train_state(cfg, model, tx, keys["init"])
    num_params = count_params(state.params)

    ckpt = Checkpointer(workdir, cfg.checkpoint.keep)
    meta = {"best_val_ppl": math.inf, "history": [], "acc": None, "train_time": 0.0, "train_tokens": 0,
            "wall_s": 0.0, "compile_s": 0.0}
    restored = ckpt.restore(state)
    resume_step = None
    if restored is not None:
        state, meta = restored
        state = jax.tree_util.tree_map(jnp.asarray, state)
        resume_step = int(state.step)
    wall_prev = meta["wall_s"]  # time spent by earlier (interrupted) processes of this run

    run_name = run_name or workdir.name
    logger = make_loggers(cfg, workdir, total_steps=total_steps, resume_step=resume_step, run_name=run_name)
    step_fn = jax.jit(make_train_step(model, tx, cfg), donate_argnums=0)
    eval_fn = make_eval_fn(model)
    level = corpus.level

    def validate_now(step):
        v = evaluate(model, state.params, corpus.valid, cfg, level, eval_fn)
        epoch = step / W
        improved = v["ppl"] < meta["best_val_ppl"]
        if improved:
            meta["best_val_ppl"] = v["ppl"]
        meta["history"].append({"step": step, "epoch": epoch, "val_ppl": v["ppl"]})
        rec = {"epoch": epoch, "val/loss": v["loss"], "val/ppl": v["ppl"], "val/best_ppl": meta["best_val_ppl"]}
        if "bpc" in v:
            rec["val/bpc"] = v["bpc"]
        logger.log(step, rec)
        return v, improved

    acc = None if meta["acc"] is None else {k: jnp.float32(v) for k, v in meta["acc"].items()}
    step = int(state.step)
    log_every, ck_every, ev_every = cfg.train.log_every, cfg.checkpoint.every_steps, cfg.train.eval_every
    t_window = time.perf_counter()
    tokens_window = 0
    try:
        while step < total_steps:
            w = step % W
            if w == 0:
                state = state.replace(carries=model_carries(cfg, B))
            t0 = time.perf_counter()
            state, m = step_fn(state, (x_tr[w], y_tr[w]), keys["dropout"])
            if step == (resume_step or 0):  # first step of this process: compile time
                jax.block_until_ready(state.params)
                meta["compile_s"] = time.perf_counter() - t0
                t_window = time.perf_counter()
            else:
                tokens_window += B * T
            acc = m if acc is None else jax.tree_util.tree_map(jnp.add, acc, m)
            step += 1
            if step % log_every == 0 or step == total_steps:
                a = {k: float(v) for k, v in jax.device_get(acc).items()}
                now = time.perf_counter()
                dt = now - t_window
                tps = tokens_window / dt if dt > 0 and tokens_window else 0.0
                meta["train_time"] += dt
                meta["train_tokens"] += tokens_window
                loss = a["nll_sum"] / a["count"]
                logger.log(step, {"epoch": step / W, "train/loss": loss, "train/ppl": math.exp(min(loss, 700)),
                                  "train/grad_norm": a["grad_norm_sum"] / a["steps"], "train/eps": a["eps"] / a["steps"],
                                  "train/lr": float(lr_fn(step - 1)), "train/tokens_per_sec": tps})
                acc, tokens_window, t_window = None, 0, time.perf_counter()
            epoch_end = step % W == 0 or step == total_steps
            improved = False
            if epoch_end or (ev_every and step % ev_every == 0):
                _, improved = validate_now(step)
                t_window = time.perf_counter()
            if epoch_end or (ck_every and step % ck_every == 0):
                meta["acc"] = None if acc is None else {k: float(v) for k, v in jax.device_get(acc).items()}
                meta["wall_s"] = wall_prev + (time.perf_counter() - t_start)
                ckpt.save(step, state, meta, best=improved)
                t_window = time.perf_counter()

        val = evaluate(model, state.params, corpus.valid, cfg, level, eval_fn)
        test = evaluate(model, state.params, corpus.test, cfg, level, eval_fn)
        env = environment()
        summary = {
            "status": "finished", "run_name": run_name, "config_file": config_file,
            "cell": cfg.model.cell, "train_mode": cfg.train.mode, "seed": cfg.train.seed,
            "data": cfg.data.name, "level": level, "hidden_size": cfg.model.hidden_size,
            "num_layers": cfg.model.num_layers, "num_params": num_params,
            "val_ppl": val["ppl"], "val_loss": val["loss"], "test_ppl": test["ppl"], "test_loss": test["loss"],
            "test_tokens": test["count"], "best_val_ppl": min(meta["best_val_ppl"], val["ppl"]),
            "steps": step, "epochs": step / W, "steps_per_epoch": W,
            "tokens_per_sec": meta["train_tokens"] / meta["train_time"] if meta["train_time"] else 0.0,
            "compile_s": meta["compile_s"], "wall_s": wall_prev + (time.perf_counter() - t_start),
            "params_sha256": params_sha256(state.params), "val_history": meta["history"], **env,
        }
        if level == "char":
            summary["val_bpc"], summary["test_bpc"] = val["bpc"], test["bpc"]
        for k, v in corpus.meta.items():
            summary[k] = v
        logger.log(step, {"test/loss": test["loss"], "test/ppl": test["ppl"], **({"test/bpc": test["bpc"]} if "bpc" in test else {})})
        logger.summary(summary)
        return summary
    finally:
        logger.close()
        ckpt.close()
