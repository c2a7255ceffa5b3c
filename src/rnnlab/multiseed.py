"""Seeds vmapped: the seeds of one configuration trained as ONE compiled program.

``jax.vmap`` maps ``train.make_train_step``'s pure step over a leading seed axis S of the state
(parameters, optimizer state, step, carries) and of the dropout / sampling keys; the batch is
shared (the data order does not depend on train.seed). Each seed still writes its own run
directory in exactly the format of ``train.train_and_evaluate`` (config.json with its seed,
vocab.json, metrics.jsonl, summary.json with the same keys, orbax checkpoints of its own unbatched
state), through the same ``RunRecorder`` and ``train_loop``; so a seed's directory can be resumed,
reported or loaded like any other, even by the one-seed path.

Results equal running the seeds one by one up to float32 rounding, not bit for bit: vmap turns each
``[B, H] @ [H, G]`` into a batched ``[S, B, H] @ [S, H, G]`` matmul, which XLA may compute with a
different kernel and summation order (tests/test_multiseed.py measures the gap).

Speed: on a 2-core CPU a vmapped step of 8 seeds at the quickstart size (H=32, B=32, T=25) runs
0.6-1.0x as fast per seed as a one-seed step (XLA:CPU is compute-bound there already); what it
saves on CPU is compilation and set-up (quickstart sweep, 2 seeds per cell: 29 s instead of 41 s).
The gain is on accelerators, where a small model alone leaves the device idle.

    train_seeds(cfg, {0: "runs/x/seed=0", 1: "runs/x/seed=1"})   # what experiments.sweep --vmap_seeds calls
    prog = make_multiseed_step(cfg, num_seeds=8)                  # for timing: prog.step(prog.state, batch, prog.keys)
"""
from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from . import faults, parallel
from .config import validate
from .faults import diverged_summary
from .model import model_carries
from .preflight import preflight
from .train import (RunRecorder, Setup, TrainState, check_workdir_config, create_train_state, finished_summary,
                    make_train_step, prepare, split_keys, start_run_dir, train_loop)


def stack(trees: list):
    """[tree, ...] -> one tree whose leaves have a leading axis S = len(trees)."""
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *trees)


def unstack(tree, i: int):
    """Run i's slice of a stacked tree."""
    return jax.tree_util.tree_map(lambda x: x[i], tree)


def vmapped_step(model, tx, cfg) -> Callable:
    """jit(vmap(train_step)): fn(state [S, ...], batch (x [B,T], y [B,T]) shared, keys [S]) ->
    (state [S, ...], metrics {name: [S]}). The state is donated, as in the one-seed step."""
    return parallel.jit_seed_step(jax.vmap(make_train_step(model, tx, cfg), in_axes=(0, None, 0)), cfg)  # parallel.seeds


def seed_config(cfg, seed: int):
    c = copy.deepcopy(cfg)
    c.train.seed = int(seed)
    return c


class MultiSeedProgram(NamedTuple):
    """What a benchmark needs to time S seeds in one program (see ``make_multiseed_step``)."""
    step: Callable  # jitted fn(state, (x [B,T], y [B,T]), keys) -> (state, metrics [S])
    state: TrainState  # initial state of every seed, leaves [S, ...]
    keys: Any  # [S] dropout / sampling keys (train.split_keys(seed)["dropout"])
    x: Any  # [W, B, T] train windows (inputs); batch w is (x[w], y[w])
    y: Any  # [W, B, T] targets
    setup: Setup
    seeds: tuple


def make_multiseed_step(cfg, num_seeds: int, *, setup: Setup | None = None) -> MultiSeedProgram:
    """The vmapped step and initial state for seeds train.seed, ..., train.seed + num_seeds - 1 of
    ``cfg`` (loads the corpus unless ``setup`` is given). ``num_seeds=1`` is the same program with S=1;
    ``train.make_train_step`` jitted alone is the unbatched baseline."""
    validate(cfg)
    setup = setup or prepare(cfg)
    seeds = tuple(int(cfg.train.seed) + i for i in range(num_seeds))
    states = [create_train_state(cfg, setup.model, setup.tx, split_keys(s)["init"]) for s in seeds]
    keys = jnp.stack([split_keys(s)["dropout"] for s in seeds])
    return MultiSeedProgram(vmapped_step(setup.model, setup.tx, cfg), stack(states), keys, setup.x_tr, setup.y_tr,
                            setup, seeds)


def train_seeds(cfg, workdirs: dict, *, run_names: dict | None = None, config_file: str = "") -> dict:
    """Train the seeds ``workdirs`` maps to run directories ({seed: workdir}) of ``cfg`` (its own
    train.seed is ignored) as one vmapped program; returns {seed: summary}.

    Like ``train_and_evaluate`` for each seed: a finished run directory is not trained again, an
    unfinished one resumes from its latest checkpoint, a directory holding another config is
    refused. Seeds whose latest checkpoints are at different steps (a kill between two seeds'
    saves) are trained as separate groups, each one program."""
    cfgs = {s: seed_config(cfg, s) for s in workdirs}
    run_names = run_names or {}
    summaries, todo = {}, []
    for s, c in cfgs.items():
        validate(c)
        check_workdir_config(Path(workdirs[s]), c, write=False)
        done = finished_summary(workdirs[s]) or diverged_summary(workdirs[s])  # diverged: stays so (faults.py)
        if done is not None:
            summaries[s] = done
        else:
            todo.append(s)
    if not todo:
        return summaries
    t_start = time.perf_counter()
    parallel.start(cfg)  # parallel.multihost: jax.distributed first; one process per run directory
    setup = prepare(cfg)
    preflight(cfg, setup.corpus)  # eval streams, prompts, eval.reference: checked before anything is written
    recs = {}
    with faults.preemptible():  # SIGTERM / SIGUSR2: every seed checkpoints at the next step, exit 143 (faults.py)
        return _train_group(cfg, cfgs, setup, todo, workdirs, run_names, config_file, t_start, summaries, recs)


def _train_group(cfg, cfgs, setup, todo, workdirs, run_names, config_file, t_start, summaries, recs) -> dict:
    """The seeds ``todo`` of one config through the vmapped program (grouped by their resume step)."""
    try:
        states = {}
        for s in todo:
            start_run_dir(workdirs[s], cfgs[s], setup)
            recs[s] = RunRecorder(cfgs[s], workdirs[s], setup, run_name=run_names.get(s) or Path(workdirs[s]).name,
                                  config_file=config_file, t_start=t_start)
            state = create_train_state(cfgs[s], setup.model, setup.tx, split_keys(s)["init"])
            states[s] = recs[s].start(state)
        groups: dict[int, list] = {}
        for s in todo:
            groups.setdefault(int(states[s].step), []).append(s)
        step_fn = vmapped_step(setup.model, setup.tx, cfg)
        B = cfg.train.batch_size
        for step0, seeds in sorted(groups.items()):
            S = len(seeds)
            keys = jnp.stack([split_keys(s)["dropout"] for s in seeds])

            def fresh_carries(S=S):
                return stack([model_carries(cfg, B) for _ in range(S)])

            state, step = train_loop(cfg, setup, [recs[s] for s in seeds], stack([states[s] for s in seeds]),
                                     step_fn, keys, step=step0, fresh_carries=fresh_carries, batched=True)
            for i, s in enumerate(seeds):
                if recs[s].diverged is not None:  # summary.json already says diverged; the other seeds went on
                    summaries[s] = diverged_summary(workdirs[s])
                    continue
                summaries[s] = recs[s].finish(step, unstack(state.params, i))
    finally:
        for r in recs.values():
            r.close()
    return {s: summaries[s] for s in workdirs}
