"""Benchmark records -> ratios, console lines, markdown tables, and the files of a run.

Ratios (added to the headline records, the first successful variant of each (impl, size, cell,
mode)): rnnlab tf tokens/s over torch and over flax (``x_torch``, ``x_flax``); rnnlab ss step time
over rnnlab tf step time (``ss_step_over_tf_step``) and ss tokens/s over the torch cell loop
(``x_torch_loop``); the vmapped seeds' step time over one seed's (``step_over_one_seed``). A value
that was not measured (eval of an ss row, peak memory of torch on a CPU) prints as ``-``.
"""
from __future__ import annotations

import json
from pathlib import Path


def line(r: dict) -> str:
    """The console line of one record (``-`` where a value was not measured)."""
    if "error" in r:
        return f"{r['impl']:>12} {r['size']} {r['cell']:>4} {r['mode']}: ERROR {r['error']}"
    ev = r.get("eval_tokens_per_sec")
    ev = "-" if ev is None else f"{ev:,.0f}"
    return (f"{r['impl']:>12} {r['size']} {r['cell']:>4} {r['mode']} {r.get('variant', ''):<26} "
            f"{r['tokens_per_sec']:>12,.0f} tok/s  {r['step_ms']:8.2f} ms  eval {ev:>12} tok/s  "
            f"compile {r['compile_s']:6.2f} s  peak {_mb(r['peak_mem_bytes'])}")


def _mb(b):
    return "-" if b is None else f"{b / 2**20:,.0f} MB"


def headline(records, impl, size, cell, mode):
    """The first successful record of (impl, size, cell, mode): for rnnlab, the first variant asked for."""
    for r in records:
        if (r["impl"], r["size"], r["cell"], r["mode"]) == (impl, size, cell, mode) and "error" not in r \
                and r.get("torch_dtype", "float32") == "float32":
            return r
    return None


def add_ratios(records):
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
            fp16 = [q for q in records if (q["impl"], q["size"], q["cell"]) == ("torch", s, c) and "error" not in q
                    and q.get("torch_dtype") == "float16"]
            if fp16:
                r["x_torch_fp16"] = r["tokens_per_sec"] / fp16[0]["tokens_per_sec"]
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


RATIO_NAMES = (("x_torch", "torch"), ("x_torch_fp16", "torch fp16"), ("x_flax", "flax"), ("ss_step_over_tf_step", "TF step"),
               ("x_torch_loop", "torch loop"), ("step_over_one_seed", "one seed's step"))


def _ratios(r) -> str:
    """'1.14x torch, 1.73x TF step, ...': the ratios ``add_ratios`` put on this record, or '-'."""
    parts = [f"{r[k]:.2f}x {name}" for k, name in RATIO_NAMES if r.get(k) is not None]
    return ", ".join(parts) or "-"


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
    out += ["", "All rows (ratios of every rnnlab variant against the same peers as above):", "",
            "| impl | size | cell | mode | variant | train tok/s | step ms | ratios | eval tok/s | "
            "compile s | peak MB |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        if "error" in r:
            out.append(f"| {r['impl']} | {r['size']} | {r['cell']} | {r['mode']} | error: {r['error']} | | | | | | |")
            continue
        out.append(f"| {r['impl']} | {r['size']} | {r['cell']} | {r['mode']} | {r.get('variant', '')} | "
                   f"{_fmt(r['tokens_per_sec'])} | {r['step_ms']:.2f} | {_ratios(r)} | "
                   f"{_fmt(r.get('eval_tokens_per_sec'))} | {r['compile_s']:.2f} | {_fmt(r['peak_mem_bytes'], 'mb')} |")
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
