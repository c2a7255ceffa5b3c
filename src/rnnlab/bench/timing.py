"""Timing plumbing shared by the jax and torch rows: median step time over blocks, timed jax
compilation, the compiled program's peak memory, the train/eval step loops, the random token
windows and the record every row returns.

A timed block runs n steps and ends with a device synchronisation; ``step_s`` is the median block
time / n; ``tokens_per_sec = B * T / step_s``.

Interleaving. A row is written as a generator that yields a ``TimingRequest`` wherever it needs a
timed loop (``step_s, n, blocks = yield from timed(run, ...)``) and returns its record.
``run_interleaved`` advances the rows of one comparison together and times their blocks in turn
(``time_in_turn``: block r of row 1, block r of row 2, ..., then block r + 1), so that on a shared machine
a slow minute slows every peer alike and the ratios stay honest; ``run_alone`` and ``median_step`` are
the one-row case.
"""
from __future__ import annotations

import dataclasses
import math
import statistics
import time
from typing import Callable

import jax
import numpy as np

from .plan import Size


def median_step(run_block, steps: int, repeats: int, min_block_s: float = 0.0,
                blocks: list | None = None) -> tuple[float, int]:
    """run_block(n) runs n steps and synchronises; -> (median seconds per step, steps per block).

    Blocks of ``steps`` steps, lengthened (up to 50x) until a block lasts ``min_block_s``, so that short
    steps are not timed over a few milliseconds (GPU clocks ramp up, launch jitter). ``blocks``: a
    list that receives every block's seconds per step (e.g. for the fastest block on a shared machine)."""
    step_s, n, times = time_in_turn([TimingRequest(run_block, steps, repeats, min_block_s)])[0]
    if blocks is not None:
        blocks.extend(times)
    return step_s, n


@dataclasses.dataclass
class TimingRequest:
    """What a row asks to be timed: ``run(n)`` runs n steps and synchronises."""

    run: Callable[[int], None]
    steps: int
    repeats: int
    min_block_s: float = 0.0


def timed(run, steps: int, repeats: int, min_block_s: float = 0.0):
    """Inside a row's generator: ``step_s, n, blocks = yield from timed(run, ...)``."""
    result = yield TimingRequest(run, steps, repeats, min_block_s)
    return result


def block_length(req: TimingRequest) -> int:
    """``req.steps``, lengthened (up to 50x) until one block lasts ``req.min_block_s`` (one untimed block)."""
    n = req.steps
    if req.min_block_s > 0:
        t0 = time.perf_counter()
        req.run(n)
        t = time.perf_counter() - t0
        if t < req.min_block_s:
            n = min(math.ceil(n * req.min_block_s / max(t, 1e-6)), 50 * req.steps)
    return n


def time_in_turn(reqs: list) -> list:
    """Time several requests block by block in turn (``repeats`` rounds of one block each, a request
    leaving the rounds once it has its ``repeats``) -> [(median seconds per step, steps per block,
    every block's seconds per step)] in order. One request: ``median_step``."""
    lengths = [block_length(r) for r in reqs]
    times: list = [[] for _ in reqs]
    for _ in range(max(r.repeats for r in reqs)):
        for r, n, ts in zip(reqs, lengths, times):
            if len(ts) < r.repeats:
                t0 = time.perf_counter()
                r.run(n)
                ts.append((time.perf_counter() - t0) / n)
    return [(statistics.median(ts), n, ts) for n, ts in zip(lengths, times)]


def _reraise(i, e):
    raise e


def run_alone(gen):
    """Drive one row's generator to its record (``run_interleaved`` of one row; an error propagates)."""
    return run_interleaved([gen], _reraise)[0]


def run_interleaved(gens: list, on_error: Callable) -> list:
    """Drive several rows' generators together -> their records (in order). Each round gathers every
    live row's next timing request and times them block by block in turn (``repeats`` rounds of one
    block per row). A row that raises gets ``on_error(index, exception)`` as its record."""
    out: list = [None] * len(gens)
    pending: dict = {}  # index -> the request it waits on
    for i, g in enumerate(gens):
        _advance(i, g, None, pending, out, on_error)
    while pending:
        reqs = dict(pending)
        pending.clear()
        for i, answer in zip(reqs, time_in_turn(list(reqs.values()))):
            _advance(i, gens[i], answer, pending, out, on_error)
    return out


def _advance(i, gen, answer, pending, out, on_error):
    try:
        pending[i] = next(gen) if answer is None else gen.send(answer)
    except StopIteration as stop:
        out[i] = stop.value
    except Exception as e:  # noqa: BLE001 - the other rows go on; the record says what failed
        out[i] = on_error(i, e)


def jax_peak(compiled) -> int | None:
    """Bytes of a compiled XLA program: arguments + outputs - donated aliases + temporaries (None if unknown)."""
    try:
        m = compiled.memory_analysis()
    except Exception:  # noqa: BLE001 - some backends do not implement it
        return None
    if m is None:
        return None
    return int(m.argument_size_in_bytes + m.output_size_in_bytes - m.alias_size_in_bytes + m.temp_size_in_bytes)


def compile_timed(fn, *args, donate=()):
    """jit (unless ``fn`` is jitted already) + trace + lower + compile, timed: -> (compiled, seconds)."""
    t0 = time.perf_counter()
    jitted = fn if hasattr(fn, "lower") else jax.jit(fn, donate_argnums=donate)
    compiled = jitted.lower(*args).compile()
    return compiled, time.perf_counter() - t0


def step_loop(compiled, state, xs, ys, key):
    """-> (run, box): ``run(n)`` takes n compiled train steps over the 4 windows in turn, passing
    the (donated) state on, and waits for the device; ``box["state"]`` / ``box["out"]`` hold the
    latest state and the step's second output (metrics or loss)."""
    box = {"state": state, "i": 0, "out": None}

    def run(n):
        st = box["state"]
        for _ in range(n):
            i = box["i"] % 4
            st, out = compiled(st, (xs[i], ys[i]), key)
            box["i"] += 1
        jax.block_until_ready(st)
        box["state"], box["out"] = st, out

    return run, box


def eval_timing(model, params, carries, xs, ys, opts):
    """Median seconds of one forward-only window (summed NLL), the carry passed on: the evaluation
    throughput of any flax model called as model.apply(params, x [B,T], carries) -> (logits, carries).
    A generator: ``eval_s = yield from eval_timing(...)`` (see ``timed``)."""
    from ..evaluate import token_nll

    def eval_step(params, carries, x, y):
        logits, carries = model.apply({"params": params}, x, carries)
        return token_nll(logits, y).sum(), carries

    compiled, _ = compile_timed(eval_step, params, carries, xs[0], ys[0])
    box = {"c": carries, "i": 0}

    def run(n):
        c = box["c"]
        for _ in range(n):
            i = box["i"] % 4
            nll, c = compiled(params, c, xs[i], ys[i])
            box["i"] += 1
        jax.block_until_ready((nll, c))
        box["c"] = c

    run(opts.warmup)
    step_s, _, _ = yield from timed(run, opts.eval_steps or opts.steps, opts.repeats, opts.min_block_s)
    return step_s


def batches(size: Size, n: int, seed: int = 0):
    """n random (x [n, B, T], y [n, B, T]) int32 windows over the vocabulary (y = x shifted by one)."""
    rng = np.random.default_rng(seed)
    toks = rng.integers(0, size.vocab, (n, size.batch, size.bptt + 1), dtype=np.int32)
    return toks[:, :, :-1], toks[:, :, 1:]


def record(impl, size_name, size, cell, mode, step_s, eval_s, compile_s, peak, variant="", **extra) -> dict:
    """One benchmark row: tokens/s = B * T / step_s (train) and / eval_s (eval; None when not timed)."""
    tokens = size.batch * size.bptt
    return {
        "impl": impl, "size": size_name, "cell": cell, "mode": mode, "variant": variant,
        "tokens_per_sec": tokens / step_s, "step_ms": step_s * 1e3,
        "eval_tokens_per_sec": (tokens / eval_s) if eval_s else None,
        "compile_s": compile_s, "peak_mem_bytes": peak,
        "vocab": size.vocab, "hidden": size.hidden, "layers": size.layers, "batch": size.batch, "bptt": size.bptt,
        **extra,
    }
