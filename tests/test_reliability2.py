"""Reliability and the command line, round two (issue 11): what a user, or a hostile one, met.

Item -> test (run with ``python -m pytest tests/test_reliability2.py -q``):
 1 W&B equal to metrics.jsonl after real SIGKILLs ........ test_wandb_equals_metrics_after_real_sigkills
   ... and for a finished run whose W&B segment was lost  test_finished_run_completes_its_wandb_mirror
 2 one process per run directory .......................... test_second_process_on_a_run_dir_is_refused,
                                                           test_run_dir_lock_takes_over_stale_locks
 3 config kept in each checkpoint, mismatch refused ....... test_checkpoints_keep_the_config_and_refuse_another
 4 a foreign non-empty folder is refused .................. test_foreign_folder_is_refused_and_left_alone
 5 eval streams shorter than eval.bptt refused ........... test_eval_streams_shorter_than_the_window_are_refused
 7 CRLF and BOM normalised, said in the summary ........... test_crlf_and_bom_are_normalised
10/11 config files that are not configs ................... test_cli_one_line[...] (config-file cases)
12 non-finite / out-of-range numbers ...................... test_validate_refuses_non_finite_and_negative,
                                                           test_cli_one_line[lr=1e400]
13 eval.reference and eval.prompt_len before training ..... test_reference_and_prompt_checked_before_training
14 --help, -h, --helpfull on every CLI .................... test_every_cli_prints_its_flags
16 progress: compiling, final evaluation, big inputs ...... test_progress_says_compiling_and_final_evaluation,
                                                           test_large_inputs_get_a_warning
17 README for a new machine ............................... test_readme_setup_for_a_new_machine
18 a finished train says so ............................... test_cli_one_line[finished earlier]
19 SIGTERM: checkpoint, one line, exit 143, exact resume .. test_sigterm_checkpoints_and_resumes_exactly,
                                                           test_sigterm_outside_the_step_loop
Also: fsync at each checkpoint ............................ test_checkpoint_fsyncs_metrics_and_its_files
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import rnnlab.faults as faults
from rnnlab import RnnlabError
from rnnlab.config import base_config, to_dict, validate
from rnnlab.kill_resume import compare_runs
from rnnlab.rundir import RunDirLock, claim_run_dir, take_lock
from rnnlab.tracking import history_rows, iter_wandb_records, read_jsonl, read_wandb_offline
from rnnlab.train import train_and_evaluate
from _tiny import tiny_config

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent


def tiny_config_file(d: Path, **over) -> Path:
    """A config file giving ``_tiny.tiny_config(**over)``, for the CLI."""
    p = d / "tiny_cfg.py"
    p.write_text(f"import sys\nsys.path.insert(0, {str(TESTS)!r})\nfrom _tiny import tiny_config\n\n\n"
                 f"def get_config():\n    return tiny_config(**{over!r})\n")
    return p


def cli_env(**extra) -> dict:
    """The environment of a command run from a shell: no WANDB_SERVICE (wandb puts the token of this
    process's wandb-core there; a child would share it, and a child killed with SIGKILL would leave
    its run 'in use' in our service, which no separate shell command ever sees)."""
    env = dict(os.environ, JAX_PLATFORMS="cpu", WANDB_SILENT="true", **extra)
    for name in ("WANDB_MODE", "WANDB_SERVICE", faults.KILL_ENV):
        env.pop(name, None)
    return env


def train_cmd(cfg_file, wd, *args) -> list[str]:
    return [sys.executable, "-m", "experiments.train", f"--config={cfg_file}", f"--workdir={wd}", *args]


def run(cmd, kill_at: str = "", timeout=600, **extra):
    env = cli_env(**extra)
    if kill_at:
        env[faults.KILL_ENV] = kill_at
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def same_as_reference(ref, wd) -> list[str]:
    """compare_runs without the config file's name (the reference ran in this process)."""
    return [d for d in compare_runs(ref, wd) if not d.startswith("summary config_file")]


def assert_wandb_equals_metrics(wd):
    """Every metrics.jsonl row (the records of a step merged) is in W&B's offline history, equal,
    and W&B holds no other step."""
    rows = history_rows(read_jsonl(wd / "metrics.jsonl"))
    wb = read_wandb_offline(wd)["history"]
    assert [h["_step"] for h in wb] == [r["step"] for r in rows]
    for h, r in zip(wb, rows):
        for k, v in r.items():
            if k != "step":
                assert h[k] == (float(v) if isinstance(v, str) else v), (r["step"], k)
    return wb


def one_error_line(r, *words, rc=2):
    lines = r.stderr.strip().splitlines()
    assert r.returncode == rc, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr + r.stdout
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr[-2000:]
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


# ----------------------------------------------------------------------------- 1, 19: kills and W&B
def test_wandb_equals_metrics_after_real_sigkills(reference, tmp_path):
    """Item 1. Real SIGKILLs of ``python -m experiments.train`` with W&B offline: in step 13 (last
    checkpoint 10), then at the start of the final evaluation (every step done, no summary yet);
    the third process finishes. Each killed process's .wandb file lost what it had not flushed;
    the resumed processes send what W&B lacks, so W&B's rows equal metrics.jsonl, and the run
    equals an uninterrupted one."""
    ref, _ = reference
    cfg_file = tiny_config_file(tmp_path, **{"wandb.mode": "offline"})
    wd = tmp_path / "run"
    r1 = run(train_cmd(cfg_file, wd), kill_at="step:13")
    assert r1.returncode == -signal.SIGKILL, r1.stderr[-2000:]
    assert max(r["step"] for r in read_jsonl(wd / "metrics.jsonl")) == 12
    r2 = run(train_cmd(cfg_file, wd), kill_at="final:1")  # resumes from 10, killed after the last save
    assert r2.returncode == -signal.SIGKILL, r2.stderr[-2000:]
    assert "W&B" not in r1.stderr + r2.stderr  # W&B worked in both (no warning line)
    assert not (wd / "summary.json").exists()
    summary = train_and_evaluate(tiny_config(**{"wandb.mode": "offline"}), wd)  # resumes from 48: evaluates
    wb = assert_wandb_equals_metrics(wd)
    assert len(wb) == 12  # steps 4, 8, ..., 48 (the train, val and test records of step 48 merged)
    assert same_as_reference(ref, wd) == []
    files = read_wandb_offline(wd)["files"]
    assert len(files) == 3
    exits = [[r.exit.exit_code for r in iter_wandb_records(f) if r.WhichOneof("record_type") == "exit"]
             for f in files]
    assert exits[-1] == [0] and exits[:2] == [[], []]  # the killed processes never finished their W&B run
    assert read_wandb_offline(wd)["summary"]["test_ppl"] == summary["test_ppl"]


def test_finished_run_completes_its_wandb_mirror(reference, tmp_path):
    """Item 1, 'at the end': a kill after summary.json was written and before W&B flushed leaves a
    finished run whose .wandb file is only its header; re-running the command sends it all again."""
    wd = tmp_path / "run"
    cfg = tiny_config(**{"wandb.mode": "offline", "train.epochs": 1})
    summary = train_and_evaluate(cfg, wd)
    (f,) = read_wandb_offline(wd)["files"]
    Path(f).write_bytes(Path(f).read_bytes()[:7])  # what SIGKILL leaves: the 7-byte header
    assert read_wandb_offline(wd)["history"] == []
    assert train_and_evaluate(cfg, wd) == summary  # finished earlier: nothing trained
    wb = read_wandb_offline(wd)
    assert len(wb["files"]) == 2 and wb["summary"]["test_ppl"] == summary["test_ppl"]
    assert_wandb_equals_metrics(wd)
    n = len(wb["files"])
    train_and_evaluate(cfg, wd)  # complete now: no new segment
    assert len(read_wandb_offline(wd)["files"]) == n


def test_sigterm_checkpoints_and_resumes_exactly(reference, tmp_path):
    """Item 19. SIGTERM in step 13 (what a scheduler sends): the process checkpoints step 13, writes
    summary.json with status preempted, prints one line and exits 143; W&B is complete; the same
    command resumes to the uninterrupted run's exact numbers."""
    ref, _ = reference
    cfg_file = tiny_config_file(tmp_path, **{"wandb.mode": "offline"})
    wd = tmp_path / "run"
    r = run(train_cmd(cfg_file, wd), kill_at="step:13:TERM")
    one_error_line(r, "stopped by SIGTERM at step 13: checkpoint saved", "re-run the same command", rc=143)
    assert sorted(int(p.name) for p in (wd / "checkpoints" / "latest").iterdir()) == [10, 13]
    s = json.loads((wd / "summary.json").read_text())
    assert s["status"] == "preempted" and s["step"] == 13 and s["last_checkpoint_step"] == 13
    assert_wandb_equals_metrics(wd)
    summary = train_and_evaluate(tiny_config(**{"wandb.mode": "offline"}), wd)
    assert summary["status"] == "finished" and summary["params_sha256"] == reference[1]["params_sha256"]
    assert same_as_reference(ref, wd) == []
    assert_wandb_equals_metrics(wd)


def test_sigterm_outside_the_step_loop():
    """Item 19. Before the first step (loading, restoring, compiling) and after the last one, SIGTERM
    stops at once (nothing new to save); the previous handler comes back after training."""
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(faults.Preempted, match="before the first step of this process"):
        with faults.preemptible():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)  # the handler runs here
    with pytest.raises(faults.Preempted, match="during the final evaluation"):
        with faults.preemptible():
            assert faults.preempted(5, 10) is False  # in the loop: deferred to the next step boundary
            assert faults.preempted(10, 10) is False  # the last step is done: the final evaluation
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)
    with faults.preemptible():
        faults.preempted(3, 10)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.2)
        assert faults.preempted(4, 10) is True  # the loop saves and stops here
    assert signal.getsignal(signal.SIGTERM) is before and faults.preempted(1, 10) is False


# ----------------------------------------------------------------------------- 2: one process per run dir
def test_second_process_on_a_run_dir_is_refused(tmp_path):
    """Item 2. While one ``experiments.train`` trains a run directory (stopped with SIGSTOP so it
    holds the lock), the same command elsewhere gets one line and exit 2, touching nothing; the
    first then finishes with an intact metrics.jsonl and releases the lock."""
    cfg_file = tiny_config_file(tmp_path)
    wd = tmp_path / "run"
    a = subprocess.Popen(train_cmd(cfg_file, wd), cwd=ROOT, env=cli_env(), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while not (wd / "config.json").exists() and a.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (wd / ".train.lock").exists(), a.communicate()[1][-2000:]
        a.send_signal(signal.SIGSTOP)
        before = (wd / "metrics.jsonl").read_bytes() if (wd / "metrics.jsonl").exists() else b""
        b = run(train_cmd(cfg_file, wd))
        one_error_line(b, f"workdir {wd} is being trained by another process", f"pid {a.pid}",
                       str(wd / ".train.lock"))
        now = (wd / "metrics.jsonl").read_bytes() if (wd / "metrics.jsonl").exists() else b""
        assert now == before
    finally:
        a.send_signal(signal.SIGCONT)
    out, err = a.communicate(timeout=600)
    assert a.returncode == 0, err[-2000:]
    steps = [r["step"] for r in read_jsonl(wd / "metrics.jsonl") if "train/loss" in r]
    assert steps == sorted(set(steps)) and steps[-1] == 48
    assert not (wd / ".train.lock").exists()


def test_run_dir_lock_takes_over_stale_locks(tmp_path):
    """Item 2. A lock whose process is gone (killed with SIGKILL) is taken over; a live one, or a
    live sweep's member lock, is refused; releasing removes only our own lock."""
    wd = tmp_path / "run"
    wd.mkdir()
    host = os.uname().nodename
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (wd / ".train.lock").write_text(f"{host} {dead.pid}")
    lock = claim_run_dir(wd)  # stale: taken over
    assert (wd / ".train.lock").read_text() == f"{host} {os.getpid()}"
    lock.release()
    assert not (wd / ".train.lock").exists()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        for name in (".train.lock", ".sweep.lock"):
            (wd / name).write_text(f"{host} {live.pid}")
            with pytest.raises(RnnlabError, match=f"is being trained by another process \\(host {host} pid {live.pid}\\);"
                                                  f".* or remove {wd / name} if"):
                claim_run_dir(wd)
            (wd / name).unlink()
        (wd / ".train.lock").write_text(f"{host} {live.pid}")
        RunDirLock(wd).release()  # not ours: left alone
        assert (wd / ".train.lock").exists()
    finally:
        live.kill()
        live.wait()
    assert take_lock(wd / ".train.lock") is None  # its holder is gone now


# ----------------------------------------------------------------------------- 3, 4: what a run directory is
def test_checkpoints_keep_the_config_and_refuse_another(reference, stopped13, tmp_path):
    """Item 3. Each checkpoint's meta keeps the run's config; a run directory that lost config.json
    is refused with another config (lr 0.005 over checkpoints trained at 0.01), resumes exactly with
    its own, and one whose checkpoints keep no config is refused outright."""
    ref, ref_summary = reference
    meta = json.loads((stopped13 / "checkpoints" / "latest" / "10" / "meta" / "metadata").read_text())
    assert meta["config"] == to_dict(tiny_config())
    wd = tmp_path / "run"
    shutil.copytree(stopped13, wd)
    (wd / "config.json").unlink()
    with pytest.raises(RnnlabError) as e:
        train_and_evaluate(tiny_config(**{"train.lr": 0.005}), wd)
    msg = str(e.value)
    assert "\n" not in msg and "holds a different run's checkpoint latest/10 (its config)" in msg
    assert "train.lr: 0.01 -> 0.005" in msg and not (wd / "config.json").exists()
    # config.json present but checkpoints of another config: refused too
    (wd / "config.json").write_text(json.dumps(to_dict(tiny_config(**{"train.lr": 0.005}))))
    with pytest.raises(RnnlabError, match=r"checkpoint latest/10 \(its config\) \(train.lr: 0.01 -> 0.005\)"):
        train_and_evaluate(tiny_config(**{"train.lr": 0.005}), wd)
    (wd / "config.json").unlink()
    assert train_and_evaluate(tiny_config(), wd)["params_sha256"] == ref_summary["params_sha256"]
    assert compare_runs(ref, wd) == []
    old = tmp_path / "old"  # checkpoints written before they kept the config, and no config.json
    shutil.copytree(stopped13, old)
    (old / "config.json").unlink()
    for step in ("5", "10"):
        m = old / "checkpoints" / "latest" / step / "meta" / "metadata"
        m.write_text(json.dumps({k: v for k, v in json.loads(m.read_text()).items() if k != "config"}))
    with pytest.raises(RnnlabError, match=r"has checkpoints but no config.json, and checkpoint latest/10 keeps no "
                                          r"config"):
        train_and_evaluate(tiny_config(), old)


def test_foreign_folder_is_refused_and_left_alone(tmp_path):
    """Item 4. A folder holding another tool's metrics.jsonl and summary.json (no config.json) is not
    a run directory: refused in one line, its files untouched. An empty folder is fine."""
    wd = tmp_path / "theirs"
    wd.mkdir()
    (wd / "metrics.jsonl").write_text('{"epoch": 1, "acc": 0.5}\n')
    (wd / "summary.json").write_text('{"status": "finished", "acc": 0.9}')
    before = {p.name: p.read_bytes() for p in wd.iterdir()}
    with pytest.raises(RnnlabError) as e:
        train_and_evaluate(tiny_config(), wd)
    msg = str(e.value)
    assert msg == (f"workdir {wd} is not empty and is not an rnnlab run directory (no config.json or checkpoints; "
                   f"it holds metrics.jsonl, summary.json); use a new or empty --workdir")
    assert {p.name: p.read_bytes() for p in wd.iterdir()} == before
    from rnnlab.rundir import check_workdir_config

    (tmp_path / "empty").mkdir()
    check_workdir_config(tmp_path / "empty", tiny_config(), write=False)  # no error


# ----------------------------------------------------------------------------- 5, 12, 13: checked before training
def test_eval_streams_shorter_than_the_window_are_refused(reference, tmp_path):
    """Item 5. eval.batch_size=100000 on a 600-token split: refused before anything is written. The
    bound is exact (66 streams of >= 10 targets fit 599 targets; 67 do not), and perplexity does
    grow with the number of streams, each a state reset."""
    from rnnlab.evaluate import evaluate
    from rnnlab.preflight import preflight
    from rnnlab.runs import load_run
    from rnnlab.train import prepare

    wd = tmp_path / "run"
    with pytest.raises(RnnlabError) as e:
        train_and_evaluate(tiny_config(**{"eval.batch_size": 100_000}), wd)
    assert str(e.value) == ("eval.batch_size=100000 cuts the valid split (600 tokens) into streams of 1 targets, "
                            "shorter than the eval window eval.bptt=10 (each stream starts from a zero carry); use "
                            "eval.batch_size <= 66 or a smaller eval.bptt")
    assert not wd.exists()
    corpus = prepare(tiny_config()).corpus
    preflight(tiny_config(**{"eval.batch_size": 66}), corpus)
    with pytest.raises(RnnlabError, match="streams of 9 targets"):
        preflight(tiny_config(**{"eval.batch_size": 67}), corpus)
    preflight(tiny_config(**{"eval.batch_size": 67, "eval.bptt": 9}), corpus)
    cfg, model, params, vocab = load_run(reference[0], "latest")
    ppl = {B: evaluate(model, params, corpus.valid, tiny_config(**{"eval.batch_size": B}), corpus.level)["ppl"]
           for B in (1, 4, 66, 599)}
    assert ppl[1] < ppl[66] < ppl[599] and ppl[4] < ppl[66], ppl


@pytest.mark.parametrize("field,value,words", [
    ("train.lr", float("inf"), "train.lr=inf is not valid; it must be a finite number"),
    ("train.lr", float("1e400"), "train.lr=inf is not valid; it must be a finite number"),
    ("model.forget_bias", float("nan"), "model.forget_bias=nan is not valid; it must be a finite number"),
    ("model.init_scale", float("nan"), "model.init_scale=nan is not valid; it must be a finite number"),
    ("train.weight_decay", -0.1, "train.weight_decay=-0.1 is not valid; it must be >= 0"),
    ("model.init_scale", 0.0, "model.init_scale=0.0 is not valid; it must be > 0"),
    ("checkpoint.keep", 0, "checkpoint.keep=0 is not valid; it must be > 0"),
    ("data.num_valid", 0, "data.num_valid=0 is not valid; it must be > 0"),
    ("train.schedule.eps", float("nan"), "train.schedule.eps=nan is not valid; it must be a finite number"),
    ("data.oracle.init_std", float("inf"), "data.oracle.init_std=inf is not valid; it must be a finite number"),
])
def test_validate_refuses_non_finite_and_negative(tmp_path, field, value, words):
    """Item 12: before anything is written (no run directory appears)."""
    cfg = tiny_config()
    *path, name = field.split(".")
    node = cfg
    for p in path:
        node = node[p]
    node[name] = value
    with pytest.raises(RnnlabError) as e:
        train_and_evaluate(cfg, tmp_path / "run")
    assert str(e.value) == words and not (tmp_path / "run").exists()


def test_reference_and_prompt_checked_before_training(reference, tmp_path, monkeypatch):
    """Item 13. A missing eval.reference, a folder that is no run, a run of another vocabulary, and
    an eval.prompt_len the test split cannot hold are refused before training starts."""
    import rnnlab.train as train_mod

    monkeypatch.setattr(train_mod, "train_loop", lambda *a, **k: pytest.fail("trained before the check"))
    ref, _ = reference
    (tmp_path / "not_a_run").mkdir()
    other = tmp_path / "other_vocab"
    shutil.copytree(ref, other)
    vocab = json.loads((other / "vocab.json").read_text())
    (other / "vocab.json").write_text(json.dumps(dict(vocab, itos=vocab["itos"][::-1])))
    cases = {
        str(tmp_path / "missing"): "is not a trained run directory",
        str(tmp_path / "not_a_run"): "is not a trained run directory",
        str(other): "has a different vocabulary (7 tokens) than this run (7); name a run trained on the same data",
    }
    for i, (where, words) in enumerate(cases.items()):
        cfg = tiny_config(**{"eval.free_running": True, "eval.reference": where, "eval.num_samples": 4})
        with pytest.raises(RnnlabError, match=words.replace("(", r"\(").replace(")", r"\)")):
            train_and_evaluate(cfg, tmp_path / f"run{i}")
        assert not (tmp_path / f"run{i}").exists()
    cfg = tiny_config(**{"eval.free_running": True, "eval.prompt_len": 590, "eval.num_samples": 4})
    with pytest.raises(RnnlabError, match=r"the test split \(600 tokens\) is too short for eval.prompt_len=590"):
        train_and_evaluate(cfg, tmp_path / "run_p")
    assert not (tmp_path / "run_p").exists()


# ----------------------------------------------------------------------------- 7: CRLF and BOM
def test_crlf_and_bom_are_normalised(tmp_path):
    """Item 7. A Windows copy of a text (CRLF line endings, a UTF-8 BOM) gives the same tokens as the
    Unix one, at char and word level; the corpus meta (and so summary.json) says what was done."""
    from rnnlab.data import load_corpus

    unix = "the cat sat on the mat\nand the dog ran\n" * 40
    (tmp_path / "unix.txt").write_text(unix)
    (tmp_path / "win.txt").write_bytes(("\ufeff" + unix.replace("\n", "\r\n")).encode("utf-8"))
    (tmp_path / "mac.txt").write_bytes(unix.replace("\n", "\r").encode("utf-8"))
    for level in ("char", "word"):
        got = {}
        for name in ("unix", "win", "mac"):
            cfg = base_config()
            cfg.data.name, cfg.data.path, cfg.data.level = "text", str(tmp_path / f"{name}.txt"), level
            got[name] = load_corpus(cfg.data)
        for name in ("win", "mac"):
            assert got[name].vocab.itos == got["unix"].vocab.itos, (level, name)
            assert np.array_equal(got[name].train, got["unix"].train)
        assert "\r" not in got["win"].vocab.itos and "\ufeff" not in "".join(got["win"].vocab.itos)
        assert "text_normalized" not in got["unix"].meta
        assert got["win"].meta["text_normalized"] == {
            str(tmp_path / "win.txt"): "UTF-8 byte-order mark removed; line endings made LF (80 CRLF, 0 CR)"}
        assert got["mac"].meta["text_normalized"] == {str(tmp_path / "mac.txt"): "line endings made LF (0 CRLF, 80 CR)"}


# ----------------------------------------------------------------------------- 10, 11, 12, 18: the CLI
def _config_files(d: Path) -> dict:
    files = {
        "returns_dict": "def get_config():\n    return {'model': 3}\n",
        "returns_int": "def get_config():\n    return 5\n",
        "raises": "def get_config():\n    raise ValueError('bad thing happened')\n",
        "raises_key": "def get_config():\n    return {}['model']\n",
        "no_get_config": "X = 1\n",
        "exits": "import sys\nsys.exit(0)\n",
        "exits_in_get_config": "import sys\n\n\ndef get_config():\n    sys.exit(3)\n",
        "import_error": "import no_such_module_xyz\n",
    }
    for name, text in files.items():
        (d / f"{name}.py").write_text(text)
    return {name: d / f"{name}.py" for name in files}


@pytest.fixture(scope="module")
def cli_results(tmp_path_factory, reference):
    """Every CLI case started at once (they mostly wait on imports), then collected."""
    d = tmp_path_factory.mktemp("cli2")
    f = _config_files(d)
    finished = d / "finished"
    shutil.copytree(reference[0], finished)
    tiny = tiny_config_file(d)
    cases = {  # name -> (argv after the module, words of the one line or None, expected rc)
        "returns_dict": ([f"--config={f['returns_dict']}"], ["returned dict", "not a ConfigDict"], 2),
        "returns_int": ([f"--config={f['returns_int']}"], ["returned int", "not a ConfigDict"], 2),
        "raises": ([f"--config={f['raises']}"], [f"config file {str(f['raises'])!r} raised ValueError: bad thing "
                                                 f"happened in get_config() (line 2)"], 2),
        "raises_key": ([f"--config={f['raises_key']}"], ["raised KeyError: 'model' in get_config() (line 2)"], 2),
        "no_get_config": ([f"--config={f['no_get_config']}"], ["has no get_config() function"], 2),
        "exits": ([f"--config={f['exits']}"], ["called sys.exit(0) while loading; nothing was run"], 2),
        "exits_in_get_config": ([f"--config={f['exits_in_get_config']}"], ["called sys.exit(3) in get_config()"], 2),
        "import_error": ([f"--config={f['import_error']}"],
                         ["raised ModuleNotFoundError: No module named 'no_such_module_xyz' while loading (line 1)"], 2),
        "lr=1e400": ([f"--config={tiny}", "--config.train.lr=1e400"],
                     ["train.lr=inf is not valid; it must be a finite number"], 2),
        "finished earlier": ([f"--config={tiny}"], None, 0),
    }
    procs = {}
    for name, (args, words, rc) in cases.items():
        wd = finished if name == "finished earlier" else d / f"run_{name}"
        cmd = [sys.executable, "-m", "experiments.train", f"--workdir={wd}", *args]
        procs[name] = (subprocess.Popen(cmd, cwd=ROOT, env=cli_env(), stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True), words, rc, wd)
    out = {}
    for name, (p, words, rc, wd) in procs.items():
        stdout, stderr = p.communicate(timeout=600)
        out[name] = (subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr), words, rc, wd)
    return out


@pytest.mark.parametrize("case", ["returns_dict", "returns_int", "raises", "raises_key", "no_get_config", "exits",
                                  "exits_in_get_config", "import_error", "lr=1e400", "finished earlier"])
def test_cli_one_line(cli_results, case, reference):
    """Items 10, 11, 12 (a config file that is not a config; lr=1e400: one line, exit 2, nothing
    written) and 18 (a finished run says so, exit 0, its summary on stdout)."""
    r, words, rc, wd = cli_results[case]
    if case == "finished earlier":
        assert r.returncode == 0 and "Traceback" not in r.stderr
        assert r.stderr.strip() == f"{wd}: finished earlier, nothing to do (its summary below; a new --workdir " \
                                   f"trains again)"
        assert json.loads(r.stdout)["test_ppl"] == reference[1]["test_ppl"]
        return
    one_error_line(r, *words, rc=rc)
    assert not wd.exists()


# ----------------------------------------------------------------------------- 14: --help
CLIS = sorted(p.stem for p in (ROOT / "experiments").glob("*.py") if not p.stem.startswith("_"))


@pytest.fixture(scope="module")
def help_results():
    procs = {(m, h): subprocess.Popen([sys.executable, "-m", f"experiments.{m}", h], cwd=ROOT, env=cli_env(),
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for m in CLIS for h in ("--help", "-h", "--helpfull")}
    out = {}
    for k, p in procs.items():
        stdout, stderr = p.communicate(timeout=600)
        out[k] = (stdout, stderr, p.returncode)
    return out


@pytest.mark.parametrize("module", CLIS)
def test_every_cli_prints_its_flags(help_results, module):
    """Item 14: every experiments/* command prints its docstring and its flags with their
    descriptions for --help, -h and --helpfull (which adds absl's own), and exits 0."""
    import re

    src = (ROOT / "experiments" / f"{module}.py").read_text()
    names = re.findall(r"(?:flags\.DEFINE_\w+|config_flags\.DEFINE_config_file)\(\s*\"(\w+)\"", src)
    assert names, module
    outs = {}
    for h in ("--help", "-h", "--helpfull"):
        out, err, rc = help_results[(module, h)]
        assert rc == 0 and "error" not in err.lower(), (h, err[-1000:])
        for name in names:
            assert re.search(rf"--(\[no\])?{name}: \S", out), (module, h, name)
        outs[h] = out
    assert outs["--help"] == outs["-h"] and len(outs["--helpfull"]) >= len(outs["--help"])


# ----------------------------------------------------------------------------- 16: progress
def test_progress_says_compiling_and_final_evaluation(tmp_path, capfd):
    """Item 16: while the first step compiles the bar says 'compiling'; during the last validation
    and test passes, 'final evaluation'."""
    capfd.readouterr()
    train_and_evaluate(tiny_config(**{"train.progress": True, "train.epochs": 1}), tmp_path / "bar")
    err = capfd.readouterr().err
    assert "bar (compiling)" in err and "bar (final evaluation)" in err
    assert err.index("bar (compiling)") < err.index("step 24: val ppl") < err.index("bar (final evaluation)")


def test_large_inputs_get_a_warning(reference, tmp_path, monkeypatch, capsys):
    """Item 16: a text file past LARGE_TEXT_BYTES (50 MB; lowered here) and a sample of more than a
    million tokens each print one warning line saying how long it takes."""
    import rnnlab.data.files as files

    monkeypatch.setattr(files, "LARGE_TEXT_BYTES", 1000)
    (tmp_path / "big.txt").write_text("the cat sat on the mat\n" * 100)
    files.read_text(tmp_path / "big.txt")
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"warning: {tmp_path / 'big.txt'} is 0 MB; reading it, building")
    r = run([sys.executable, "-m", "experiments.sample", f"--workdir={reference[0]}", "--length=1000",
             "--num_samples=1001", "--temperature=0", "--prompt=B"])
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stderr.startswith("warning: generating 1,001,000 tokens (--length x --num_samples) in one lax.scan "
                               "shows no progress until it ends")
    assert r.stdout.count("--- sample ") == 1001


# ----------------------------------------------------------------------------- 17: README
def test_readme_setup_for_a_new_machine():
    """Item 17: the data hint works from any folder (an absolute path, or downloads with SHA-256
    checks), the set-up commands carry one measured time each, the test command's time on 2 cores
    is given, and how to see why tests are skipped."""
    text = (ROOT / "README.md").read_text()
    setup = text[text.index("## Set up and run"):text.index("\n## ", text.index("## Set up and run") + 5)]
    assert "RNNLAB_DATA_DIR=../" not in text and "export RNNLAB_DATA_DIR=/" in setup
    assert "SHA-256" in setup and "-rs" in setup and "2-core" in setup
    assert setup.count("measured") >= 2


# ----------------------------------------------------------------------------- also: fsync
def test_checkpoint_fsyncs_metrics_and_its_files(stopped13, tmp_path, monkeypatch):
    """Also: at each checkpoint, metrics.jsonl (what it covers), every file of the checkpoint and the
    folder entry of its rename are fsynced."""
    import rnnlab.faults as f

    wd = tmp_path / "run"
    shutil.copytree(stopped13, wd)
    synced = []
    real = os.fsync

    def fsync(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        return real(fd)

    monkeypatch.setattr(f.os, "fsync", fsync)
    from rnnlab.checkpoint import Checkpointer
    from rnnlab.train import create_train_state, prepare, split_keys

    setup = prepare(tiny_config())
    state = create_train_state(tiny_config(), setup.model, setup.tx, split_keys(0)["init"])
    ck = Checkpointer(wd, 2, config=to_dict(tiny_config()))
    _, meta, _ = ck.resume(state)
    ck.save(15, state, meta)
    ck.close()
    step = wd / "checkpoints" / "latest" / "15"
    assert str(wd / "metrics.jsonl") in synced
    assert str(step / "meta" / "metadata") in synced and str(step) in synced
    assert str(wd / "checkpoints" / "latest") in synced
    assert synced.index(str(wd / "metrics.jsonl")) < synced.index(str(step))
