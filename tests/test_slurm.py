"""Studies on a real SLURM (rnnlab.launch, experiments.sweep --launcher=slurm), preemption, W&B's
preemption rules.

Tests marked ``slurm`` use the one-node cluster of scripts/slurm/cluster.sh: the one .ci/run
started ($SLURM_CONF), or one this module starts as root in a temporary folder and stops at the
end; they are skipped, with the reason, when it cannot start. On that cluster:

* a 6-member quickstart study submitted as an array ends with the same params_sha256 per member as
  the same study swept locally, and re-running the command submits nothing;
* a member requeued mid-training with ``scontrol requeue`` (SIGTERM), then signalled with USR2 (what
  SLURM sends before the time limit; submitit checkpoints and requeues the job) ends bit for bit
  equal to an uninterrupted run (params_sha256 and every metrics.jsonl record but the timings),
  while a member that raises is ``failed`` in sweep.json.

"Mid-training" is made certain by freezing the training process (SIGSTOP, its pid from the
member's lock) as soon as metrics.jsonl shows step 3, then sending the signal and letting it go.
"""
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rnnlab import RnnlabError, sweep
from rnnlab.config import base_config

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "slurm" / "cluster.sh"
SMALL = ["--config.train.epochs=1", "--config.data.num_train=6000", "--config.data.num_valid=2000",
         "--config.data.num_test=2000", "--config.wandb.mode=disabled", "--config.train.progress=False"]


def _env(**extra) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), TF_CPP_MIN_LOG_LEVEL="2", WANDB_SILENT="true")
    env.pop("RNNLAB_KILL_AT", None)
    env.update(extra)
    return env


def _cluster_up(conf: str) -> bool:
    try:
        r = subprocess.run(["sinfo", "-h", "-o", "%T"], env=dict(os.environ, SLURM_CONF=conf), capture_output=True,
                           text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0 and any(s.startswith(("idle", "mix", "alloc")) for s in r.stdout.split())


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """SLURM_CONF of a running one-node cluster (see the module docstring), set in os.environ."""
    pytest.importorskip("submitit", reason="submitit is not installed (pip install -e .)")
    candidates = [os.environ.get("SLURM_CONF", ""),
                  str(Path(os.environ.get("RNNLAB_SLURM_DIR", "/tmp/rnnlab-slurm")) / "slurm.conf")]
    started = None
    conf = next((c for c in candidates if c and Path(c).is_file() and _cluster_up(c)), None)
    if conf is None:
        if shutil.which("slurmctld") is None:
            pytest.skip("no SLURM cluster: slurm-wlm is not installed (scripts/slurm/cluster.sh start installs it, "
                        "as root; .ci/run does)")
        if os.geteuid() != 0:
            pytest.skip("no SLURM cluster: scripts/slurm/cluster.sh start needs root")
        started = tmp_path_factory.mktemp("slurm")
        r = subprocess.run(["bash", str(SCRIPT), "start", str(started)], capture_output=True, text=True, timeout=240,
                           env=dict(os.environ, RNNLAB_SLURM_NO_INSTALL="1"))
        if r.returncode != 0:
            subprocess.run(["bash", str(SCRIPT), "stop", str(started)], capture_output=True, timeout=120)
            why = (r.stderr.strip().splitlines() or ["no output"])[-1]
            pytest.skip(f"the one-node SLURM cluster did not start: {why}")
        conf = str(started / "slurm.conf")
    old = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = conf  # sbatch passes the environment on to the tasks (squeue, scontrol there)
    yield conf
    if old is None:
        os.environ.pop("SLURM_CONF", None)
    else:
        os.environ["SLURM_CONF"] = old
    if started is not None:
        subprocess.run(["bash", str(SCRIPT), "stop", str(started)], capture_output=True, timeout=120)


def _until(what: str, fn, timeout: float = 300, every: float = 0.02):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        v = fn()
        if v:
            return v
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _quickstart_config(overrides: list[str]):
    """configs/quickstart.py's config with ``--config.a.b=v`` overrides applied, and its get_sweep()."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_qs", ROOT / "configs" / "quickstart.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    cfg = mod.get_config()
    for o in overrides:
        field, _, value = o[len("--config."):].partition("=")
        sweep.set_field(cfg, field, type(sweep.get_field(cfg, field))(value) if value not in ("False", "True")
                        else value == "True")
    return cfg, mod.get_sweep()


# ----------------------------------------------------------------------------- on the cluster
@pytest.mark.slurm
def test_array_equals_local_sweep(cluster, tmp_path):
    args = [sys.executable, "-m", "experiments.sweep", "--config=configs/quickstart.py", *SMALL, "--launcher=slurm"]
    wd = tmp_path / "on_slurm"
    r = subprocess.run([*args, f"--workdir={wd}", "--wait"], cwd=ROOT, env=_env(), capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-3000:])
    index = json.loads((wd / "sweep.json").read_text())
    jobs = [m["job_id"] for m in index["members"]]
    array = jobs[0].split("_")[0]
    assert jobs == [f"{array}_{i}" for i in range(6)]  # one array, one task per member
    assert [m["status"] for m in index["members"]] == ["finished"] * 6
    assert f"jobs: {' '.join(sorted(jobs))}" in r.stdout and "| reber | lstm |" in r.stdout
    for j in jobs:  # each task's logs under the study folder
        assert (wd / "slurm" / j / f"{j}_0_log.out").read_text().count("finished, test ppl") == 1

    cfg, study = _quickstart_config(SMALL)
    local = tmp_path / "local"
    sweep.run_sweep(cfg, local, study, config_file=str(ROOT / "configs" / "quickstart.py"), say=lambda s: None)
    names = [m["name"] for m in index["members"]]
    assert len(names) == 6
    for n in names:
        a, b = (json.loads((d / n / "summary.json").read_text()) for d in (wd, local))
        assert a["params_sha256"] == b["params_sha256"], n
        assert a["test_ppl"] == b["test_ppl"]

    again = subprocess.run([*args, f"--workdir={wd}"], cwd=ROOT, env=_env(), capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "nothing to submit" in again.stderr and "jobs: none" in again.stdout
    assert [m["job_id"] for m in json.loads((wd / "sweep.json").read_text())["members"]] == jobs


STUDY = '''
import importlib.util
spec = importlib.util.spec_from_file_location("_qs", {quickstart!r})
qs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(qs)


def get_config():
    c = qs.get_config()
    c.data.num_train, c.data.num_valid, c.data.num_test = 96_000, 2_000, 2_000  # 119 steps of B 32 x T 25
    c.model.hidden_size = 64
    c.train.epochs, c.train.log_every, c.train.progress = 1, 1, False
    c.wandb.mode = "disabled"
    return c


def get_sweep():  # the second member raises: its batch does not fit the train split
    return {{"zip": {{"train.seed": [0, 1], "train.batch_size": [32, 100_000]}}}}
'''
GOOD, BAD = "seed=0,batch_size=32", "seed=1,batch_size=100000"


@pytest.fixture(scope="module")
def interrupted_study(cluster, tmp_path_factory):
    """The two-member study above on SLURM: GOOD requeued mid-training (scontrol requeue: SIGTERM),
    then signalled with USR2 (submitit requeues it); BAD raises. -> (workdir, what happened)."""
    import importlib.util

    from rnnlab.launch import queue_states, slurm_options, submit_study, wait_study

    tmp = tmp_path_factory.mktemp("interrupted")
    study_file = tmp / "study.py"
    study_file.write_text(STUDY.format(quickstart=str(ROOT / "configs" / "quickstart.py")))
    spec = importlib.util.spec_from_file_location("_study", study_file)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    wd = tmp / "study"
    opts = slurm_options()
    opts.time, opts.signal_delay_s = 10, 60
    index = submit_study(mod.get_config(), wd, mod.get_sweep(), options=opts, config_file=str(study_file),
                         say=lambda s: None)
    jid = index["submitted"][GOOD]
    run, log = wd / GOOD, wd / "slurm" / jid / f"{jid}_0_log.out"

    def last_step():
        try:
            return max(json.loads(ln)["step"] for ln in (run / "metrics.jsonl").read_text().splitlines() if ln.strip())
        except (OSError, ValueError, KeyError):
            return 0

    def starts():
        return log.read_text().count(f"job {jid} on ") if log.exists() else 0

    def preempted(sig):
        try:
            s = json.loads((run / "summary.json").read_text())
        except (OSError, ValueError):
            return None
        return s if s.get("status") == "preempted" and s.get("signal") == sig else None

    def release():  # a requeued job waits (BeginTime, ~2 min in SLURM): let it start now
        _until(f"{jid} pending again", lambda: queue_states().get(jid) == "PENDING", 120, 0.2)
        subprocess.run(["scontrol", "update", f"JobId={jid}", "StartTime=now"], check=True, capture_output=True)

    def interrupt(nth_start, at_step, send, sig):
        _until(f"start {nth_start} of {jid} at step >= {at_step}", lambda: starts() >= nth_start and
               last_step() >= at_step, 300)
        pid = int((run / sweep.LOCK_FILE).read_text().split()[1])
        os.kill(pid, signal.SIGSTOP)  # frozen mid-training until the signal is on its way
        stopped_at = last_step()
        subprocess.run([*send, jid], check=True, capture_output=True)
        os.kill(pid, signal.SIGCONT)
        s = _until(f"summary status preempted by {sig}", lambda: preempted(sig), 120, 0.1)
        release()
        return stopped_at, s["last_checkpoint_step"]

    seen = {}
    seen["term"] = interrupt(1, 3, ["scontrol", "requeue"], "SIGTERM")
    seen["usr2"] = interrupt(2, seen["term"][1] + 3, ["scancel", "--signal=USR2"], "SIGUSR2")
    seen["index"] = wait_study(wd, [jid, index["submitted"][BAD]], poll_s=1, say=lambda s: None, timeout_s=600)
    cfg = mod.get_config()
    cfg.train.seed, cfg.train.batch_size = 0, 32
    yield wd, cfg, seen


@pytest.mark.slurm
def test_requeued_member_ends_bit_identical(interrupted_study, tmp_path):
    from rnnlab.train import train_and_evaluate

    wd, cfg, seen = interrupted_study
    (_, c1), (_, c2) = seen["term"], seen["usr2"]
    ref = train_and_evaluate(cfg, tmp_path / "uninterrupted")
    got = json.loads((wd / GOOD / "summary.json").read_text())
    assert got["status"] == "finished"
    assert 3 <= c1 < c2 < got["steps"] == ref["steps"]  # both checkpoints mid-training (of 119 steps)
    assert got["params_sha256"] == ref["params_sha256"]
    assert (got["val_ppl"], got["test_ppl"]) == (ref["val_ppl"], ref["test_ppl"])
    timing = ("train/tokens_per_sec", "wall_s")

    def records(p):
        return [{k: v for k, v in json.loads(ln).items() if k not in timing} for ln in p.read_text().splitlines()]

    assert records(wd / GOOD / "metrics.jsonl") == records(tmp_path / "uninterrupted" / "metrics.jsonl")
    jid = [m for m in seen["index"]["members"] if m["name"] == GOOD][0]["job_id"]
    log = (wd / "slurm" / jid / f"{jid}_0_log.out").read_text()
    assert log.count(f"job {jid} on ") == 3  # three processes: first run, after scontrol requeue, after USR2
    assert f"stopped by SIGTERM at step {c1}: checkpoint saved" in log
    assert f"stopped by SIGUSR2 at step {c2}: checkpoint saved" in log
    assert f"Requeued job {jid}" in log  # submitit's checkpoint + requeue after USR2


@pytest.mark.slurm
def test_member_that_raises_is_failed(interrupted_study):
    wd, _, seen = interrupted_study
    status = {m["name"]: m for m in seen["index"]["members"]}
    assert status[GOOD]["status"] == "finished" and status[BAD]["status"] == "failed"
    assert status[BAD]["error"].startswith("train.batch_size=100000 and train.bptt=25 are too large for the train split")
    on_disk = json.loads((wd / "sweep.json").read_text())
    assert {m["name"]: m["status"] for m in on_disk["members"]} == {GOOD: "finished", BAD: "failed"}
    assert json.loads((wd / BAD / "summary.json").read_text())["status"] == "failed"
    assert (wd / BAD / "error.txt").read_text().startswith("Traceback")


# ----------------------------------------------------------------------------- no cluster needed
def test_agent_member_follows_wandb_preemption_rules(tmp_path):
    """A member run as a W&B agent runs it (sweep id and run id in the environment), stopped by
    SIGTERM at step 3: one line, exit 143 (non-zero), and its W&B run marked preempting before it
    ended, so the W&B sweep requeues it; the same command then resumes it."""
    from rnnlab.wandb_offline import iter_wandb_records

    wd = tmp_path / "study"
    cmd = [sys.executable, "-m", "experiments.sweep", "--config=configs/quickstart.py", f"--workdir={wd}", *SMALL,
           "--config.wandb.mode=offline", "--config.model.cell=gru", "--config.train.seed=1"]
    env = _env(WANDB_MODE="offline", WANDB_SWEEP_ID="s8w33p01", WANDB_RUN_ID="agentrun",
               RNNLAB_KILL_AT="step:3:TERM")
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 143, r.stderr[-3000:]
    assert r.stderr.strip().splitlines()[-1] == ("error: stopped by SIGTERM at step 3: checkpoint saved; re-run the "
                                                 "same command to resume exactly from it")
    run = wd / "cell=gru,seed=1"
    assert json.loads((run / "summary.json").read_text())["status"] == "preempted"
    (log,) = run.glob("wandb/offline-run-*-agentrun/run-agentrun.wandb")
    records = list(iter_wandb_records(log))
    kinds = [x.WhichOneof("record_type") for x in records]
    assert "preempting" in kinds and kinds.index("preempting") < kinds.index("exit")
    assert [x.exit.exit_code for x in records if x.WhichOneof("record_type") == "exit"] == [1]
    env.pop("RNNLAB_KILL_AT")
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads((run / "summary.json").read_text())["status"] == "finished"


def test_launcher_options_are_checked():
    from rnnlab.launch import check_options, slurm_options

    o = slurm_options()
    check_options(o)
    for field, value, need in (("time", 0, ">= 1"), ("cpus_per_task", -2, ">= 1"), ("mem", -1, ">= 0")):
        bad = slurm_options()
        bad[field] = value
        with pytest.raises(RnnlabError, match=rf"^--slurm\.{field}={value} is not valid; it must be an integer {need}$"):
            check_options(bad)
    o.time, o.signal_delay_s = 2, 120
    with pytest.raises(RnnlabError, match=r"^--slurm.signal_delay_s=120 is not below the time limit"):
        check_options(o)


def test_sacct_warning_is_filtered_and_states_come_from_squeue(tmp_path, monkeypatch):
    from rnnlab.launch import slurm as launch_slurm
    from rnnlab.launch.queue import member_entry, queue_states

    launch_slurm._quiet_sacct()
    log = logging.getLogger("submitit")
    keep = logging.LogRecord("submitit", logging.WARNING, "", 0, "something else", None, None)
    drop = logging.LogRecord("submitit", logging.WARNING, "", 0, "Call #3 - Bypassing sacct error x, status may be "
                             "inaccurate.", None, None)
    assert [f.filter(keep) for f in log.filters] == [True] and [f.filter(drop) for f in log.filters] == [False]
    run = tmp_path / "m"
    assert member_entry(run, "7_1", {"7_1": "PENDING"}) == {"status": "queued", "job_id": "7_1", "job_state": "PENDING"}
    assert member_entry(run, "7_1", {"7_1": "RUNNING"})["status"] == "running"
    assert member_entry(run, "7_1", {}) == {"status": "pending", "job_id": "7_1", "job_state": ""}  # gone from squeue
    monkeypatch.setenv("PATH", str(tmp_path))  # no squeue here
    with pytest.raises(RnnlabError, match=r"^squeue could not run .*is SLURM installed here"):
        queue_states()


def test_member_task_pickles_and_checkpoints_itself(tmp_path):
    import cloudpickle
    import submitit

    from rnnlab.launch import MemberTask

    c = base_config()
    task = MemberTask([sweep.Member("cell=gru", {"model.cell": "gru"}, c)], tmp_path, "configs/x.py")
    back = cloudpickle.loads(cloudpickle.dumps(task))
    assert back.members[0].name == "cell=gru" and back.members[0].config.model.hidden_size == 200
    again = task.checkpoint()  # what submitit pickles before a requeue: the same task, nothing else
    assert isinstance(again, submitit.helpers.DelayedSubmission) and again.function is task and again.args == ()


def test_cli_slurm_flags_are_one_line_errors(tmp_path):
    base = [sys.executable, "-m", "experiments.sweep", "--config=configs/quickstart.py", f"--workdir={tmp_path / 's'}",
            "--launcher=slurm"]
    for flag, line in (("--slurm.nope=1", "error: Unknown command line flag 'slurm.nope'"),
                       ("--slurm.time=0", "error: --slurm.time=0 is not valid; it must be an integer >= 1")):
        r = subprocess.run([*base, flag], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
        assert r.stderr.strip().splitlines()[-1].startswith(line)
    assert not (tmp_path / "s").exists()
