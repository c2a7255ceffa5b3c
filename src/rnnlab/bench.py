"""Training and evaluation throughput of the word-level LM, rnnlab against PyTorch and Flax, in one process.

The model everywhere: embedding -> L recurrent layers -> V-way softmax readout, trained with SGD and
global-norm gradient clipping on truncated-BPTT windows (the carry passes from one window to the
next). Implementations (``impl``):

- ``rnnlab``: ``train.make_train_step`` on ``model.LanguageModel``; mode ``tf`` (teacher forcing) and
  ``ss`` (``train.mode=scheduled_sampling`` at a constant eps, the same make_train_step);
- ``torch``: ``torch.nn.LSTM`` / ``GRU`` / ``RNN`` (cuDNN on a GPU, ATen/oneDNN on a CPU), mode tf;
- ``torch_loop``: a Python loop over ``LSTMCell`` / ``GRUCell`` / ``RNNCell`` with scheduled sampling
  (what a PyTorch user must write for SS: cuDNN cannot feed back samples), mode ss;
- ``flax``: flax.linen ``nn.RNN`` over ``OptimizedLSTMCell`` / ``GRUCell`` / ``SimpleCell``, mode tf;
- ``rnnlab_seeds``: the rnnlab tf step vmapped over ``seeds`` seeds in one program (the multi-seed
  runner's path), mode tf; ``tokens_per_sec`` counts the tokens of all seeds.

Timing: the step is compiled (jax: trace + lower + compile, timed as ``compile_s``) and run for
``warmup`` steps untimed; then ``repeats`` blocks of ``steps`` steps (lengthened until a block lasts
``min_block_s``; ``timed_steps`` in the record), each block ended by a device synchronisation
(``jax.block_until_ready`` / ``torch.cuda.synchronize``); ``step_ms`` is the median block time / steps. ``tokens_per_sec = B * T / step``. Peak memory: for jax programs the compiled
program's own footprint (arguments + outputs - donated aliases + temporaries, from XLA's memory
analysis), for torch on a GPU the allocator's peak (``torch.cuda.max_memory_allocated``) over the
row; None where neither exists (torch on a CPU). For torch ``compile_s`` is the first step's extra
time over a steady step (cuDNN plans, allocator warm-up), as it has no compile.

Entry point: ``run_benchmark(...) -> list of records``; ``markdown(records, env)``; the CLI is
``experiments/benchmark.py``.
"""
from __future__ import annotations

import datetime
import json
import math
import os
import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import RnnlabError

IMPLS = ("rnnlab", "torch", "torch_loop", "flax", "rnnlab_seeds")
MODES = ("tf", "ss")
CELLS = ("lstm", "gru", "rnn")  # rnnlab names; torch nn.LSTM/GRU/RNN, flax OptimizedLSTMCell/GRUCell/SimpleCell
IMPL_MODES = {"rnnlab": ("tf", "ss"), "torch": ("tf",), "torch_loop": ("ss",), "flax": ("tf",), "rnnlab_seeds": ("tf",)}


@dataclass(frozen=True)
class Size:
    vocab: int
    hidden: int
    layers: int
    batch: int
    bptt: int


# Zaremba et al. small / medium / large, a wide-batch size, and a tiny one for tests.
SIZES = {
    "T": Size(64, 16, 2, 4, 6),
    "S": Size(10_000, 200, 2, 20, 20),
    "M": Size(10_000, 650, 2, 20, 35),
    "L": Size(10_000, 1500, 2, 20, 35),
    "W": Size(10_000, 1024, 2, 256, 64),
}


@dataclass
class Options:
    steps: int = 20  # timed steps per repeat
    repeats: int = 5  # timed blocks; the median block gives step_ms
    warmup: int = 3  # untimed steps after compiling
    eps: float = 0.5  # scheduled sampling: probability of feeding the gold token
    dropout: float = 0.0  # on non-recurrent connections, in every implementation
    lr: float = 1.0
    clip: float = 5.0
    unrolls: tuple = ()  # rnnlab rows: scan unroll factors to try (() = the config's default); 0 = full (T)
    dtypes: tuple = ("float32",)  # rnnlab rows: model.matmul_dtype values to try
    autodiff: bool = False  # also time rnnlab with plain-autodiff backward (unroll.FAST_BACKWARD=False)
    seeds: int = 8  # rnnlab_seeds: seeds vmapped in one program
    seed_sizes: tuple = ("T", "S")  # sizes at which rnnlab_seeds runs (it is a size-S target)
    eval_steps: int = 0  # timed eval windows per repeat (0 = same as steps)
    min_block_s: float = 0.0  # lengthen timed blocks to at least this many seconds (0 = exactly `steps`)
    torch_threads: int = 0  # torch.set_num_threads for the torch rows (0 = torch's default)


def parse_list(text: str, allowed, what: str) -> tuple:
    items = tuple(s.strip() for s in text.split(",") if s.strip())
    bad = [s for s in items if s not in allowed]
    if bad or not items:
        raise RnnlabError(f"{what}={text!r} is not valid; allowed (comma-separated): {', '.join(allowed)}")
    return items


# ----------------------------------------------------------------------------- timing helpers
def _median_step(run_block, steps: int, repeats: int, min_block_s: float = 0.0) -> tuple[float, int]:
    """run_block(n) runs n steps and synchronises; -> (median seconds per step, steps per block).

    Blocks of ``steps`` steps, lengthened (up to 50x) until a block lasts ``min_block_s``, so that short
    steps are not timed over a few milliseconds (GPU clocks ramp up, launch jitter)."""
    n = steps
    if min_block_s > 0:
        t0 = time.perf_counter()
        run_block(n)
        t = time.perf_counter() - t0
        if t < min_block_s:
            n = min(math.ceil(n * min_block_s / max(t, 1e-6)), 50 * steps)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run_block(n)
        times.append((time.perf_counter() - t0) / n)
    return statistics.median(times), n


def _jax_peak(compiled) -> int | None:
    try:
        m = compiled.memory_analysis()
    except Exception:  # noqa: BLE001 - some backends do not implement it
        return None
    if m is None:
        return None
    return int(m.argument_size_in_bytes + m.output_size_in_bytes - m.alias_size_in_bytes + m.temp_size_in_bytes)


def _compile(fn, *args, donate=()):
    """jit (unless ``fn`` is jitted already) + trace + lower + compile, timed: -> (compiled, seconds)."""
    t0 = time.perf_counter()
    jitted = fn if hasattr(fn, "lower") else jax.jit(fn, donate_argnums=donate)
    compiled = jitted.lower(*args).compile()
    return compiled, time.perf_counter() - t0


def _step_loop(compiled, state, xs, ys, key):
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


def _eval_timing(model, params, carries, xs, ys, opts) -> float:
    """Median seconds of one forward-only window (summed NLL), the carry passed on: the evaluation
    throughput of any flax model called as model.apply(params, x [B,T], carries) -> (logits, carries)."""
    from .evaluate import token_nll

    def eval_step(params, carries, x, y):
        logits, carries = model.apply({"params": params}, x, carries)
        return token_nll(logits, y).sum(), carries

    compiled, _ = _compile(eval_step, params, carries, xs[0], ys[0])
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
    return _median_step(run, opts.eval_steps or opts.steps, opts.repeats, opts.min_block_s)[0]


def _batches(size: Size, n: int, seed: int = 0):
    """n random (x [B, T], y [B, T]) int32 windows over the vocabulary."""
    rng = np.random.default_rng(seed)
    toks = rng.integers(0, size.vocab, (n, size.batch, size.bptt + 1), dtype=np.int32)
    return toks[:, :, :-1], toks[:, :, 1:]


def _record(impl, size_name, size, cell, mode, step_s, eval_s, compile_s, peak, variant="", **extra):
    tokens = size.batch * size.bptt
    return {
        "impl": impl, "size": size_name, "cell": cell, "mode": mode, "variant": variant,
        "tokens_per_sec": tokens / step_s, "step_ms": step_s * 1e3,
        "eval_tokens_per_sec": (tokens / eval_s) if eval_s else None,
        "compile_s": compile_s, "peak_mem_bytes": peak,
        "vocab": size.vocab, "hidden": size.hidden, "layers": size.layers, "batch": size.batch, "bptt": size.bptt,
        **extra,
    }


# ----------------------------------------------------------------------------- rnnlab
def rnnlab_config(size: Size, cell: str, mode: str, opts: Options, unroll: int | None = None,
                  matmul_dtype: str = "float32"):
    from .config import base_config

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
    return cfg


def _ss_available() -> bool:
    """Does this checkout implement train.mode=scheduled_sampling (config.train.schedule)?"""
    from .config import base_config

    return "schedule" in base_config().train


def bench_rnnlab(size_name, size, cell, mode, opts, *, unroll=None, matmul_dtype="float32", autodiff=False,
                 seeds: int = 0, eval_too: bool = True) -> dict:
    from . import unroll as unroll_mod
    from .model import build_model
    from .train import create_train_state, make_optimizer, make_train_step

    cfg = rnnlab_config(size, cell, mode, opts, unroll, matmul_dtype)
    model = build_model(cfg, size.vocab)
    tx, _ = make_optimizer(cfg, 1000)
    step = make_train_step(model, tx, cfg)
    key = jax.random.key(0)
    xs, ys = _batches(size, 4)
    xs, ys = jnp.asarray(xs), jnp.asarray(ys)

    old = unroll_mod.FAST_BACKWARD
    unroll_mod.FAST_BACKWARD = not autodiff
    try:
        if seeds:  # the multi-seed runner's program: jit(vmap(step)) over stacked states, one key per seed
            from .train import split_keys

            try:
                from .multiseed import stack, vmapped_step
            except ImportError:  # pragma: no cover - older checkouts without the runner
                stack = lambda trees: jax.tree_util.tree_map(lambda *a: jnp.stack(a), *trees)  # noqa: E731
                vmapped_step = lambda m, t, c: jax.jit(jax.vmap(make_train_step(m, t, c), in_axes=(0, None, 0)),  # noqa: E731
                                                       donate_argnums=0)
            state = stack([create_train_state(cfg, model, tx, split_keys(s)["init"]) for s in range(seeds)])
            call_key = jnp.stack([split_keys(s)["dropout"] for s in range(seeds)])
            compiled, compile_s = _compile(vmapped_step(model, tx, cfg), state, (xs[0], ys[0]), call_key)
        else:
            state = create_train_state(cfg, model, tx, jax.random.key(1))
            call_key = key
            compiled, compile_s = _compile(step, state, (xs[0], ys[0]), call_key, donate=(0,))
    finally:
        unroll_mod.FAST_BACKWARD = old
    peak = _jax_peak(compiled)

    run, box = _step_loop(compiled, state, xs, ys, call_key)
    run(opts.warmup)
    eps_seen = float(np.mean(np.asarray(box["out"]["eps"])))
    step_s, timed_steps = _median_step(run, opts.steps, opts.repeats, opts.min_block_s)

    eval_s = None
    if eval_too and not seeds and mode == "tf":
        eval_s = _eval_timing(model, box["state"].params, box["state"].carries, xs, ys, opts)

    m = cfg.model
    variant = f"unroll={m.unroll},{m.matmul_dtype}" + (",autodiff" if autodiff else "")
    impl = "rnnlab_seeds" if seeds else "rnnlab"
    rec = _record(impl, size_name, size, cell, mode, step_s, eval_s, compile_s, peak,
                  variant=variant, unroll=m.unroll, matmul_dtype=m.matmul_dtype, fast_backward=not autodiff,
                  eps=eps_seen, timed_steps=timed_steps)
    if seeds:
        rec["seeds"] = seeds
        rec["tokens_per_sec"] *= seeds
    return rec


# ----------------------------------------------------------------------------- flax nn.RNN
def bench_flax(size_name, size, cell, opts) -> dict:
    import flax.linen as nn

    from .evaluate import token_nll

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
    xs, ys = _batches(size, 4)
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
    compiled, compile_s = _compile(step, state, (xs[0], ys[0]), key, donate=(0,))
    peak = _jax_peak(compiled)
    run, box = _step_loop(compiled, state, xs, ys, key)
    run(opts.warmup)
    step_s, timed_steps = _median_step(run, opts.steps, opts.repeats, opts.min_block_s)

    eval_s = _eval_timing(model, box["state"][0], box["state"][2], xs, ys, opts)
    return _record("flax", size_name, size, cell, "tf", step_s, eval_s, compile_s, peak, variant="nn.RNN",
                   timed_steps=timed_steps)


# ----------------------------------------------------------------------------- torch
def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def bench_torch(size_name, size, cell, opts, *, loop: bool) -> dict:
    """loop=False: nn.LSTM/GRU/RNN (cuDNN on GPU), teacher forcing. loop=True: a Python loop over
    LSTMCell/GRUCell/RNNCell with scheduled sampling (coin per token, sample by Gumbel-max)."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    cuda = torch.cuda.is_available()
    dev = torch.device("cuda" if cuda else "cpu")
    if opts.torch_threads:
        torch.set_num_threads(opts.torch_threads)
    if cuda:  # fp32 with TF32 matmuls, like XLA's default on the GPU
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    torch.manual_seed(0)
    V, H, L, B, T = size.vocab, size.hidden, size.layers, size.batch, size.bptt
    is_lstm = cell == "lstm"

    class TorchLM(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(V, H)
            self.drop = nn.Dropout(opts.dropout)
            if loop:
                c = {"lstm": nn.LSTMCell, "gru": nn.GRUCell, "rnn": nn.RNNCell}[cell]
                self.cells = nn.ModuleList([c(H, H) for _ in range(L)])
            else:
                c = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[cell]
                self.rnn = c(H, H, L, dropout=opts.dropout if L > 1 else 0.0)
            self.out = nn.Linear(H, V)

    model = TorchLM().to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=opts.lr)
    params = list(model.parameters())

    def zeros():
        z = lambda: torch.zeros(L, B, H, device=dev)  # noqa: E731
        return (z(), z()) if is_lstm else z()

    def detach(h):
        return tuple(t.detach() for t in h) if isinstance(h, tuple) else h.detach()

    xs_np, ys_np = _batches(size, 4)
    xs = [torch.as_tensor(x.T.copy(), dtype=torch.long, device=dev) for x in xs_np]  # [T, B] time-major
    ys = [torch.as_tensor(y.T.copy(), dtype=torch.long, device=dev) for y in ys_np]
    state = {"h": zeros(), "i": 0}

    def forward_cudnn(x, h):
        out, h = model.rnn(model.drop(model.emb(x)), h)
        return model.out(model.drop(out)), h

    def forward_loop_ss(x, h):
        hs = [tuple(t[l] for t in h) if is_lstm else h[l] for l in range(L)]
        coins = torch.rand(T, B, device=dev) < opts.eps  # True: feed the gold token
        logits, prev = [], None
        for t in range(T):
            tok = x[t] if t == 0 else torch.where(coins[t], x[t], prev)
            inp = model.drop(model.emb(tok))
            for l, c in enumerate(model.cells):
                if l > 0:
                    inp = model.drop(inp)
                hs[l] = c(inp, hs[l])
                inp = hs[l][0] if is_lstm else hs[l]
            lg = model.out(model.drop(inp))
            logits.append(lg)
            with torch.no_grad():  # a sample from softmax(lg) by Gumbel-max (no host sync)
                g = -torch.log(-torch.log(torch.rand_like(lg).clamp_min(1e-20)))
                prev = (lg + g).argmax(-1)
        if is_lstm:
            h = (torch.stack([s[0] for s in hs]), torch.stack([s[1] for s in hs]))
        else:
            h = torch.stack(hs)
        return torch.stack(logits), h

    forward = forward_loop_ss if loop else forward_cudnn

    def train_step():
        i = state["i"] % 4
        model.train()
        logits, h = forward(xs[i], state["h"])
        loss = F.cross_entropy(logits.reshape(-1, V), ys[i].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, opts.clip)
        opt.step()
        state["h"] = detach(h)
        state["i"] += 1

    def sync():
        if cuda:
            torch.cuda.synchronize()

    def run(n):
        for _ in range(n):
            train_step()
        sync()

    t0 = time.perf_counter()
    run(1)
    first = time.perf_counter() - t0
    run(max(opts.warmup - 1, 0))
    step_s, timed_steps = _median_step(run, opts.steps, opts.repeats, opts.min_block_s)

    eval_s = None
    if not loop:
        ebox = {"h": zeros(), "i": 0}

        def erun(n):
            model.eval()
            with torch.no_grad():
                for _ in range(n):
                    i = ebox["i"] % 4
                    logits, ebox["h"] = forward(xs[i], ebox["h"])
                    F.cross_entropy(logits.reshape(-1, V), ys[i].reshape(-1), reduction="sum")
                    ebox["i"] += 1
            sync()

        erun(opts.warmup)
        eval_s, _ = _median_step(erun, opts.eval_steps or opts.steps, opts.repeats, opts.min_block_s)
    peak = int(torch.cuda.max_memory_allocated()) if cuda else None
    impl, mode = ("torch_loop", "ss") if loop else ("torch", "tf")
    variant = ("cell loop" if loop else "cuDNN" if cuda else "nn." + cell.upper())
    return _record(impl, size_name, size, cell, mode, step_s, eval_s, max(first - step_s, 0.0), peak,
                   variant=variant, timed_steps=timed_steps)


# ----------------------------------------------------------------------------- driver
def environment() -> dict:
    import flax

    from .train import git_commit

    d = jax.devices()[0]
    env = {"device": d.device_kind, "platform": d.platform, "jax": jax.__version__, "flax": flax.__version__,
           "optax": optax.__version__, "python": platform.python_version(), "cpus": os.cpu_count(),
           "git_commit": git_commit(), "date": datetime.datetime.now().isoformat(timespec="seconds")}
    try:
        import jaxlib

        env["jaxlib"] = jaxlib.__version__
    except ImportError:
        pass
    if torch_available():
        import torch

        env["torch"] = torch.__version__
        env["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            env["torch_device"] = torch.cuda.get_device_name()
            env["cudnn"] = torch.backends.cudnn.version()
    return env


def plan(sizes, cells, impls, modes, opts: Options) -> list[tuple]:
    """The rows to run: (impl, size, cell, mode, kwargs), in a stable order (size, cell, impl)."""
    rows = []
    for s in sizes:
        for c in cells:
            for impl in impls:
                for mode in IMPL_MODES[impl]:
                    if mode not in modes:
                        continue
                    if impl == "rnnlab":
                        unrolls = opts.unrolls or (None,)
                        for u in unrolls:
                            for dt in (opts.dtypes if mode == "tf" else opts.dtypes[:1]):
                                rows.append((impl, s, c, mode, {"unroll": u, "matmul_dtype": dt}))
                        if opts.autodiff and mode == "tf":
                            rows.append((impl, s, c, mode, {"unroll": unrolls[0], "matmul_dtype": opts.dtypes[0],
                                                            "autodiff": True}))
                    elif impl == "rnnlab_seeds":
                        if s in opts.seed_sizes:
                            rows.append((impl, s, c, mode, {"unroll": (opts.unrolls or (None,))[0],
                                                            "matmul_dtype": opts.dtypes[0]}))
                    else:
                        rows.append((impl, s, c, mode, {}))
    return rows


def run_benchmark(sizes=("S",), cells=CELLS, impls=IMPLS, modes=MODES, opts: Options | None = None,
                  log=print) -> list[dict]:
    """Run every planned row in this process; a row that cannot run gives a record with ``error``."""
    opts = opts or Options()
    records = []
    have_torch = torch_available()
    for impl, s, c, mode, kw in plan(sizes, cells, impls, modes, opts):
        size = SIZES[s]
        base = {"impl": impl, "size": s, "cell": c, "mode": mode}
        if impl.startswith("torch") and not have_torch:
            records.append({**base, "error": "torch is not installed"})
            continue
        if mode == "ss" and impl.startswith("rnnlab") and not _ss_available():
            records.append({**base, "error": "train.mode=scheduled_sampling is not implemented in forcing.py"})
            continue
        try:
            if impl == "rnnlab":
                rec = bench_rnnlab(s, size, c, mode, opts, **kw)
            elif impl == "rnnlab_seeds":
                rec = bench_rnnlab(s, size, c, mode, opts, seeds=opts.seeds, **kw)
            elif impl == "flax":
                rec = bench_flax(s, size, c, opts)
            else:
                rec = bench_torch(s, size, c, opts, loop=(impl == "torch_loop"))
        except Exception as e:  # noqa: BLE001 - keep the other rows; the record says what failed
            if isinstance(e, KeyboardInterrupt):
                raise
            rec = {**base, "error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}
        records.append(rec)
        if log:
            log(_line(rec))
    _add_ratios(records)
    return records


def _line(r: dict) -> str:
    if "error" in r:
        return f"{r['impl']:>12} {r['size']} {r['cell']:>4} {r['mode']}: ERROR {r['error']}"
    ev = r.get("eval_tokens_per_sec")
    return (f"{r['impl']:>12} {r['size']} {r['cell']:>4} {r['mode']} {r.get('variant', ''):<26} "
            f"{r['tokens_per_sec']:>12,.0f} tok/s  {r['step_ms']:8.2f} ms  eval {ev or 0:>12,.0f} tok/s  "
            f"compile {r['compile_s']:6.2f} s  peak {_mb(r['peak_mem_bytes'])}")


def _mb(b):
    return "-" if b is None else f"{b / 2**20:,.0f} MB"


def headline(records, impl, size, cell, mode):
    """The first successful record of (impl, size, cell, mode): for rnnlab, the first variant asked for."""
    for r in records:
        if (r["impl"], r["size"], r["cell"], r["mode"]) == (impl, size, cell, mode) and "error" not in r:
            return r
    return None


def _add_ratios(records):
    """Ratios on the headline rows: rnnlab tf vs torch and flax, ss vs tf step and vs torch loop, seeds."""
    for r in records:
        if "error" in r:
            continue
        s, c = r["size"], r["cell"]
        tf = headline(records, "rnnlab", s, c, "tf")
        torch_tf, flax_tf = headline(records, "torch", s, c, "tf"), headline(records, "flax", s, c, "tf")
        loop_ss = headline(records, "torch_loop", s, c, "ss")
        if r["impl"] == "rnnlab" and r["mode"] == "tf":
            if torch_tf:
                r["x_torch"] = r["tokens_per_sec"] / torch_tf["tokens_per_sec"]
            if flax_tf:
                r["x_flax"] = r["tokens_per_sec"] / flax_tf["tokens_per_sec"]
        if r["impl"] == "rnnlab" and r["mode"] == "ss":
            if tf:
                r["ss_step_over_tf_step"] = r["step_ms"] / tf["step_ms"]
            if loop_ss:
                r["x_torch_loop"] = r["tokens_per_sec"] / loop_ss["tokens_per_sec"]
        if r["impl"] == "rnnlab_seeds" and tf:
            r["step_over_one_seed"] = r["step_ms"] / tf["step_ms"]


def _fmt(v, kind="tps"):
    if v is None:
        return "-"
    if kind == "tps":
        return f"{v / 1e6:.2f}M" if v >= 1e6 else f"{v / 1e3:.1f}k"
    if kind == "x":
        return f"{v:.2f}x"
    if kind in ("s", "ms"):
        return f"{v:.2f}"
    if kind == "mb":
        return f"{v / 2**20:,.0f}" if v >= 2**20 else f"{v / 2**20:.2f}"
    return str(v)


def markdown(records, env: dict, command: str = "") -> str:
    """Summary table (headline rows and ratios), then every record."""
    out = ["# rnnlab benchmark", ""]
    if command:
        out += [f"Command: `{command}`", ""]
    out += [f"Device: **{env.get('torch_device') or env.get('device')}** ({env.get('platform')}, "
            f"{env.get('cpus')} CPUs); jax {env.get('jax')} (jaxlib {env.get('jaxlib', '?')}), "
            f"flax {env.get('flax')}, optax {env.get('optax')}, torch {env.get('torch', 'absent')}"
            + (f", cuDNN {env['cudnn']}" if env.get("cudnn") else "")
            + f", python {env.get('python')}; commit {env.get('git_commit')}; {env.get('date')}.", ""]
    out += ["Training tokens/s (forward + backward + SGD step with global-norm clipping; median of repeats, "
            "warm-up excluded). Ratios: rnnlab teacher forcing over torch nn.<CELL> (cuDNN on a GPU) and over "
            "flax nn.RNN; scheduled sampling: rnnlab SS step time over rnnlab TF step time, and rnnlab SS "
            "throughput over the torch cell loop with SS.", ""]
    out += ["| size | cell | rnnlab TF | torch | rnnlab/torch | flax nn.RNN | rnnlab/flax | rnnlab SS | "
            "SS/TF step | torch loop SS | SS/torch loop | compile s TF / SS | peak MB TF |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    keys = []
    for r in records:
        if (r["size"], r["cell"]) not in keys:
            keys.append((r["size"], r["cell"]))
    for s, c in keys:
        tf, ss = headline(records, "rnnlab", s, c, "tf"), headline(records, "rnnlab", s, c, "ss")
        to, fl, lp = (headline(records, "torch", s, c, "tf"), headline(records, "flax", s, c, "tf"),
                      headline(records, "torch_loop", s, c, "ss"))
        g = lambda r, k: None if r is None else r.get(k)  # noqa: E731
        comp = f"{_fmt(g(tf, 'compile_s'), 's')} / {_fmt(g(ss, 'compile_s'), 's')}"
        peak = g(tf, "peak_mem_bytes")
        out.append(f"| {s} | {c} | {_fmt(g(tf, 'tokens_per_sec'))} | {_fmt(g(to, 'tokens_per_sec'))} | "
                   f"{_fmt(g(tf, 'x_torch'), 'x')} | {_fmt(g(fl, 'tokens_per_sec'))} | {_fmt(g(tf, 'x_flax'), 'x')} | "
                   f"{_fmt(g(ss, 'tokens_per_sec'))} | {_fmt(g(ss, 'ss_step_over_tf_step'), 'x')} | "
                   f"{_fmt(g(lp, 'tokens_per_sec'))} | {_fmt(g(ss, 'x_torch_loop'), 'x')} | {comp} | "
                   f"{_fmt(peak, 'mb')} |")
    seeds = [r for r in records if r["impl"] == "rnnlab_seeds" and "error" not in r]
    if seeds:
        out += ["", "Seeds vmapped (one program, one batch, one key per seed): step time over one seed's step.", "",
                "| size | cell | seeds | step ms | one seed ms | ratio | tokens/s (all seeds) |", "|---|---|---|---|---|---|---|"]
        for r in seeds:
            one = headline(records, "rnnlab", r["size"], r["cell"], "tf")
            out.append(f"| {r['size']} | {r['cell']} | {r['seeds']} | {r['step_ms']:.2f} | "
                       f"{_fmt(None if one is None else one['step_ms'], 'ms')} | {_fmt(r.get('step_over_one_seed'), 'x')} | "
                       f"{_fmt(r['tokens_per_sec'])} |")
    out += ["", "All rows:", "", "| impl | size | cell | mode | variant | train tok/s | step ms | eval tok/s | "
            "compile s | peak MB |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        if "error" in r:
            out.append(f"| {r['impl']} | {r['size']} | {r['cell']} | {r['mode']} | error: {r['error']} | | | | | |")
            continue
        out.append(f"| {r['impl']} | {r['size']} | {r['cell']} | {r['mode']} | {r.get('variant', '')} | "
                   f"{_fmt(r['tokens_per_sec'])} | {r['step_ms']:.2f} | {_fmt(r.get('eval_tokens_per_sec'))} | "
                   f"{r['compile_s']:.2f} | {_fmt(r['peak_mem_bytes'], 'mb')} |")
    return "\n".join(out) + "\n"


def write_results(records, env, out_dir, command: str = "") -> tuple[Path, Path]:
    """-> (DIR/benchmark.json: the list of records, each with the environment; DIR/benchmark.md)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    full = [{**r, "device": env.get("torch_device") or env.get("device"), "env": env} for r in records]
    jpath, mpath = out / "benchmark.json", out / "benchmark.md"
    jpath.write_text(json.dumps(full, indent=1))
    mpath.write_text(markdown(records, env, command))
    return jpath, mpath
