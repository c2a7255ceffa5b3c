"""rnnlab.parallel: data parallel (batch axis over devices), seed-axis sharding of vmapped seeds, and
two jax processes joined by jax.distributed (what parallel.multihost does under SLURM).

Several CPU devices need XLA_FLAGS=--xla_force_host_platform_device_count=4 before jax starts, so
those checks run in a subprocess; every number is compared with the one-device run of the same
config: losses and parameters to 1e-5 relative (float32 summation order), shardings by spec.
"""
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rnnlab import RnnlabError, parallel
from rnnlab.config import base_config, validate

ROOT = Path(__file__).resolve().parents[1]
TOL = 1e-5

# The worker: K train steps of a small config through parallel.jit_step / jit_seed_step on the
# devices it is given, vs the same steps through plain jax.jit on one device; prints JSON.
WORKER = textwrap.dedent(r'''
    import json, sys
    import jax, numpy as np
    from rnnlab import parallel
    from rnnlab.config import base_config
    from rnnlab.keys import split_keys
    from rnnlab.multiseed import make_multiseed_step
    from rnnlab.sweep import set_field
    from rnnlab.train import create_train_state, make_train_step, prepare

    def cfg_of(kw):
        c = base_config()
        c.data.name, c.data.num_train, c.data.num_valid, c.data.num_test = "reber", 4000, 1000, 1000
        c.model.hidden_size, c.model.embed_size, c.model.num_layers, c.model.dropout = 16, 8, 1, 0.1
        c.train.batch_size, c.train.bptt, c.train.optimizer, c.train.lr = 8, 10, "adam", 0.01
        for k, v in kw.items():
            set_field(c, k, v)
        return c

    def rel(a, b):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        return float(np.max(np.abs(a - b)) / max(np.max(np.abs(a)), 1e-30))

    def run(c, K=4, place=True):
        setup = prepare(c)
        keys = split_keys(0)
        state = create_train_state(c, setup.model, setup.tx, keys["init"])
        fn = parallel.jit_step(make_train_step(setup.model, setup.tx, c), c) if place else \
            jax.jit(make_train_step(setup.model, setup.tx, c), donate_argnums=0)
        losses = []
        for i in range(K):
            state, m = fn(state, setup.train.batch(i), keys["dropout"])
            losses.append(float(m["nll_sum"]) / float(m["count"]))
        return losses, state

    def compare(kw, n):
        l1, s1 = run(cfg_of(kw), place=False)
        ln, sn = run(cfg_of({"parallel.data": n, **kw}))
        p1, pn = jax.tree_util.tree_leaves(jax.device_get(s1.params)), jax.tree_util.tree_leaves(jax.device_get(sn.params))
        return {"loss_rel": max(rel(a, b) for a, b in zip(l1, ln)), "params_rel": max(rel(a, b) for a, b in zip(p1, pn)),
                "loss": ln[-1], "param_spec": list(jax.tree_util.tree_leaves(sn.params)[0].sharding.spec),
                "carry_spec": list(jax.tree_util.tree_leaves(sn.carries)[0].sharding.spec),
                "devices": len(jax.tree_util.tree_leaves(sn.params)[0].sharding.device_set)}

    def seeds(n_seeds, n_data, S=4, K=3):
        out = {}
        for tag, kw in (("one", {}), ("many", {"parallel.seeds": n_seeds, "parallel.data": n_data})):
            prog = make_multiseed_step(cfg_of(kw), S)
            state, losses = prog.state, []
            for i in range(K):
                state, m = prog.step(state, (prog.x[i], prog.y[i]), prog.keys)
                losses.append(np.asarray(m["nll_sum"]) / np.asarray(m["count"]))
            out[tag] = (losses, jax.tree_util.tree_leaves(jax.device_get(state.params)), state)
        (l1, p1, _), (ln, pn, sn) = out["one"], out["many"]
        return {"loss_rel": max(rel(a, b) for a, b in zip(l1, ln)), "params_rel": max(rel(a, b) for a, b in zip(p1, pn)),
                "param_spec": list(jax.tree_util.tree_leaves(sn.params)[0].sharding.spec),
                "carry_spec": list(jax.tree_util.tree_leaves(sn.carries)[0].sharding.spec)}

    res = {"device_count": jax.device_count(),
           "data": compare({}, 4),  # dropout 0.1: its draws are sharded with the batch
           "seeds": seeds(2, 2)}
    print("RESULT " + json.dumps(res))
''')

# Two processes: parallel.initialize reads the (emulated) SLURM environment; process 0 compares the
# data-parallel step over the 2-process mesh with the same steps on its own device.
MULTIHOST = textwrap.dedent(r'''
    import json, os
    import jax, numpy as np
    from rnnlab import parallel
    from rnnlab.config import base_config
    from rnnlab.keys import split_keys
    from rnnlab.train import create_train_state, make_train_step, prepare

    c = base_config()
    c.data.name, c.data.num_train, c.data.num_valid, c.data.num_test = "reber", 4000, 1000, 1000
    c.model.hidden_size, c.model.embed_size, c.model.num_layers, c.model.dropout = 16, 8, 1, 0.1
    c.train.batch_size, c.train.bptt, c.train.optimizer, c.train.lr = 8, 10, "adam", 0.01
    c.parallel.multihost, c.parallel.data = True, 2
    parallel.initialize(c)  # jax.distributed.initialize() from SLURM_* variables
    setup = prepare(c)
    keys = split_keys(0)

    def steps(fn, K=4):
        state = create_train_state(c, setup.model, setup.tx, keys["init"])
        losses = []
        for i in range(K):
            state, m = fn(state, setup.train.batch(i), keys["dropout"])
            losses.append(float(np.asarray(m["nll_sum"].addressable_data(0))) / float(np.asarray(m["count"].addressable_data(0))))
        return losses, [np.asarray(x.addressable_data(0)) for x in jax.tree_util.tree_leaves(state.params)], state

    ln, pn, sn = steps(parallel.jit_step(make_train_step(setup.model, setup.tx, c), c))
    out = {"process": jax.process_index(), "processes": jax.process_count(), "devices": jax.device_count(),
           "local": jax.local_device_count(), "loss": ln,
           "mesh_devices": len(jax.tree_util.tree_leaves(sn.params)[0].sharding.device_set)}
    if jax.process_index() == 0:
        one = jax.jit(make_train_step(setup.model, setup.tx, c), donate_argnums=0)  # this process's device alone
        l1, p1, _ = steps(one)
        rel = lambda a, b: float(np.max(np.abs(np.asarray(a, np.float64) - b)) / max(np.max(np.abs(a)), 1e-30))
        out.update(loss_rel=max(abs(a - b) / abs(a) for a, b in zip(l1, ln)),
                   params_rel=max(rel(a, b) for a, b in zip(p1, pn)))
    try:
        parallel.check_processes()
    except Exception as e:
        out["refused"] = str(e)
    print("RESULT " + json.dumps(out), flush=True)
    jax.distributed.shutdown()
''')


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "JAX_"))}
    env.update(PYTHONPATH=str(ROOT / "src"), WANDB_MODE="disabled", TF_CPP_MIN_LOG_LEVEL="2", **extra)
    return env


def _result(out: str) -> dict:
    lines = [ln for ln in out.splitlines() if ln.startswith("RESULT ")]
    assert lines, out[-3000:]
    return json.loads(lines[-1][len("RESULT "):])


# ----------------------------------------------------------------------------- config checks (no devices)
def test_batch_that_does_not_divide_is_one_line():
    c = base_config()
    c.train.batch_size, c.parallel.data = 30, 4
    with pytest.raises(RnnlabError) as e:
        validate(c)
    msg = str(e.value)
    assert msg == ("train.batch_size=30 does not divide over parallel.data=4 devices; use a multiple of 4 "
                   "(e.g. 28 or 32) or another parallel.data") and "\n" not in msg
    c.train.batch_size = 32
    validate(c)  # 32 = 4 x 8 streams per device


@pytest.mark.parametrize("field,value", [("data", 0), ("seeds", -1)])
def test_bad_parallel_sizes(field, value):
    c = base_config()
    c.parallel[field] = value
    with pytest.raises(RnnlabError, match=rf"^parallel\.{field}=.* is not valid; it must be an integer >= 1"):
        parallel.check(c)


def test_too_many_devices_and_seed_counts():
    with pytest.raises(RnnlabError, match=r"^parallel.data=64 x parallel.seeds=1 needs 64 devices; 1 is available"):
        parallel.make_mesh(64)
    c = base_config()
    c.parallel.seeds = 1
    fn = lambda s, b, k: (s, {})  # noqa: E731
    assert parallel.jit_step(fn, c).__class__.__name__ == "PjitFunction"  # defaults: plain jax.jit, unchanged
    assert parallel.jit_seed_step(fn, c).__class__.__name__ == "PjitFunction"


def test_cli_refuses_batch_that_does_not_divide(tmp_path):
    r = subprocess.run([sys.executable, "-m", "experiments.train", "--config=configs/quickstart.py",
                        f"--workdir={tmp_path / 'run'}", "--config.train.batch_size=30", "--config.parallel.data=4"],
                       cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr[-2000:]
    assert r.stderr.strip().splitlines()[-1].startswith("error: train.batch_size=30 does not divide over "
                                                        "parallel.data=4 devices")
    assert "Traceback" not in r.stderr and not (tmp_path / "run").exists()


# ----------------------------------------------------------------------------- several devices
def test_data_and_seed_parallel_equal_one_device():
    r = subprocess.run([sys.executable, "-c", WORKER], cwd=ROOT, capture_output=True, text=True, timeout=300,
                       env=_env(XLA_FLAGS="--xla_force_host_platform_device_count=4"))
    assert r.returncode == 0, r.stderr[-3000:]
    res = _result(r.stdout)
    assert res["device_count"] == 4
    d = res["data"]  # batch over 4 devices: params replicated, carries split along B
    assert d["loss_rel"] < TOL and d["params_rel"] < TOL, d
    assert d["param_spec"] == [] and d["carry_spec"] == ["data"] and d["devices"] == 4, d
    s = res["seeds"]  # 4 vmapped seeds on a 2 x 2 mesh (seeds x data)
    assert s["loss_rel"] < TOL and s["params_rel"] < TOL, s
    assert s["param_spec"] == ["seeds"] and s["carry_spec"] == ["seeds", "data"], s


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_through_slurm_environment():
    """jax 0.10.2 has CPU collectives (gloo): two local processes, one CPU device each, SLURM's
    variables as srun sets them for `srun -N1 -n2` (the coordinator port comes from the job id)."""
    port = _free_port()
    job = str(port - (65535 - 2 ** 12 + 1)) if port > 65535 - 2 ** 12 else None
    procs = []
    for i in range(2):
        slurm = dict(SLURM_JOB_ID=job or "1", SLURM_STEP_NODELIST="localhost", SLURM_NTASKS="2",
                     SLURM_PROCID=str(i), SLURM_LOCALID=str(i), SLURM_STEP_NUM_NODES="1")
        if job is None:  # the free port is outside SLURM's derived range: give it as the coordinator instead
            slurm.update(JAX_COORDINATOR_ADDRESS=f"localhost:{port}", JAX_NUM_PROCESSES="2", JAX_PROCESS_ID=str(i))
        procs.append(subprocess.Popen([sys.executable, "-c", MULTIHOST], cwd=ROOT, env=_env(**slurm),
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outs = []
    for p in procs:
        try:
            out, err = p.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
        assert p.returncode == 0, err[-3000:]
        outs.append(_result(out))
    r0, r1 = sorted(outs, key=lambda r: r["process"])
    assert (r0["processes"], r0["devices"], r0["local"], r0["mesh_devices"]) == (2, 2, 1, 2)
    assert r0["loss"] == r1["loss"]  # one program over both processes: the same replicated loss
    assert r0["loss_rel"] < TOL and r0["params_rel"] < TOL, r0
    assert r0["refused"].startswith("train.train_and_evaluate runs in one process; this is process 0 of 2")
