"""The rnnlab rows: ``train.make_train_step`` on ``model.LanguageModel`` (or, for
``cell=output_to_hidden``, ``output_to_hidden.OutputToHidden``), teacher forcing (tf) or
scheduled sampling at a constant eps (ss, the same make_train_step), and the multi-seed runner's
program (``seeds`` > 0: jit(vmap(step)) over stacked states, tokens/s counting every seed)."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .plan import Options, Size
from .timing import batches, compile_timed, eval_timing, jax_peak, record, run_alone, step_loop, timed


def rnnlab_config(size: Size, cell: str, mode: str, opts: Options, unroll: int | None = None,
                  matmul_dtype: str = "float32", sampler: str = "gumbel"):
    """The base config set to ``size`` (embedding = H), SGD at opts.lr with global-norm clip opts.clip,
    uniform(+-0.1) init; mode 'ss': scheduled sampling with eps held at opts.eps, tokens drawn by
    ``sampler`` (train.sampler)."""
    from ..config import base_config

    cfg = base_config()
    m, t = cfg.model, cfg.train
    m.cell, m.hidden_size, m.num_layers, m.embed_size = cell, size.hidden, size.layers, 0
    m.dropout, m.init, m.init_scale, m.matmul_dtype = opts.dropout, "uniform", 0.1, matmul_dtype
    if unroll is not None:
        m.unroll = size.bptt if unroll == 0 else unroll
    t.batch_size, t.bptt, t.optimizer, t.lr, t.lr_decay, t.clip_norm = size.batch, size.bptt, "sgd", opts.lr, 1.0, opts.clip
    if mode == "ss":  # Bengio et al.: a coin per token, a sample from softmax(logits); eps held constant
        t.mode = "scheduled_sampling"
        t.schedule.kind, t.schedule.eps, t.schedule.warmup_steps = "constant", opts.eps, 0
        t.sampler = sampler
    return cfg


def ss_available() -> bool:
    """Does this checkout implement train.mode=scheduled_sampling (config.train.schedule)?"""
    from ..config import base_config

    return "schedule" in base_config().train


def bench_rnnlab(*args, **kw) -> dict:
    """Time one rnnlab row alone (``rnnlab_row``'s arguments) -> its record."""
    return run_alone(rnnlab_row(*args, **kw))


def rnnlab_row(size_name, size, cell, mode, opts, *, unroll=None, matmul_dtype="float32", autodiff=False,
               seeds: int = 0, eval_too: bool = True, sampler: str = "gumbel"):
    """The generator of one rnnlab row (``timing.timed``; driven by run_alone or run_interleaved) ->
    record (timing.record) with variant 'unroll=U,DTYPE[,autodiff][,SAMPLER]' (the sampler named when it
    is not the default gumbel), the eps the step reported, and for seeds > 0 impl 'rnnlab_seeds' with
    tokens/s x seeds."""
    from .. import unroll as unroll_mod
    from ..output_to_hidden import make_model  # model.build_model, or model.cell=output_to_hidden's network
    from ..train import create_train_state, make_optimizer, make_train_step

    cfg = rnnlab_config(size, cell, mode, opts, unroll, matmul_dtype, sampler)
    model = make_model(cfg, size.vocab)
    tx, _ = make_optimizer(cfg, 1000)
    step = make_train_step(model, tx, cfg)
    key = jax.random.key(0)
    xs, ys = batches(size, 4)
    xs, ys = jnp.asarray(xs), jnp.asarray(ys)

    old = unroll_mod.FAST_BACKWARD
    unroll_mod.FAST_BACKWARD = not autodiff
    try:
        if seeds:  # the multi-seed runner's program: jit(vmap(step)) over stacked states, one key per seed
            from ..keys import split_keys

            try:
                from ..multiseed import stack, vmapped_step
            except ImportError:  # pragma: no cover - older checkouts without the runner
                stack = lambda trees: jax.tree_util.tree_map(lambda *a: jnp.stack(a), *trees)  # noqa: E731
                vmapped_step = lambda m, t, c: jax.jit(jax.vmap(make_train_step(m, t, c), in_axes=(0, None, 0)),  # noqa: E731
                                                       donate_argnums=0)
            state = stack([create_train_state(cfg, model, tx, split_keys(s)["init"]) for s in range(seeds)])
            call_key = jnp.stack([split_keys(s)["dropout"] for s in range(seeds)])
            compiled, compile_s = compile_timed(vmapped_step(model, tx, cfg), state, (xs[0], ys[0]), call_key)
        else:
            state = create_train_state(cfg, model, tx, jax.random.key(1))
            call_key = key
            compiled, compile_s = compile_timed(step, state, (xs[0], ys[0]), call_key, donate=(0,))
    finally:
        unroll_mod.FAST_BACKWARD = old
    peak = jax_peak(compiled)

    run, box = step_loop(compiled, state, xs, ys, call_key)
    run(opts.warmup)
    eps_seen = float(np.mean(np.asarray(box["out"]["eps"])))
    step_s, timed_steps, blocks = yield from timed(run, opts.steps, opts.repeats, opts.min_block_s)

    eval_s = None
    if eval_too and not seeds and mode == "tf":
        eval_s = yield from eval_timing(model, box["state"].params, box["state"].carries, xs, ys, opts)

    m = cfg.model
    variant = f"unroll={m.unroll},{m.matmul_dtype}" + (",autodiff" if autodiff else "") + (
        f",{sampler}" if sampler != "gumbel" else "")
    impl = "rnnlab_seeds" if seeds else "rnnlab"
    rec = record(impl, size_name, size, cell, mode, step_s, eval_s, compile_s, peak,
                 variant=variant, unroll=m.unroll, matmul_dtype=m.matmul_dtype, fast_backward=not autodiff,
                 eps=eps_seen, sampler=sampler, timed_steps=timed_steps, block_ms=[b * 1e3 for b in blocks])
    if seeds:
        rec["seeds"] = seeds
        rec["tokens_per_sec"] *= seeds
    return rec
