"""The flax rows: flax.linen ``nn.RNN`` over ``OptimizedLSTMCell`` / ``GRUCell`` / ``SimpleCell``,
the same LM (embedding -> L layers -> V-way readout) trained with teacher forcing and
optax clip_by_global_norm + sgd."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from .timing import batches, compile_timed, eval_timing, jax_peak, record, run_alone, step_loop, timed


def bench_flax(size_name, size, cell, opts) -> dict:
    """Time one flax row alone (mode tf, variant 'nn.RNN') -> record (timing.record), eval tokens/s included."""
    return run_alone(flax_row(size_name, size, cell, opts))


def flax_row(size_name, size, cell, opts):
    """The generator of one flax row (``timing.timed``)."""
    import flax.linen as nn

    from ..evaluate import token_nll

    cls = {"lstm": nn.OptimizedLSTMCell, "gru": nn.GRUCell, "rnn": nn.SimpleCell}[cell]
    V, H, L, B = size.vocab, size.hidden, size.layers, size.batch
    p = opts.dropout

    class FlaxLM(nn.Module):
        @nn.compact
        def __call__(self, x, carries, train: bool = False):
            h = nn.Dropout(p, deterministic=not train)(nn.Embed(V, H)(x))
            new = []
            for i in range(L):
                if i > 0:
                    h = nn.Dropout(p, deterministic=not train)(h)
                c, h = nn.RNN(cls(features=H), return_carry=True, name=f"rnn_{i}")(h, initial_carry=carries[i])
                new.append(c)
            h = nn.Dropout(p, deterministic=not train)(h)
            return nn.Dense(V)(h), tuple(new)

    model = FlaxLM()
    carries = tuple(cls(features=H, parent=None).initialize_carry(jax.random.key(0), (B, H)) for _ in range(L))
    xs, ys = batches(size, 4)
    xs, ys = jnp.asarray(xs), jnp.asarray(ys)
    params = model.init(jax.random.key(1), xs[0], carries)["params"]
    tx = optax.chain(optax.clip_by_global_norm(opts.clip), optax.sgd(opts.lr))
    state = (params, tx.init(params), carries)

    def step(state, batch, key):
        params, opt_state, carries = state
        x, y = batch

        def loss_fn(pr):
            logits, new = model.apply({"params": pr}, x, carries, train=True, rngs={"dropout": key})
            return token_nll(logits, y).mean(), new

        (loss, new), g = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = tx.update(g, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state, jax.lax.stop_gradient(new)), loss

    key = jax.random.key(2)
    compiled, compile_s = compile_timed(step, state, (xs[0], ys[0]), key, donate=(0,))
    peak = jax_peak(compiled)
    run, box = step_loop(compiled, state, xs, ys, key)
    run(opts.warmup)
    step_s, timed_steps, _ = yield from timed(run, opts.steps, opts.repeats, opts.min_block_s)

    eval_s = yield from eval_timing(model, box["state"][0], box["state"][2], xs, ys, opts)
    return record("flax", size_name, size, cell, "tf", step_s, eval_s, compile_s, peak, variant="nn.RNN",
                  timed_steps=timed_steps)
