"""A tiny run config and the interruption helpers shared by the resume and reliability tests
(not a test module)."""
import pytest

import rnnlab.faults as faults
from rnnlab.config import base_config
from rnnlab.train import train_and_evaluate


def tiny_config(**over):
    """Reber, 24 steps per epoch x 2 epochs; checkpoint every 5 steps (keep 2), log every 4."""
    c = base_config()
    c.data.name = "reber"
    c.data.num_train, c.data.num_valid, c.data.num_test = 4_000, 600, 600
    c.model.cell, c.model.hidden_size, c.model.embed_size, c.model.num_layers = "lstm", 12, 6, 1
    c.train.optimizer, c.train.lr, c.train.lr_hold_epochs = "adam", 0.01, 1
    c.train.batch_size, c.train.bptt, c.train.epochs = 16, 10, 2
    c.train.log_every, c.train.progress = 4, False
    c.checkpoint.every_steps, c.checkpoint.keep = 5, 2
    c.eval.batch_size = 4
    if "free_running" in c.eval:
        c.eval.free_running = False
    c.wandb.mode = "disabled"
    for k, v in over.items():
        sec, name = k.split(".")
        c[sec][name] = v
    return c


class Stop(Exception):
    """Stands for a kill: raised inside the loop at a chosen point."""


def stop_at(monkeypatch, point: str, n: int):
    """Make the training loop raise Stop the n-th time it passes ``point`` (step / eval)."""
    count = {"k": 0}

    def hook(name):
        if name == point:
            count["k"] += 1
            if count["k"] == n:
                raise Stop(f"{point}:{n}")

    monkeypatch.setattr(faults, "kill_point", hook)


def interrupted_run(monkeypatch, wd, point, n, cfg=None):
    stop_at(monkeypatch, point, n)
    with pytest.raises(Stop):
        train_and_evaluate(cfg or tiny_config(), wd)
    monkeypatch.setattr(faults, "kill_point", lambda name: None)
