"""The benchmark runs end to end on a tiny size (no timing asserted), and the fast paths it times
compute the same function as their references; its CLIs print their usage when given no flags; the
A/B comparison's medians, spreads and ratios, and its git worktrees; the speed-against-length rows
(length_rows.py: records, ratios, tables, plot, CLI errors)."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnnlab import bench
from rnnlab.bench import ab

ROOT = Path(__file__).resolve().parents[1]
FIELDS = ("impl", "size", "cell", "mode", "tokens_per_sec", "compile_s", "peak_mem_bytes", "eval_tokens_per_sec",
          "step_ms")


@pytest.fixture(scope="module")
def records():
    opts = bench.Options(steps=2, repeats=1, warmup=1, seeds=2, seed_sizes=("T",), eps=0.5)
    return bench.run_benchmark(("T",), ("rnn",), bench.IMPLS, bench.MODES, opts, log=None)


def test_every_implementation_ran(records):
    have_torch = bench.torch_available()
    ran = {(r["impl"], r["mode"]) for r in records if "error" not in r}
    expected = {("rnnlab", "tf"), ("rnnlab", "ss"), ("flax", "tf"), ("rnnlab_seeds", "tf")}
    if have_torch:
        expected |= {("torch", "tf"), ("torch_loop", "ss")}
    assert ran == expected, [r.get("error") for r in records]
    if not have_torch:
        assert all("torch is not installed" in r["error"] for r in records if r["impl"].startswith("torch"))


def test_record_fields(records):
    size = bench.SIZES["T"]
    for r in records:
        if "error" in r:
            continue
        for f in FIELDS:
            assert f in r, (r["impl"], f)
        assert (r["size"], r["cell"]) == ("T", "rnn")
        assert r["tokens_per_sec"] > 0 and r["step_ms"] > 0 and r["compile_s"] >= 0
        tokens = size.batch * size.bptt * r.get("seeds", 1)
        assert r["tokens_per_sec"] == pytest.approx(tokens / (r["step_ms"] / 1e3), rel=1e-9)
        assert r["timed_steps"] >= 2
        if r["impl"] in ("rnnlab", "flax", "rnnlab_seeds"):
            assert r["peak_mem_bytes"] > 0  # the compiled program's footprint
    by = {(r["impl"], r["mode"]): r for r in records if "error" not in r}
    assert by[("rnnlab", "tf")]["eval_tokens_per_sec"] > 0 and by[("flax", "tf")]["eval_tokens_per_sec"] > 0
    # the SS row really ran scheduled sampling at the asked eps (from the step's own metrics); TF at 1
    assert by[("rnnlab", "ss")]["eps"] == pytest.approx(0.5) and by[("rnnlab", "tf")]["eps"] == 1.0
    assert by[("rnnlab_seeds", "tf")]["seeds"] == 2
    # ratios are those of the records they name
    tf, ss = by[("rnnlab", "tf")], by[("rnnlab", "ss")]
    assert tf["x_flax"] == pytest.approx(tf["tokens_per_sec"] / by[("flax", "tf")]["tokens_per_sec"])
    assert ss["ss_step_over_tf_step"] == pytest.approx(ss["step_ms"] / tf["step_ms"])
    if ("torch", "tf") in by:
        assert tf["x_torch"] == pytest.approx(tf["tokens_per_sec"] / by[("torch", "tf")]["tokens_per_sec"])


def test_json_and_markdown(records, tmp_path):
    env = bench.environment()
    jpath, mpath = bench.write_results(records, env, tmp_path, "python -m experiments.benchmark --sizes T")
    back = json.loads(jpath.read_text())
    assert isinstance(back, list) and len(back) == len(records)
    assert {r["impl"] for r in back} == {r["impl"] for r in records}
    assert all(r["device"] == env["device"] for r in back)
    md = mpath.read_text()
    assert "| size | cell | rnnlab TF | torch |" in md and f"jax {jax.__version__}" in md
    assert "--sizes T" in md
    assert md.count("| T | rnn |") >= 1 + len(records)  # summary row + one row per record


def test_plan_and_bad_lists():
    opts = bench.Options(unrolls=(1, 0), dtypes=("float32", "bfloat16"), autodiff=True)
    rows = bench.plan(("S",), ("lstm",), ("rnnlab", "torch"), ("tf", "ss"), opts)
    rn = [r for r in rows if r[0] == "rnnlab"]
    assert len([r for r in rn if r[3] == "tf"]) == 2 * 2 + 1  # unrolls x dtypes + the autodiff row
    assert len([r for r in rn if r[3] == "ss"]) == 2  # ss: each unroll, the first dtype
    assert [r[:4] for r in rows if r[0] == "torch"] == [("torch", "S", "lstm", "tf")]
    with pytest.raises(bench.RnnlabError, match="allowed"):
        bench.parse_list("S,XL", tuple(bench.SIZES), "--sizes")


def test_cli_bad_size_is_one_line_error():
    r = subprocess.run([sys.executable, "-m", "experiments.benchmark", "--sizes=S,XL"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert lines[-1].startswith("error: --sizes='S,XL' is not valid") and "Traceback" not in r.stderr


def test_console_line_prints_dash_where_eval_was_not_measured(records):
    by = {(r["impl"], r["mode"]): r for r in records if "error" not in r}
    ss, tf = bench.line(by[("rnnlab", "ss")]), bench.line(by[("rnnlab", "tf")])
    assert by[("rnnlab", "ss")]["eval_tokens_per_sec"] is None
    assert re.search(r"eval +- tok/s", ss) and not re.search(r"eval +0 tok/s", ss)
    shown = float(re.search(r"eval +([\d,]+) tok/s", tf).group(1).replace(",", ""))
    assert shown == pytest.approx(by[("rnnlab", "tf")]["eval_tokens_per_sec"], abs=0.5)


USAGE = {  # CLI -> flag names its usage must list; with no flags each prints it and exits 0 at once
    "experiments.benchmark": ("sizes", "cells", "impls", "modes", "steps", "repeats", "unrolls", "out", "lengths",
                              "batch", "hidden", "vocab", "plot"),
    "experiments.kill_resume": ("trials", "points", "workdir", "config", "seed", "max_kills", "small"),
    "experiments.ab_benchmark": ("a", "b", "rounds", "sizes", "impls", "bench_flags", "out", "keep"),
}


@pytest.mark.parametrize("module", sorted(USAGE))
def test_cli_without_flags_prints_usage(module):
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", module], cwd=ROOT, capture_output=True, text=True, timeout=60)
    took = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    assert took < 20  # a usage, not a run (the runs take minutes)
    for name in USAGE[module]:
        assert re.search(rf"^  --(\[no\])?{name}: \S", r.stdout, re.M), name  # each flag with a description
    assert f"python -m {module} --" in r.stdout  # an example command


@pytest.mark.parametrize("module,argv,says", [
    ("experiments.benchmark", ["--cells=lstm"], "nothing to run: pass --sizes"),
    ("experiments.kill_resume", ["--seed=1"], "nothing to run: pass --trials"),
    ("experiments.ab_benchmark", ["--a=HEAD"], "pass both --a and --b"),
    ("experiments.ab_benchmark", ["--a=no_such_rev_xyz", "--b=HEAD"], "'no_such_rev_xyz' is not a git revision"),
])
def test_cli_flags_without_the_required_one_is_one_line_error(module, argv, says):
    r = subprocess.run([sys.executable, "-m", module, *argv], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip().splitlines() == [r.stderr.strip()] and r.stderr.startswith(f"error: {says}")


def _rec(impl, cell, mode, tps, variant="v"):
    return {"impl": impl, "size": "S", "cell": cell, "mode": mode, "variant": variant, "tokens_per_sec": tps}


def test_ab_compare_medians_spreads_and_verdict():
    a = [[_rec("rnnlab", "lstm", "tf", 100.0), _rec("rnnlab", "lstm", "ss", 50.0)],
         [_rec("rnnlab", "lstm", "tf", 110.0), _rec("rnnlab", "lstm", "ss", 50.0)],
         [_rec("rnnlab", "lstm", "tf", 90.0), _rec("rnnlab", "lstm", "ss", 52.0)]]
    b = [[_rec("rnnlab", "lstm", "tf", 105.0, "w"), _rec("rnnlab", "lstm", "ss", 60.0)],
         [_rec("rnnlab", "lstm", "tf", 95.0, "w"), _rec("rnnlab", "lstm", "ss", 61.0)],
         [_rec("rnnlab", "lstm", "tf", 100.0, "w"), {**_rec("rnnlab", "lstm", "ss", 0.0), "error": "boom"}]]
    tf, ss = ab.compare(a, b)
    assert (tf["a_tokens_per_sec"], tf["b_tokens_per_sec"], tf["b_over_a"]) == (100.0, 100.0, 1.0)
    assert tf["a_spread"] == pytest.approx(0.2) and tf["b_spread"] == pytest.approx(0.1)
    assert tf["paired"] == pytest.approx([1.05, 95 / 110, 100 / 90]) and tf["within_noise"] is True
    assert (tf["variant_a"], tf["variant_b"]) == ("v", "w")  # paired by (impl, size, cell, mode, order)
    assert ss["error"] == "boom" and "b_over_a" not in ss
    tf2, = ab.compare([[_rec("rnnlab", "gru", "tf", 100.0)], [_rec("rnnlab", "gru", "tf", 102.0)]],
                      [[_rec("rnnlab", "gru", "tf", 120.0)], [_rec("rnnlab", "gru", "tf", 121.0)]])
    assert tf2["b_over_a"] == pytest.approx(120.5 / 101) and tf2["noise"] == pytest.approx(2 / 101)
    assert tf2["within_noise"] is False
    one, = ab.compare([[_rec("rnnlab", "gru", "tf", 100.0)]], [[_rec("rnnlab", "gru", "tf", 90.0)]])
    assert one["b_over_a"] == pytest.approx(0.9) and one["within_noise"] is None  # one round: no verdict
    md = ab.ab_markdown({"a": {"rev": "X", "sha": "a" * 40}, "b": {"rev": "Y", "sha": "b" * 40}, "rounds": 3,
                         "bench_args": ["--sizes", "S"], "rows": [tf, ss]})
    assert "| rnnlab | S | lstm | tf | v / w | 100 | 20.0% | 100 | 10.0% | 1.000 | 1.050, 0.864, 1.111 | yes |" in md
    assert "| rnnlab | S | lstm | ss | v | error: boom |" in md and "--sizes S" in md


def test_ab_worktree_is_the_revision_and_imports_from_itself(tmp_path):
    sha = ab.resolve(ROOT, "HEAD~1")
    assert re.fullmatch(r"[0-9a-f]{40}", sha) and sha != ab.resolve(ROOT, "HEAD")
    wt = ab.add_worktree(ROOT, sha, tmp_path)
    try:
        head = subprocess.run(["git", "-C", str(wt), "rev-parse", "HEAD"], capture_output=True, text=True)
        assert head.stdout.strip() == sha and ab.add_worktree(ROOT, sha, tmp_path) == wt  # reused
        ab.check_imports_from(wt)  # PYTHONPATH=<wt>/src:<wt> loads the worktree's rnnlab, not the editable install
        with pytest.raises(bench.RnnlabError, match="not the worktree"):
            ab.check_imports_from(tmp_path)  # a folder without src/rnnlab falls back to the installed copy
    finally:
        ab.remove_worktree(ROOT, wt)
    assert not wt.exists()


@pytest.mark.parametrize("cell", ["lstm"])
def test_two_pass_scheduled_sampling_equals_one_pass(cell):
    """forcing.sampled_loss (sample without gradient, then the fast teacher-forcing path on the fed
    tokens) = differentiating the time-outer pass: same loss, carries, metrics and gradients."""
    from rnnlab import forcing
    from rnnlab.model import build_model
    from rnnlab.train import create_train_state, make_optimizer

    size = bench.SIZES["T"]
    cfg = bench.rnnlab_config(size, cell, "ss", bench.Options(dropout=0.3))
    model = build_model(cfg, size.vocab)
    tx, _ = make_optimizer(cfg, 10)
    st = create_train_state(cfg, model, tx, jax.random.key(0))
    xs, ys = bench.batches(size, 1, seed=3)
    x, y = jnp.asarray(xs[0]), jnp.asarray(ys[0])
    fb = forcing.feedback_options(cfg)
    out = {}
    for name, fn in (("two", forcing.sampled_loss), ("one", forcing.sampled_loss_one_pass)):
        f = lambda p, fn=fn: fn(model, p, st.carries, x, y, jax.random.key(7), jnp.float32(0.5), fb)  # noqa: E731
        out[name] = jax.jit(jax.value_and_grad(f, has_aux=True))(st.params)
    (l2, (c2, m2)), g2 = out["two"]
    (l1, (c1, m1)), g1 = out["one"]
    assert 0 < float(m1["gold_fed"]) < float(m1["fed_count"])  # both gold and sampled tokens were fed
    assert float(l2) == pytest.approx(float(l1), rel=1e-6)
    assert {k: float(v) for k, v in m2.items()} == pytest.approx({k: float(v) for k, v in m1.items()}, rel=1e-6)
    for a, b in zip(jax.tree_util.tree_leaves((g2, c2)), jax.tree_util.tree_leaves((g1, c1))):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)


# ----------------------------------------------------------------------------- speed against length
@pytest.fixture(scope="module")
def length_records():
    opts = bench.Options(steps=1, repeats=1, warmup=1, eps=0.5)
    return bench.run_length_benchmark((4, 8), ("mingru", "output_to_hidden"), ("tf", "ss"), opts, batch=2, hidden=8,
                                      vocab=11, log=None)


@pytest.mark.slow  # 8 compiled steps: about 30 s on an idle 2-core CPU
def test_length_rows_run_every_cell_mode_and_length(length_records):
    assert [(r["bptt"], r["cell"], r["mode"]) for r in length_records] == bench.length_plan(
        (4, 8), ("mingru", "output_to_hidden"), ("tf", "ss"))
    for r in length_records:
        assert "error" not in r, r
        assert (r["batch"], r["hidden"], r["layers"], r["vocab"], r["size"]) == (2, 8, 1, 11, f"T={r['bptt']}")
        assert r["tokens_per_sec"] == pytest.approx(2 * r["bptt"] / (r["step_ms"] / 1e3), rel=1e-9)
        assert r["eps"] == pytest.approx(0.5 if r["mode"] == "ss" else 1.0)  # the step's own eps
        assert len(r["block_ms"]) == 1 and r["best_step_ms"] == min(r["block_ms"]) == pytest.approx(r["step_ms"])
        assert r["best_tokens_per_sec"] == pytest.approx(2 * r["bptt"] / (r["best_step_ms"] / 1e3), rel=1e-9)
    by = {(r["cell"], r["mode"], r["bptt"]): r for r in length_records}
    for cell in ("mingru", "output_to_hidden"):
        for T in (4, 8):
            assert by[(cell, "ss", T)]["ss_over_tf"] == pytest.approx(by[(cell, "ss", T)]["best_step_ms"] /
                                                                     by[(cell, "tf", T)]["best_step_ms"])
        for mode in ("tf", "ss"):
            assert by[(cell, mode, 8)]["growth"] == pytest.approx(by[(cell, mode, 8)]["best_step_ms"] /
                                                                 by[(cell, mode, 4)]["best_step_ms"])
            assert "growth" not in by[(cell, mode, 4)]


@pytest.mark.slow  # shares the 8 rows above
def test_length_tables_and_plot(length_records, tmp_path):
    env = bench.environment()
    md = bench.markdown_lengths(length_records, env, "CMD", load="load 3")
    assert "Command: `CMD`" in md and "load 3" in md and "B = 2, H = 8 (embedding = H), V = 11" in md
    rows = [ln for ln in md.splitlines() if ln.startswith("| output_to_hidden | TF (parallel) |")]
    assert len(rows) == 3  # tokens/s, step ms (with the growth), compile s
    assert rows[1].count("|") == 6 and rows[1].rstrip(" |").endswith("x")
    assert "| mingru | " in md.split("Scheduled sampling step")[1]
    jpath, mpath = bench.write_length_results(length_records, env, tmp_path, "CMD")
    assert len(json.loads(jpath.read_text())) == 8 and mpath.read_text() == bench.markdown_lengths(length_records, env,
                                                                                                    "CMD")
    png = bench.plot_lengths(length_records, tmp_path / "p" / "tps.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5_000


def test_best_block_and_median_step_blocks():
    r = bench.length_rows.add_best({"batch": 4, "bptt": 16, "step_ms": 9.0, "block_ms": [9.0, 3.0, 12.0]})
    assert r["best_step_ms"] == 3.0 and r["best_tokens_per_sec"] == pytest.approx(64 / 3e-3)
    assert bench.length_rows.add_best({"batch": 1, "bptt": 2, "step_ms": 4.0})["best_step_ms"] == 4.0
    blocks: list = []
    calls = []
    med, n = bench.median_step(lambda k: calls.append(k), 3, 4, 0.0, blocks)
    assert n == 3 and calls == [3, 3, 3, 3] and len(blocks) == 4
    assert med == pytest.approx(sum(sorted(blocks)[1:3]) / 2)  # the median of 4 blocks


def test_parse_lengths_and_cli_errors():
    assert bench.parse_lengths("64, 256,4096") == (64, 256, 4096)
    for bad in ("", "64,x", "0", "-4"):
        with pytest.raises(bench.RnnlabError, match="--lengths=.* is not valid"):
            bench.parse_lengths(bad)
    r = subprocess.run([sys.executable, "-m", "experiments.benchmark", "--lengths=64", "--cells=lstm,transformer"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].startswith("error: --cells='lstm,transformer'")
    assert "Traceback" not in r.stderr


def test_interleaved_rows_take_their_blocks_in_turn():
    """run_interleaved: each round times one block of every live row in turn (A B A B ..., then the next
    request of each); a row that raises gets on_error's record and the others finish; run_alone gives the
    same record for one row."""
    from rnnlab.bench.timing import run_interleaved, run_alone, timed

    log = []

    def row(name, fail=False):
        step_s, n, blocks = yield from timed(lambda k: log.append((name, "train", k)), 2, 3)
        if fail:
            raise ValueError("no such cell\nsecond line")
        ev, _, _ = yield from timed(lambda k: log.append((name, "eval", k)), 1, 2)
        return {"name": name, "n": n, "blocks": len(blocks), "eval_s": ev}

    out = run_interleaved([row("a"), row("b", fail=True), row("c")],
                          lambda i, e: {"error": f"{i}: {str(e).splitlines()[0]}"})
    assert [r.get("name") for r in out] == ["a", None, "c"] and out[1] == {"error": "1: no such cell"}
    assert out[0]["n"] == 2 and out[0]["blocks"] == 3
    assert log[:9] == [(x, "train", 2) for _ in range(3) for x in "abc"]  # round by round
    assert log[9:] == [(x, "eval", 1) for _ in range(2) for x in "ac"]
    log.clear()
    assert run_alone(row("a"))["blocks"] == 3 and [e[0] for e in log] == ["a"] * 5
