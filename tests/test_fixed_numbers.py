"""A refactor changes no number: small versions of the issue-10 reference runs, with the
``params_sha256`` and perplexities recorded on the commit before the seam refactor (45f4ebe,
jax 0.10.2 CPU) written in. Any change to what a run computes shows up here.

The full-size references (same commands as in the issue, recorded before and after the refactor):

    python -m experiments.train --config=configs/quickstart.py --workdir=W --config.model.cell=C --config.train.max_steps=300
    python -m experiments.train --config=configs/tf_vs_ss.py --workdir=W --config.model.cell=lstm \\
        --config.train.mode=scheduled_sampling --config.train.schedule.kind=inverse_sigmoid --config.train.max_steps=150
"""
import importlib.util
from pathlib import Path

import pytest

from rnnlab.train import train_and_evaluate

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _config(name: str):
    spec = importlib.util.spec_from_file_location(name, CONFIGS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    c = mod.get_config()
    c.train.progress = False
    c.wandb.mode = "disabled"
    return c


def quickstart_small(cell: str):
    c = _config("quickstart")
    c.model.cell = cell
    c.data.num_train, c.data.num_valid, c.data.num_test = 20_000, 2_000, 2_000
    c.train.max_steps = 40
    return c


def tf_vs_ss_small():
    c = _config("tf_vs_ss")
    c.model.cell = "lstm"
    c.train.mode, c.train.schedule.kind = "scheduled_sampling", "inverse_sigmoid"
    c.data.num_train, c.data.num_valid, c.data.num_test = 20_000, 2_000, 2_000
    c.data.oracle.entropy_tokens = 5_000
    c.eval.num_samples = 16
    c.train.max_steps = 20
    return c


# recorded on 45f4ebe (before the seam refactor): params_sha256, test_ppl
EXPECTED = {
    "quickstart_rnn": ("6212385b2fa776ed7bd896a8ff20ba15d1ee9dded2962a0437a3fdc1a24ec69e", 2.3333840120226053),
    "quickstart_gru": ("27dbe5130da138305c51c76ad609f1690ed9c32f5925b63d6da2eb01d2c9fd3c", 2.347299671573548),
    "quickstart_lstm": ("3c88e7eb603ffa06bf877f1fa2738d94931a371d5d9d14f9e6f27621ef4f43af", 3.271170000142077),
    "tf_vs_ss_lstm_ss": ("886fd636f44cc3e5dc352de5fc93ef7dd9a95b59196d687034dcfa134220e1a7", 16.51212684431882),
}
RUNS = {"quickstart_rnn": lambda: quickstart_small("rnn"), "quickstart_gru": lambda: quickstart_small("gru"),
        "quickstart_lstm": lambda: quickstart_small("lstm"), "tf_vs_ss_lstm_ss": tf_vs_ss_small}


@pytest.mark.parametrize("name", sorted(RUNS))
def test_same_numbers_as_before_the_refactor(name, tmp_path):
    s = train_and_evaluate(RUNS[name](), tmp_path / name)
    sha, ppl = EXPECTED[name]
    print(name, s["params_sha256"], repr(s["test_ppl"]))
    assert s["params_sha256"] == sha
    assert s["test_ppl"] == ppl


# ----------------------------------------------------------------------------- old checkpoints resume
OLD_RUN = Path(__file__).resolve().parent / "data" / "run_45f4ebe_step10"  # killed in step 13 by 45f4ebe's code
OLD_FULL = ("30e2f2e1cbd88fcc56649fafca56f17e55f0d8ff4e9e3e06e4b94cec1f41b28b", 5.471096780651042)  # 45f4ebe, uninterrupted


def old_tiny_config():
    """The config of tests/data/run_45f4ebe_step10 (tests/_tiny.py's tiny run, as 45f4ebe wrote it)."""
    from _tiny import tiny_config

    return tiny_config()


def test_checkpoint_written_before_the_refactor_resumes(tmp_path):
    """A run directory written by the code before the seam refactor (config.json without the fields
    added since, checkpoints at steps 5 and 10) resumes and ends where 45f4ebe's own uninterrupted
    run of the same config ended, bit for bit."""
    import shutil

    wd = tmp_path / "old"
    shutil.copytree(OLD_RUN, wd)
    s = train_and_evaluate(old_tiny_config(), wd)
    assert (s["params_sha256"], s["test_ppl"]) == OLD_FULL
