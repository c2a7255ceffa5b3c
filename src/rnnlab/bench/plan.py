"""What the benchmark runs: implementations, modes, cells, model sizes, timing options, and the
ordered list of rows (``plan``) that ``driver.run_benchmark`` times."""
from __future__ import annotations

from dataclasses import dataclass

from .. import RnnlabError

IMPLS = ("rnnlab", "torch", "torch_loop", "flax", "rnnlab_seeds")
MODES = ("tf", "ss")
CELLS = ("lstm", "gru", "rnn")  # rnnlab names; torch nn.LSTM/GRU/RNN, flax OptimizedLSTMCell/GRUCell/SimpleCell
IMPL_MODES = {"rnnlab": ("tf", "ss"), "torch": ("tf",), "torch_loop": ("ss",), "flax": ("tf",), "rnnlab_seeds": ("tf",)}


@dataclass(frozen=True)
class Size:
    """The word-level LM of one row: V vocab, H hidden (= embedding), L layers, B batch, T bptt window."""

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
    samplers: tuple = ("gumbel",)  # rnnlab ss rows: train.sampler values to try (heads.py)
    autodiff: bool = False  # also time rnnlab with plain-autodiff backward (unroll.FAST_BACKWARD=False)
    seeds: int = 8  # rnnlab_seeds: seeds vmapped in one program
    seed_sizes: tuple = ("T", "S")  # sizes at which rnnlab_seeds runs (it is a size-S target)
    eval_steps: int = 0  # timed eval windows per repeat (0 = same as steps)
    min_block_s: float = 0.0  # lengthen timed blocks to at least this many seconds (0 = exactly `steps`)
    torch_threads: int = 0  # torch.set_num_threads for the torch rows (0 = torch's default)
    torch_dtypes: tuple = ("float32",)  # torch tf rows: float32 and/or float16 (GPU only: cuDNN's persistent kernels)
    interleave: bool = True  # time the rows of one (size, cell) block by block in turn (timing.run_interleaved)


def parse_list(text: str, allowed, what: str) -> tuple:
    """'a,b' -> ('a', 'b'); RnnlabError naming ``what`` and the allowed values if any item is not allowed."""
    items = tuple(s.strip() for s in text.split(",") if s.strip())
    bad = [s for s in items if s not in allowed]
    if bad or not items:
        raise RnnlabError(f"{what}={text!r} is not valid; allowed (comma-separated): {', '.join(allowed)}")
    return items


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
                            if mode == "tf":
                                rows += [(impl, s, c, mode, {"unroll": u, "matmul_dtype": dt}) for dt in opts.dtypes]
                            else:
                                rows += [(impl, s, c, mode, {"unroll": u, "matmul_dtype": opts.dtypes[0], "sampler": sm})
                                         for sm in opts.samplers]
                        if opts.autodiff and mode == "tf":
                            rows.append((impl, s, c, mode, {"unroll": unrolls[0], "matmul_dtype": opts.dtypes[0],
                                                            "autodiff": True}))
                    elif impl == "rnnlab_seeds":
                        if s in opts.seed_sizes:
                            rows.append((impl, s, c, mode, {"unroll": (opts.unrolls or (None,))[0],
                                                            "matmul_dtype": opts.dtypes[0]}))
                    elif impl == "torch":
                        rows += [(impl, s, c, mode, {"dtype": dt}) for dt in opts.torch_dtypes]
                    else:
                        rows.append((impl, s, c, mode, {}))
    return rows
