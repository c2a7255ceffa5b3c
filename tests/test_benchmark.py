"""The benchmark runs end to end on a tiny size (no timing asserted), and the fast paths it times
compute the same function as their references."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnnlab import bench

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
    xs, ys = bench._batches(size, 1, seed=3)
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
