"""Speed against sequence length: training tokens/s, step time and compile time of the cells whose
teacher forcing runs in parallel over time against the sequential ones, at T = 64 ... 4096 with B
and H fixed.

Rows (``length_plan``): for each T, each cell, each mode, one ``rnnlab_rows.bench_rnnlab`` row on
``Size(V, H, 1 layer, B, T)`` (``length_size``): the same ``train.make_train_step`` as training
(SGD, global-norm clipping, one TBPTT window of length T per step, embedding = H, a V-way readout):

* ``mingru``, ``minlstm``: teacher forcing is ``jax.lax.associative_scan`` over time (depth
  O(log T)); scheduled sampling falls back to the sequential ``lax.scan`` of ``cell.step``
  (``forcing.sampled_loss``: a sequential forward without gradient, then the parallel pass);
* ``lstm``, ``gru``: the sequential ``lax.scan`` with the hand-written VJP in both modes;
* ``output_to_hidden``: teacher forcing is one batched pass with no scan (the LM form: o_{t-1} = x_t,
  output_to_hidden.py); scheduled sampling runs its sequential pass, then the parallel one.

``ss`` is ``train.mode=scheduled_sampling`` at a constant eps (``Options.eps``), a coin per token,
a sample from the softmax fed back. The tables use each row's **fastest** timed block
(``best_step_ms``, ``best_tokens_per_sec``; the median ``step_ms`` and every block ``block_ms`` stay
in the record): on a CPU shared with other jobs the fastest block is the one least slowed by them.
``growth`` = step time at the longest T / at the shortest T (T grows 64x from 64 to 4096: 64x is
linear in T); ``ss_over_tf`` = SS step / TF step at the same T. ``markdown_lengths`` prints the
tables, ``plot_lengths`` tokens/s against T (log-log).
"""
from __future__ import annotations

import json
from pathlib import Path

from .. import RnnlabError
from .plan import Options, Size
from .rnnlab_rows import bench_rnnlab

LENGTHS = (64, 256, 1024, 4096)
LENGTH_CELLS = ("mingru", "minlstm", "output_to_hidden", "lstm", "gru")
PARALLEL = ("mingru", "minlstm", "output_to_hidden")  # teacher forcing parallel over time
DEFAULT_BATCH, DEFAULT_HIDDEN, DEFAULT_VOCAB = 8, 128, 64


def length_size(T: int, batch: int = DEFAULT_BATCH, hidden: int = DEFAULT_HIDDEN, vocab: int = DEFAULT_VOCAB) -> Size:
    """One layer of H units, B sequences of T tokens over a V-token vocabulary."""
    return Size(vocab, hidden, 1, batch, T)


def parse_lengths(text: str) -> tuple[int, ...]:
    """'64,256' -> (64, 256); RnnlabError unless every item is an integer >= 1."""
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    if not items or not all(t.isdigit() and int(t) >= 1 for t in items):
        raise RnnlabError(f"--lengths={text!r} is not valid; give comma-separated integers >= 1 (e.g. 64,256,1024,4096)")
    return tuple(int(t) for t in items)


def length_plan(lengths, cells, modes) -> list[tuple]:
    """(T, cell, mode) in the order they are timed: by T, then cell, then mode."""
    return [(T, c, m) for T in lengths for c in cells for m in modes]


def run_length_benchmark(lengths=LENGTHS, cells=LENGTH_CELLS, modes=("tf", "ss"), opts: Options | None = None, *,
                         batch: int = DEFAULT_BATCH, hidden: int = DEFAULT_HIDDEN, vocab: int = DEFAULT_VOCAB,
                         log=print, partial=None) -> list[dict]:
    """Time every planned row in this process -> records (``timing.record`` fields, ``size`` = 'T=<T>');
    a row that cannot run gives a record with ``error``. Then ``add_length_ratios``. ``partial``: a file
    that gets each record as a JSON line when its row is done (a killed run keeps its rows)."""
    from .tables import line

    opts = opts or Options(steps=3, repeats=3, warmup=1)
    records = []
    for T, cell, mode in length_plan(lengths, cells, modes):
        try:
            rec = add_best(bench_rnnlab(f"T={T}", length_size(T, batch, hidden, vocab), cell, mode, opts,
                                        eval_too=False))
        except Exception as e:  # noqa: BLE001 - keep the other rows; the record says what failed
            if isinstance(e, KeyboardInterrupt):
                raise
            rec = {"impl": "rnnlab", "size": f"T={T}", "cell": cell, "mode": mode, "bptt": T,
                   "error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}
        records.append(rec)
        if partial:
            with open(partial, "a") as f:
                f.write(json.dumps(rec) + "\n")
        if log:
            log(line(rec))
    add_length_ratios(records)
    return records


def add_best(rec: dict) -> dict:
    """``best_step_ms`` = the fastest block's ms per step (``block_ms``; ``step_ms`` without blocks) and
    ``best_tokens_per_sec`` = B T / that step."""
    rec["best_step_ms"] = min(rec.get("block_ms") or [rec["step_ms"]])
    rec["best_tokens_per_sec"] = rec["batch"] * rec["bptt"] / (rec["best_step_ms"] / 1e3)
    return rec


def _by(records) -> dict:
    return {(r["cell"], r["mode"], r["bptt"]): r for r in records if "error" not in r}


def add_length_ratios(records) -> None:
    """``ss_over_tf`` on the SS rows (SS step / TF step, same cell and T) and ``growth`` on each
    cell x mode's longest-T row (its step time / the shortest T's)."""
    by = _by(records)
    for (cell, mode, T), r in by.items():
        if mode == "ss" and (cell, "tf", T) in by:
            r["ss_over_tf"] = r["best_step_ms"] / by[(cell, "tf", T)]["best_step_ms"]
    for cell, mode in {(c, m) for c, m, _ in by}:
        Ts = sorted(T for c, m, T in by if (c, m) == (cell, mode))
        if len(Ts) > 1:
            last, first = by[(cell, mode, Ts[-1])], by[(cell, mode, Ts[0])]
            last["growth"] = last["best_step_ms"] / first["best_step_ms"]


def _tps(v) -> str:
    return "-" if v is None else (f"{v / 1e6:.2f}M" if v >= 1e6 else f"{v / 1e3:.1f}k")


def markdown_lengths(records, env: dict, command: str = "", load: str = "") -> str:
    """Three tables (tokens/s; step ms with the growth; compile s) with one row per cell x mode and
    one column per T, then the SS / TF step ratios of each cell."""
    by = _by(records)
    Ts = sorted({T for _, _, T in by})
    keys = []
    for r in records:
        if "error" not in r and (r["cell"], r["mode"]) not in keys:
            keys.append((r["cell"], r["mode"]))
    first = next((r for r in records if "error" not in r), {})
    out = ["# rnnlab benchmark: speed against sequence length", ""]
    if command:
        out += [f"Command: `{command}`", ""]
    out += [f"Device: **{env.get('device')}** ({env.get('platform')}, {env.get('cpus')} CPUs"
            + (f"; {load}" if load else "") + f"); jax {env.get('jax')}, flax {env.get('flax')}, optax "
            f"{env.get('optax')}, python {env.get('python')}; commit {env.get('git_commit')}; {env.get('date')}.", "",
            f"One layer, B = {first.get('batch')}, H = {first.get('hidden')} (embedding = H), V = {first.get('vocab')}; "
            "SGD step with global-norm clipping on one window of T tokens; the fastest of the timed blocks "
            f"({first.get('timed_steps')} steps each; medians and every block in the JSON).", ""]
    tail = [f"T={T}" for T in Ts]

    def table(title, fmt, extra=None):
        head = ["cell", "mode", *tail] + ([extra[0]] if extra else [])
        rows = [f"**{title}**", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for cell, mode in keys:
            vals = [fmt(by.get((cell, mode, T))) for T in Ts]
            if extra:
                vals.append(extra[1](by.get((cell, mode, Ts[-1]))))
            rows.append("| " + " | ".join([cell, _mode_name(cell, mode), *vals]) + " |")
        return rows + [""]

    out += table("Training tokens/s", lambda r: "-" if r is None else _tps(r["best_tokens_per_sec"]))
    out += table("Step time (ms)", lambda r: "-" if r is None else f"{r['best_step_ms']:.1f}",
                 (f"growth T={Ts[0]}->{Ts[-1]}" if Ts else "growth",
                  lambda r: "-" if r is None or "growth" not in r else f"{r['growth']:.1f}x"))
    out += table("Compile time (s)", lambda r: "-" if r is None else f"{r['compile_s']:.2f}")
    ss = [k for k in keys if k[1] == "ss"]
    if ss:
        out += ["**Scheduled sampling step / teacher forcing step** (same cell and T)", "",
                "| cell | " + " | ".join(tail) + " |", "|" + "---|" * (len(Ts) + 1)]
        for cell, _ in ss:
            out.append(f"| {cell} | " + " | ".join("-" if "ss_over_tf" not in by.get((cell, "ss", T), {}) else
                                                   f"{by[(cell, 'ss', T)]['ss_over_tf']:.2f}x" for T in Ts) + " |")
        out.append("")
    errors = [r for r in records if "error" in r]
    if errors:
        out += ["Rows that failed:", ""] + [f"- {r['cell']} {r['mode']} {r['size']}: {r['error']}" for r in errors]
    return "\n".join(out) + "\n"


def _mode_name(cell: str, mode: str) -> str:
    if mode == "ss":
        return "SS (sequential)" if cell in PARALLEL else "SS"
    return "TF (parallel)" if cell in PARALLEL else "TF (sequential scan)"


def plot_lengths(records, path) -> Path:
    """tokens/s (fastest block) against T, log-log, one line per cell x mode (matplotlib, Agg) -> the file written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by = _by(records)
    fig, ax = plt.subplots(figsize=(7.2, 4.6))
    cells = sorted({c for c, _, _ in by}, key=lambda c: LENGTH_CELLS.index(c) if c in LENGTH_CELLS else 99)
    color = {c: f"C{i}" for i, c in enumerate(cells)}  # one colour per cell: TF solid, SS dashed
    for mode in ("tf", "ss"):
        for cell in cells:
            Ts = sorted(T for c, m, T in by if (c, m) == (cell, mode))
            if Ts:
                ax.plot(Ts, [by[(cell, mode, T)]["best_tokens_per_sec"] for T in Ts], color=color[cell],
                        marker="o" if mode == "tf" else "s", linestyle="-" if mode == "tf" else "--",
                        label=f"{cell} {_mode_name(cell, mode)}")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("sequence length T (tokens per window)")
    ax.set_ylabel("training tokens/s")
    first = next(iter(by.values()), {})
    ax.set_title(f"B = {first.get('batch')}, H = {first.get('hidden')}, one layer")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_length_results(records, env, out_dir, command: str = "", load: str = "") -> tuple[Path, Path]:
    """-> (DIR/lengths.json: the records with the environment, DIR/lengths.md: ``markdown_lengths``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    jpath, mpath = out / "lengths.json", out / "lengths.md"
    jpath.write_text(json.dumps([{**r, "env": env, "load": load} for r in records], indent=1))
    mpath.write_text(markdown_lengths(records, env, command, load))
    return jpath, mpath


def length_benchmark(lengths, cells, modes, opts: Options, *, sizes=(DEFAULT_BATCH, DEFAULT_HIDDEN, DEFAULT_VOCAB),
                     out="runs/benchmark", plot=None, load: str = "", command: str = "", log=print) -> list[dict]:
    """The CLI's --lengths run: time the rows (console lines through ``log``; each record appended to
    DIR/lengths.partial.jsonl as it is done), write DIR/lengths.json and lengths.md (printed), and the
    plot when ``plot`` names a file. ``sizes`` = (B, H, V), each >= 1."""
    from .driver import environment

    for name, v in zip(("batch", "hidden", "vocab"), sizes):
        if not isinstance(v, int) or v < 1:
            raise RnnlabError(f"--{name}={v!r} is not valid; it must be an integer >= 1")
    batch, hidden, vocab = sizes
    env = environment()
    log(f"device: {env['device']}; jax {env['jax']}; B={batch} H={hidden} V={vocab}")
    Path(out).mkdir(parents=True, exist_ok=True)
    records = run_length_benchmark(lengths, cells, modes, opts, batch=batch, hidden=hidden, vocab=vocab, log=log,
                                   partial=Path(out) / "lengths.partial.jsonl")
    jpath, mpath = write_length_results(records, env, out, command, load)
    log(mpath.read_text())
    if plot:
        log(f"wrote {plot_lengths(records, plot)}")
    log(f"wrote {jpath} and {mpath}")
    return records
