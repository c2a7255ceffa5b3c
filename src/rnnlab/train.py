"""Training: TrainState, the pure jitted train step, and ``train_and_evaluate``, the one loop with
side effects (convention 6 and 10).

``train_step(state, batch, key) -> (state, metrics)`` is pure: no logging, no ``.item()``, no I/O.
Its metrics are sums (NLL sum, token count) that the loop adds up and divides once when it logs.
Randomness: ``jax.random.key(train.seed)`` is split by purpose (init, dropout, sampling); the step's
key is ``fold_in(purpose_key, state.step)``, so a resumed run draws the same numbers.
"""
from __future__ import annotations

import dataclasses
from functools import partial
import time
from pathlib import Path
from typing import Any, Callable

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import RnnlabError, faults, parallel
from .config import validate
from .data.registry import load_corpus
from .evaluate import make_eval_fn, window_sums
from .forcing import make_loss_fn
from .keys import split_keys
from .kinds import Kind, TrainWindows, get_kind
from .model import model_carries
from .output_to_hidden import make_model  # model.build_model, or model.cell=output_to_hidden's network
from .optim import _global_norm, lr_schedule, make_optimizer  # noqa: F401  (lr_schedule: re-exported)
from .recorder import RunRecorder
from .seq2seq import professor  # train.mode=professor_forcing (Lamb et al. 2016)
from .preflight import preflight
from .rundir import check_workdir_config, claim_run_dir, finished_summary, params_sha256, start_run_dir  # noqa: F401
from .tracking import complete_wandb_mirror


@flax.struct.dataclass
class TrainState:
    step: jax.Array  # int32 scalar: optimizer steps taken
    params: dict
    opt_state: optax.OptState
    carries: tuple  # recurrent state carried across TBPTT windows (reset at each epoch start)


# ----------------------------------------------------------------------------- state and step
def create_train_state(cfg, model, tx, key) -> TrainState:
    B, T = cfg.train.batch_size, cfg.train.bptt
    carries = model_carries(cfg, B)
    if hasattr(model, "init_params"):  # models with their own inputs (e.g. an encoder-decoder)
        params = model.init_params(key, cfg)
    else:
        inputs = jnp.zeros((B, T, model.num_features), jnp.float32) if model.frames else jnp.zeros((B, T), jnp.int32)
        params = model.init(key, inputs, carries)["params"]
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params), carries=carries)


def add_weight_noise(params, key, std: float):
    """params + N(0, std^2) noise on every parameter (Graves 2011), drawn from ``fold_in(key, 2)``
    (the step's key: a resumed run draws the same noise); the gradient taken at these parameters
    updates the noise-free ones."""
    leaves, tree = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(jax.random.fold_in(key, 2), len(leaves))
    noisy = [p + std * jax.random.normal(k, p.shape, p.dtype) for p, k in zip(leaves, keys)]
    return jax.tree_util.tree_unflatten(tree, noisy)


def make_train_step(model, tx, cfg):
    """The pure step: fn(state, batch=(x, y[, mask]), key) -> (state, metrics): x, y [B, T] tokens (or
    [B, T, K] frames), mask [B, T] for padded sequences (``kinds.TrainWindows.batch``). Not jitted here,
    so callers can jit it, vmap it over seeds, or both. ``metrics["nonfinite"]`` is 1.0 when the loss or
    a gradient is not finite; with ``train.skip_nonfinite`` that update is skipped (faults.py)."""
    loss_fn = (getattr(model, "make_loss_fn", None) or partial(make_loss_fn, model))(cfg)
    skip = bool(cfg.train.get("skip_nonfinite", False))
    noise = float(cfg.train.get("weight_noise", 0.0))

    def train_step(state: TrainState, batch, key):
        key = jax.random.fold_in(key, state.step)
        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
        params_used = add_weight_noise(state.params, key, noise) if noise else state.params
        (loss, (carries, metrics)), grads = grad_fn(params_used, state.carries, batch, key, state.step)
        grad_norm = _global_norm(grads)
        ok = faults.finite_step(loss, grad_norm)
        if skip:  # apply_if_finite looks at the gradients only: a non-finite loss makes them NaN too
            grads = faults.poison_unless(ok, grads)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = dict(metrics, grad_norm_sum=grad_norm, steps=jnp.float32(1.0))
        carries = jax.lax.stop_gradient(carries)
        if skip:  # a skipped step leaves the carries as they were and its sums out of the metrics
            carries = faults.select_tree(ok, carries, state.carries)
            metrics = faults.mask_metrics(ok, metrics)
        metrics["nonfinite"] = jnp.where(ok, 0.0, 1.0).astype(jnp.float32)
        return state.replace(step=state.step + 1, params=params, opt_state=opt_state, carries=carries), metrics

    return train_step


# ----------------------------------------------------------------------------- the loop
# train_and_evaluate = prepare (shared by every seed of a config) + one RunRecorder (the host side
# of one run directory) + train_loop (the steps). multiseed.py drives the same pieces with several
# recorders and the step vmapped over seeds, so both write identical run directories.
@dataclasses.dataclass
class Setup:
    """What every run of one configuration shares, whatever its train.seed: data, its kind (the seam),
    model, train windows, optimizer; the eval windows of each split are made once, on first use."""
    corpus: Any  # data.Corpus (tokens), data.music.FrameCorpus, ...
    kind: Kind
    model: Any  # model.LanguageModel
    train: TrainWindows
    total_steps: int
    tx: optax.GradientTransformation
    lr_fn: optax.Schedule
    eval_fn: Callable | None = None
    eval_data: dict = dataclasses.field(default_factory=dict)  # split -> (x, y, mask[, reset])

    @property
    def steps_per_epoch(self) -> int:  # W
        return self.train.steps_per_epoch

    @property
    def x_tr(self) -> np.ndarray:  # [W, B, T(, K)] train inputs
        return self.train.x

    @property
    def y_tr(self) -> np.ndarray:  # [W, B, T(, K)] targets
        return self.train.y

    def evaluate(self, cfg, params, split: str) -> dict:
        """Teacher-forced metrics of ``params`` on the whole split (``kind.split_metrics``)."""
        if split not in self.eval_data:
            self.eval_data[split] = self.kind.eval_windows(self.corpus, cfg, split)
        windows = self.eval_data[split]
        if self.kind.evaluate is not None:  # the kind's own pass (e.g. transduction: accuracy by length)
            return self.kind.evaluate(self.model, params, windows, cfg, self.corpus, split)
        if self.eval_fn is None:
            self.eval_fn = make_eval_fn(self.model, resets=len(windows) > 3)
        return self.kind.split_metrics(window_sums(self.model, params, windows, cfg, self.eval_fn), self.corpus)


def prepare(cfg) -> Setup:
    """Load the corpus, build the model, the train windows and the optimizer (no run directory)."""
    corpus = load_corpus(cfg.data)
    kind = get_kind(corpus)
    model = (kind.make_model or make_model)(cfg, kind.model_io(corpus))
    windows = kind.train_windows(corpus, cfg)
    W = windows.steps_per_epoch
    total_steps = cfg.train.epochs * W
    if cfg.train.max_steps:
        total_steps = min(total_steps, cfg.train.max_steps)
    tx, lr_fn = make_optimizer(cfg, W)
    if cfg.train.mode == "professor_forcing":  # a discriminator beside the model, with its own optimizer
        model, tx = professor.attach(model, tx, cfg)
    return Setup(corpus, kind, model, windows, total_steps, tx, lr_fn)



def _whole(tree, i):
    return tree


def _slice(tree, i):
    return jax.tree_util.tree_map(lambda x: x[i], tree)


def train_loop(cfg, setup: Setup, recorders: list, state: TrainState, step_fn, key, *, step: int,
               fresh_carries: Callable, batched: bool = False):
    """Run ``step_fn(state, batch, key)`` from ``step`` to ``setup.total_steps``, logging train
    metrics, validating and checkpointing through the recorders. One run: ``batched=False`` and one
    recorder. Several runs in one program (seeds vmapped): every leaf of ``state``, the metrics and
    ``key`` has a leading axis, run i's slice goes to ``recorders[i]``. ``fresh_carries()`` gives the
    zero carries a window with ``reset`` starts from (each epoch's first window for streams, each
    group of padded sequences). The windows of an epoch come in ``setup.train.order(data.seed,
    epoch)``. Returns (state, step)."""
    part = _slice if batched else _whole
    windows = setup.train
    W, total_steps = setup.steps_per_epoch, setup.total_steps
    first_step = step
    order = None
    accs = [r.meta["acc"] for r in recorders]
    acc = None
    if accs[0] is not None:
        accs = [{k: jnp.float32(v) for k, v in a.items()} for a in accs]
        acc = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *accs) if batched else accs[0]
    log_every, ck_every, ev_every = cfg.train.log_every, cfg.checkpoint.every_steps, cfg.train.eval_every
    t_window = time.perf_counter()
    tokens_window = 0
    guard = faults.NonFiniteGuard(step, len(recorders))  # non-finite steps, checked at each boundary below
    while step < total_steps and not all(r.stopped for r in recorders):
        if order is None or step % W == 0:
            order = windows.order(int(cfg.data.seed), step // W)
        w = int(order[step % W])
        if windows.reset[w]:
            state = state.replace(carries=fresh_carries())
        t0 = time.perf_counter()
        state, m = step_fn(state, windows.batch(w), key)
        faults.kill_point("step")
        guard.add(m.get("nonfinite"))
        if step == first_step:  # first step of this process: compile time
            jax.block_until_ready(state.params)
            for r in recorders:
                r.meta["compile_s"] = time.perf_counter() - t0
                r.logger.status("")  # the progress bar said "compiling" until now
            t_window = time.perf_counter()
        else:
            tokens_window += windows.targets(w)
        acc = m if acc is None else jax.tree_util.tree_map(jnp.add, acc, m)
        step += 1
        epoch_end = step % W == 0 or step == total_steps
        preempt = faults.preempted(step, total_steps)  # a SIGTERM arrived: checkpoint now, then stop (faults.py)
        do_eval, do_save = epoch_end or (ev_every and step % ev_every == 0), epoch_end or (ck_every and step % ck_every == 0)
        do_save = do_save or preempt
        if (step % log_every == 0 or do_eval or do_save) and faults.check_runs(guard, recorders, state.opt_state,
                                                                                cfg, step):
            break  # every run diverged (nothing after the bad step was logged or saved)
        live = [r.diverged is None and not r.stopped for r in recorders]  # stopped: early stopping
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
        if preempt:
            faults.stop_preempted(recorders, step)
        if all(r.stopped or r.diverged is not None for r in recorders) and any(r.stopped for r in recorders):
            break  # early stopping: no run has patience left (each is evaluated at its best checkpoint)
    return state, step


def train_and_evaluate(cfg, workdir, *, run_name: str | None = None, config_file: str = "") -> dict:
    """Train one language model and write config.json, metrics.jsonl, summary.json (and
    checkpoints) under ``workdir``. Re-running the same command resumes from the latest checkpoint;
    a finished run is not trained again. Returns the summary."""
    validate(cfg)
    parallel.start(cfg)  # parallel.multihost: jax.distributed first; one process per run directory (parallel.py)
    workdir = Path(workdir)
    check_workdir_config(workdir, cfg, write=False)
    done = finished_summary(workdir)
    if done is not None:
        complete_wandb_mirror(cfg, workdir, run_name=run_name or workdir.name)  # W&B lacks nothing of it
        return done
    faults.raise_if_diverged(workdir)  # a diverged run stays diverged (same config, same numbers)
    faults.install_from_env()
    lock = claim_run_dir(workdir)  # one process per run directory: a second one gets one line (rundir.py)
    try:
        with faults.preemptible():  # SIGTERM: checkpoint at the next step boundary, exit 143 (faults.py)
            return _train_and_evaluate(cfg, workdir, run_name=run_name, config_file=config_file)
    except OSError as e:  # a full disk or a permission problem while writing the run directory: one line
        raise RnnlabError(faults.io_error_message(e, f"could not write to run directory {workdir}") +
                          "; files written before are intact; fix the cause and re-run the same command "
                          "to resume from the last checkpoint") from None
    finally:
        lock.release()


def _train_and_evaluate(cfg, workdir: Path, *, run_name: str | None, config_file: str) -> dict:
    t_start = time.perf_counter()
    setup = prepare(cfg)
    preflight(cfg, setup.corpus)  # eval streams, prompts, eval.reference: checked before anything is written
    start_run_dir(workdir, cfg, setup)
    keys = split_keys(cfg.train.seed)
    state = create_train_state(cfg, setup.model, setup.tx, keys["init"])
    rec = RunRecorder(cfg, workdir, setup, run_name=run_name or workdir.name, config_file=config_file,
                      t_start=t_start)
    try:
        state = rec.start(state)
        step_fn = parallel.jit_step(make_train_step(setup.model, setup.tx, cfg), cfg)  # jit; parallel.data: sharded
        B = cfg.train.batch_size
        state, step = train_loop(cfg, setup, [rec], state, step_fn, keys["dropout"], step=int(state.step),
                                 fresh_carries=lambda: model_carries(cfg, B))
        if rec.diverged is not None:
            raise faults.Diverged(rec.diverged, rec.diverged_step)
        return rec.finish(step, state.params)
    finally:
        rec.close()
