"""State tracking (Grazzi et al. 2025): running parity, running count mod 3 and running majority
with rnn, gru, lstm, mingru, minlstm and the output-to-hidden network, 3 seeds; trained on strings of
length 1-20, tested on 21-100. A linear recurrence whose transition is diagonal with eigenvalues in
[0, 1] (mingru, minlstm: h_t = a_t h_{t-1} + b_t, a_t in (0, 1)) cannot track parity; the nonlinear
cells can; the output-to-hidden net sees the previous label under teacher forcing and must feed its
own at test time (``test_acc`` free running, ``test_acc_tf`` teacher-forced).

    python -m experiments.sweep --config=configs/state_tracking.py --workdir=runs/state_tracking --vmap_seeds
    python -c "from rnnlab.report.state_tracking import state_tracking_table as t; print(t('runs/state_tracking'))"

Sized for a shared 2-core CPU: H = 32, 2,000 train strings, 6 epochs (378 Adam steps at a constant
lr; a tanh RNN needs 4-5 epochs to find parity), 400 test strings; 54 runs (18 vmapped groups of 3
seeds: 11.5 min on the 2-core CPU under a load of about 12). One run: ``python -m experiments.train
--config=configs/state_tracking.py --workdir=runs/st_lstm --config.model.cell=lstm``.
"""
from rnnlab.config import base_config

TASKS = ["running_parity", "running_count", "running_majority"]
CELLS = ["rnn", "gru", "lstm", "mingru", "minlstm", "output_to_hidden"]


def get_config():
    c = base_config()
    c.data.name = "running_parity"
    c.data.seed = 7
    tk = c.data.task
    tk.min_len, tk.max_len, tk.test_min_len, tk.test_max_len = 1, 20, 21, 100
    tk.num_train, tk.num_valid, tk.num_test = 2_000, 200, 400
    tk.modulus = 3  # running_count: the number of ones mod 3
    c.model.cell = "lstm"
    c.model.hidden_size = 32
    c.model.embed_size = 8
    c.model.num_layers = 1
    c.model.init = "pytorch"
    c.train.optimizer = "adam"
    c.train.lr = 0.01
    c.train.lr_hold_epochs = 6  # constant lr
    c.train.batch_size = 32
    c.train.bptt = 20  # the longest train string: one window per group of 32 strings
    c.train.epochs = 6
    c.train.clip_norm = 1.0
    c.train.log_every = 21
    c.train.progress = False
    c.eval.batch_size = 50
    c.checkpoint.every_steps = 0
    c.wandb.mode = "disabled"
    return c


def get_sweep():
    """3 tasks x 6 cells x 3 seeds (grid product): 54 runs."""
    return {"product": {"data.name": TASKS, "model.cell": CELLS, "train.seed": [0, 1, 2]}}
