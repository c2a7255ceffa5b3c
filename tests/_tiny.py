"""A tiny run config shared by the resume and reliability tests (not a test module)."""
from rnnlab.config import base_config


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
