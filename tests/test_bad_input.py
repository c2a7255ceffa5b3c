"""Bad input (issue 7): each gives one line naming the value and what is allowed, and a non-zero
exit; never a traceback. A representative subset goes through ``python -m experiments.train``
(subprocesses, started together), the rest through the library (``config.validate``,
``data.load_corpus``, ``train.prepare``, ``train.train_and_evaluate``). tests/test_cli.py has the CLI
cases for an unknown cell / dataset / field, a wrongly typed override and a missing config file;
tests/test_reliability.py the checkpoints whose shapes or vocabulary do not fit; tests/test_resume.py
the library side of a workdir holding another run's config."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rnnlab import RnnlabError
from rnnlab.config import base_config, validate
from rnnlab.data import load_corpus
from rnnlab.train import prepare

ROOT = Path(__file__).resolve().parents[1]
QS = ["--config=configs/quickstart.py", "--config.train.progress=False", "--config.wandb.mode=disabled",
      "--config.data.num_train=20000", "--config.data.num_valid=2000", "--config.data.num_test=2000"]


def _files(d: Path) -> dict:
    """Bad data files and folders; returns their paths by name."""
    d.mkdir(parents=True, exist_ok=True)
    (d / "empty.txt").write_text("")
    (d / "blank.txt").write_text("  \n\n\t \n")
    (d / "binary.bin").write_bytes(b"PK\x03\x04\x00\x00\x08\x00" + bytes(range(256)))
    (d / "latin1.txt").write_bytes("caf\u00e9 au lait\n".encode("latin-1") * 20)
    (d / "short.txt").write_text("a b c d e f\n")
    (d / "nosplits").mkdir(exist_ok=True)
    (d / "nosplits" / "train.txt").write_text("the cat sat\n" * 50)
    (d / "emptydir").mkdir(exist_ok=True)
    (d / "two_train").mkdir(exist_ok=True)
    for name in ("train.txt", "train_old.txt", "valid.txt", "test.txt"):
        (d / "two_train" / name).write_text("the cat sat\n" * 50)
    (d / "a_file").write_text("not a folder\n")
    return {p.name: p for p in d.iterdir()}


# ----------------------------------------------------------------------------- through the CLI
def _other_config_dir(d: Path) -> Path:
    """A run directory holding another run's config.json (hidden size 64)."""
    from rnnlab.config import to_dict

    import importlib.util

    spec = importlib.util.spec_from_file_location("_qs", ROOT / "configs" / "quickstart.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    wd = d / "other_run"
    wd.mkdir(parents=True, exist_ok=True)
    cfg = module.get_config()  # the CLI's config (QS overrides), but hidden size 64
    cfg.data.num_train, cfg.data.num_valid, cfg.data.num_test = 20000, 2000, 2000
    cfg.model.hidden_size = 64
    (wd / "config.json").write_text(json.dumps(to_dict(cfg)))
    return wd


def _cli_cases(d: Path) -> dict:
    f = _files(d / "data")
    text = ["--config.data.name=text"]
    return {  # name -> (extra args, workdir, words the one line must contain)
        "unknown optimizer": (["--config.train.optimizer=lion"], None,
                              ["train.optimizer='lion' is not valid", "allowed: sgd, adam, adamw"]),
        "unknown schedule": (["--config.train.schedule.kind=cosine"], None,
                             ["train.schedule.kind='cosine' is not valid", "allowed: constant, linear"]),
        "non-positive bptt": (["--config.train.bptt=0"], None, ["train.bptt=0 is not valid", "must be > 0"]),
        "negative hidden size": (["--config.model.hidden_size=-8"], None,
                                 ["model.hidden_size=-8 is not valid", "must be > 0"]),
        "bptt too large": (["--config.train.bptt=700"], None,
                           ["train.batch_size=32 and train.bptt=700 are too large for the train split (20000 tokens)",
                            "need batch_size * (bptt + 1) <= 20000"]),
        "binary file": (text + [f"--config.data.path={f['binary.bin']}"], None,
                        [str(f["binary.bin"]), "looks binary", "give a UTF-8 text file"]),
        "folder without splits": (text + [f"--config.data.path={f['nosplits']}"], None,
                                  ["is a folder without valid/test files", "'train', 'valid' (or 'val') and 'test'"]),
        "workdir of another run": ([], _other_config_dir(d), ["holds a different run's config",
                                                             "model.hidden_size: 64 -> 32", "use another --workdir"]),
        "workdir is a file": ([], f["a_file"], [f"could not write to run directory {f['a_file']}", "File exists"]),
        "diverging run": (["--config.model.cell=rnn_relu", "--config.train.optimizer=sgd", "--config.train.lr=1e30",
                           "--config.train.clip_norm=0", "--config.train.log_every=5"], None,
                          ["training diverged: non-finite loss or gradient at step ", "no checkpoint was saved",
                           "train.skip_nonfinite=True"]),
    }


@pytest.fixture(scope="module")
def cli_results(tmp_path_factory):
    """Start every CLI case at once (they mostly wait on imports), then collect them."""
    d = tmp_path_factory.mktemp("bad_cli")
    env = dict(os.environ, WANDB_MODE="disabled", JAX_PLATFORMS="cpu")
    procs = {}
    for i, (name, (args, workdir, words)) in enumerate(_cli_cases(d).items()):
        wd = workdir or d / f"run{i}"
        cmd = [sys.executable, "-m", "experiments.train", *QS, f"--workdir={wd}", *args]
        procs[name] = (subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True), words, wd)
    out = {}
    for name, (p, words, wd) in procs.items():
        stdout, stderr = p.communicate(timeout=600)
        out[name] = (p.returncode, stdout, stderr, words, wd)
    return out


@pytest.mark.parametrize("case", ["unknown optimizer", "unknown schedule", "non-positive bptt", "negative hidden size",
                                  "bptt too large", "binary file", "folder without splits", "workdir of another run",
                                  "workdir is a file", "diverging run"])
def test_cli_gives_one_line_and_a_nonzero_exit(cli_results, case):
    rc, stdout, stderr, words, wd = cli_results[case]
    assert rc == 2, (rc, stderr[-2000:])
    assert "Traceback" not in stderr + stdout and stdout == ""
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr[-2000:]
    for w in words:
        assert w in lines[0], (w, lines[0])
    if case == "workdir of another run":  # the other run's config is untouched
        assert json.loads((wd / "config.json").read_text())["model"]["hidden_size"] == 64
    if case == "diverging run":
        s = json.loads((wd / "summary.json").read_text())
        assert s["status"] == "diverged" and f"step {s['diverged_step']}" in lines[0]


# ----------------------------------------------------------------------------- through the library
def _set(cfg, field, value):
    *path, name = field.split(".")
    node = cfg
    for p in path:
        node = node[p]
    node[name] = value
    return cfg


VALIDATE_CASES = [
    ("model.cell", "transformer", "model.cell='transformer' is not valid; allowed: "),  # the registry's names (test_config)
    ("data.name", "imagenet", "data.name='imagenet' is not valid; allowed: "),
    ("train.optimizer", "lion", "train.optimizer='lion' is not valid; allowed: sgd, adam, adamw"),
    ("train.schedule.kind", "cosine", "train.schedule.kind='cosine' is not valid; allowed: constant, linear, "
                                      "exponential, inverse_sigmoid"),
    ("train.mode", "free", "train.mode='free' is not valid; allowed: teacher_forcing, "),
    ("model.hidden_size", 0, "model.hidden_size=0 is not valid; it must be > 0"),
    ("model.num_layers", 0, "model.num_layers=0 is not valid; it must be > 0"),
    ("model.embed_size", -4, "model.embed_size=-4 is not valid; it must be >= 0"),
    ("train.batch_size", 0, "train.batch_size=0 is not valid; it must be > 0"),
    ("train.bptt", -5, "train.bptt=-5 is not valid; it must be > 0"),
    ("train.epochs", 0, "train.epochs=0 is not valid; it must be > 0"),
    ("train.log_every", 0, "train.log_every=0 is not valid; it must be > 0"),
    ("eval.batch_size", 0, "eval.batch_size=0 is not valid; it must be > 0"),
    ("eval.bptt", -1, "eval.bptt=-1 is not valid; it must be >= 0"),
    ("checkpoint.every_steps", -1, "checkpoint.every_steps=-1 is not valid; it must be >= 0"),
    ("train.max_skips_in_a_row", -1, "train.max_skips_in_a_row=-1 is not valid; it must be >= 0"),
    ("model.dropout", 1.0, "model.dropout=1.0 is not valid; it must be in [0, 1)"),
]


@pytest.mark.parametrize("field,value,message", VALIDATE_CASES, ids=[c[0] for c in VALIDATE_CASES])
def test_validate_names_the_value_and_what_is_allowed(field, value, message):
    with pytest.raises(RnnlabError) as e:
        validate(_set(base_config(), field, value))
    assert str(e.value).startswith(message) and "\n" not in str(e.value), str(e.value)


DATA_CASES = {
    "empty.txt": "is empty; give a text file with some tokens",
    "blank.txt": "is empty; give a text file with some tokens",
    "binary.bin": "looks binary (it has NUL bytes); give a UTF-8 text file",
    "latin1.txt": "is not UTF-8 (invalid byte at offset 3); give a UTF-8 text file",
    "short.txt": "too few to split 90/5/5",
    "nosplits": "is a folder without valid/test files",
    "emptydir": "is a folder without train/valid/test files",
    "two_train": "has several train files (train.txt, train_old.txt); keep exactly one",
    "missing": "does not exist; give a UTF-8 text file or a folder",
}


@pytest.mark.parametrize("name", sorted(DATA_CASES))
def test_bad_data_files(tmp_path, name):
    f = _files(tmp_path)
    path = f.get(name, tmp_path / name)
    cfg = base_config()
    cfg.data.name, cfg.data.path = "text", str(path)
    with pytest.raises(RnnlabError) as e:
        load_corpus(cfg.data)
    msg = str(e.value)
    assert DATA_CASES[name] in msg and str(path) in msg and "\n" not in msg, msg


def test_empty_data_path():
    cfg = base_config()
    cfg.data.name = "text"
    with pytest.raises(RnnlabError, match=r"^data.path is empty; data.name='text' needs a UTF-8 file"):
        load_corpus(cfg.data)


@pytest.mark.parametrize("field,value", [("train.batch_size", 5000), ("train.bptt", 200)])
def test_batch_or_bptt_too_large_for_the_split(field, value):
    cfg = base_config()
    cfg.data.name = "reber"
    cfg.data.num_train, cfg.data.num_valid, cfg.data.num_test = 4_000, 500, 500
    _set(cfg, field, value)
    with pytest.raises(RnnlabError) as e:
        prepare(cfg)
    B, T = cfg.train.batch_size, cfg.train.bptt
    assert str(e.value) == (f"train.batch_size={B} and train.bptt={T} are too large for the train split "
                            f"(4000 tokens); need batch_size * (bptt + 1) <= 4000")


def test_largest_batch_and_bptt_that_fit_are_accepted():
    """The bound is exact: batch_size * (bptt + 1) == tokens gives one window."""
    cfg = base_config()
    cfg.data.name = "reber"
    cfg.data.num_train, cfg.data.num_valid, cfg.data.num_test = 4_000, 500, 500
    cfg.model.hidden_size, cfg.model.num_layers = 8, 1
    cfg.train.batch_size, cfg.train.bptt = 40, 99
    assert prepare(cfg).steps_per_epoch == 1
