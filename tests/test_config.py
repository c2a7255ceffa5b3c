"""Configs: every field the project relies on exists; every configs/*.py loads and validates; the
Zaremba configs carry the paper's hyperparameters; validate() rejects bad values in one line."""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from rnnlab import RnnlabError
from rnnlab.config import base_config, validate

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # configs/ is a package at the repository root
    sys.path.insert(0, str(ROOT))
CONFIG_FILES = sorted(p.stem for p in (ROOT / "configs").glob("*.py") if not p.stem.startswith("_"))

REQUIRED = {  # field -> type (issue 2, "Config fields that later work and users rely on")
    "model.cell": str, "model.hidden_size": int, "model.num_layers": int, "model.dropout": float,
    "model.tie_weights": bool, "data.name": str, "data.dir": str, "data.level": str,
    "train.batch_size": int, "train.bptt": int, "train.epochs": int, "train.max_steps": int,
    "train.seed": int, "train.optimizer": str, "train.lr": float, "train.clip_norm": float,
}


def get(cfg, dotted):
    for part in dotted.split("."):
        cfg = cfg[part]
    return cfg


def load(stem):
    return importlib.import_module(f"configs.{stem}").get_config()


@pytest.mark.parametrize("field", sorted(REQUIRED))
def test_base_config_has_field(field):
    cfg = base_config()
    value = get(cfg, field)
    assert type(value) is REQUIRED[field], (field, value)


def test_base_config_validates_and_documents_every_field():
    cfg = base_config()
    validate(cfg)
    # every field is defined once, with a comment on its line (convention 9)
    src = (ROOT / "src" / "rnnlab" / "config.py").read_text()
    for section, sub in cfg.items():
        for name, value in sub.items():
            if hasattr(value, "items"):
                continue
            lines = [ln for ln in src.splitlines() if f".{name} = " in ln and "#" in ln]
            assert lines, f"{section}.{name} has no commented definition in config.py"


def test_config_files_found():
    assert {"quickstart", "ptb_small", "ptb_medium", "ptb_large", "ptb_char", "tinyshakespeare"} <= set(CONFIG_FILES)


@pytest.mark.parametrize("stem", CONFIG_FILES)
def test_config_file_loads_and_validates(stem):
    module = importlib.import_module(f"configs.{stem}")
    assert module.__doc__ and "python -m experiments." in module.__doc__  # the command it reproduces
    cfg = module.get_config()
    validate(cfg)
    base = base_config()
    for field in REQUIRED:  # the config keeps the base fields and their types
        assert type(get(cfg, field)) is type(get(base, field)), (stem, field)


ZAREMBA = {  # name: hidden, bptt, dropout, init, clip (TF units), epochs, hold, decay, paper test ppl
    "ptb_small": (200, 20, 0.0, 0.1, 5.0, 13, 4, 0.5, "114.5"),
    "ptb_medium": (650, 35, 0.5, 0.05, 5.0, 39, 6, 1 / 1.2, "82.7"),
    "ptb_large": (1500, 35, 0.65, 0.04, 10.0, 55, 14, 1 / 1.15, "78.4"),
}


@pytest.mark.parametrize("stem", sorted(ZAREMBA))
def test_zaremba_hyperparameters(stem):
    hidden, bptt, dropout, init, clip, epochs, hold, decay, ppl = ZAREMBA[stem]
    c = load(stem)
    assert c.data.name == "ptb" and c.model.cell == "lstm"
    assert (c.model.num_layers, c.model.hidden_size) == (2, hidden)
    assert c.model.embed_size in (0, hidden) and c.model.tie_weights is False
    assert c.train.bptt == bptt and c.train.batch_size == 20
    assert c.model.dropout == pytest.approx(dropout)
    assert c.model.init == "uniform" and c.model.init_scale == pytest.approx(init)
    assert c.train.optimizer == "sgd"
    # TF sums the loss over the bptt steps; with a per-token mean the same updates need lr x bptt, clip / bptt
    assert c.train.lr == pytest.approx(1.0 * bptt)
    assert c.train.clip_norm == pytest.approx(clip / bptt)
    assert c.train.epochs == epochs and c.train.lr_hold_epochs == hold
    assert c.train.lr_decay == pytest.approx(decay, rel=1e-12)
    assert c.train.max_steps == 0
    doc = importlib.import_module(f"configs.{stem}").__doc__
    assert ppl in doc  # the docstring says what it should reproduce


BAD = [  # field, bad value, words the message must contain
    ("model.cell", "transformer", ["model.cell", "'transformer'", "gru", "lstm", "rnn"]),
    ("data.name", "imagenet", ["data.name", "'imagenet'", "ptb", "reber"]),
    ("train.optimizer", "lion", ["train.optimizer", "'lion'", "sgd", "adam"]),
    ("model.init", "xavier", ["model.init", "'xavier'", "uniform", "pytorch"]),
    ("model.matmul_dtype", "float16", ["model.matmul_dtype", "'float16'", "bfloat16"]),
    ("data.level", "byte", ["data.level", "'byte'", "word", "char"]),
    ("model.hidden_size", 0, ["model.hidden_size", "0", "> 0"]),
    ("model.num_layers", -1, ["model.num_layers", "-1"]),
    ("train.batch_size", 0, ["train.batch_size", "0"]),
    ("train.bptt", 0, ["train.bptt", "0"]),
    ("train.epochs", 0, ["train.epochs", "0"]),
    ("train.max_steps", -5, ["train.max_steps", "-5", ">= 0"]),
    ("train.lr", -0.1, ["train.lr", "-0.1"]),
    ("train.clip_norm", -1.0, ["train.clip_norm", "-1.0"]),
    ("model.dropout", 1.0, ["model.dropout", "1.0", "[0, 1)"]),
    ("model.dropout", -0.2, ["model.dropout", "-0.2"]),
    ("train.lr_decay", 0.0, ["train.lr_decay", "0.0"]),
    ("train.lr_decay", 1.5, ["train.lr_decay", "1.5"]),
    ("eval.batch_size", 0, ["eval.batch_size", "0"]),
]


@pytest.mark.parametrize("field,value,words", BAD, ids=[f"{f}={v}" for f, v, _ in BAD])
def test_validate_rejects(field, value, words):
    cfg = base_config()
    section, name = field.split(".")
    cfg[section][name] = value
    with pytest.raises(RnnlabError) as e:
        validate(cfg)
    msg = str(e.value)
    assert "\n" not in msg and msg.strip() == msg and msg
    for w in words:
        assert w in msg, (w, msg)


def test_validate_rejects_tie_weights_with_other_embed_size():
    cfg = base_config()
    cfg.model.tie_weights = True
    cfg.model.hidden_size, cfg.model.embed_size = 200, 100
    with pytest.raises(RnnlabError) as e:
        validate(cfg)
    msg = str(e.value)
    assert "\n" not in msg and "tie_weights" in msg and "100" in msg and "200" in msg
    cfg.model.embed_size = 0  # 0 = hidden_size: fine
    validate(cfg)
    cfg.model.embed_size = 200
    validate(cfg)


def test_validate_accepts_edges():
    cfg = base_config()
    cfg.model.dropout = 0.0
    cfg.train.max_steps = 0
    cfg.train.clip_norm = 0.0  # 0 = no clipping
    cfg.train.lr_decay = 1.0  # constant lr
    cfg.train.lr_hold_epochs = 0
    for cell in ("rnn", "rnn_relu", "gru", "gru_cho", "lstm"):
        cfg.model.cell = cell
        validate(cfg)
