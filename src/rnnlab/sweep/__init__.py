"""Studies: expand a config's ``get_sweep()`` into members and run them, one run directory each.

A study is a config file with ``get_config()`` and ``get_sweep()``::

    def get_sweep():
        return {"product": {"model.cell": ["rnn", "gru", "lstm"], "train.seed": [0, 1]},
                "zip": {"train.mode": ["teacher_forcing", "scheduled_sampling"],
                        "train.schedule.kind": ["constant", "inverse_sigmoid"]}}

Members = the grid product of the ``product`` lists x the tuples of the (equal-length) ``zip``
lists; both keys are optional; fields are dotted config paths. Each member is the base config
(with the command-line ``--config.a.b=value`` overrides already applied) plus its own overrides,
trained by ``train.train_and_evaluate`` in ``<workdir>/<name>``, the name made from its overrides
(``cell=gru,seed=1``). A command-line override of a swept field pins it: ``--config.train.seed=0``
runs only the seed-0 members (that is also how a W&B agent runs one member, see
``wandb_sweep_spec``).

Re-running a study skips finished members (summary.json status ``finished``), resumes unfinished
ones from their checkpoints and retries failed ones. A member that raises is recorded as failed
(summary.json with status ``failed`` and the one-line error, the traceback in ``error.txt``) and
the others go on. ``<workdir>/sweep.json`` indexes the members: name, overrides, status.

A random part (``random_search``) adds ``samples`` draws, reproducible from ``seed`` (numpy
``default_rng``), of distributions over more fields::

    {"product": {"model.cell": ["gru", "lstm"], "train.seed": [0, 1]},
     "random": {"train.lr": {"log_uniform": [1e-4, 1e-2]}, "model.dropout": {"uniform": [0.0, 0.5]}},
     "samples": 10, "seed": 0}

Distributions: ``log_uniform: [lo, hi]`` (0 < lo < hi), ``uniform: [lo, hi]``, ``int_uniform:
[lo, hi]`` (integers, both included), ``choice: [values]``. The rows are drawn once for the study
and each is crossed with every product/zip member (members = grid x samples, here 4 x 10), so model
selection compares the same values across cells and seeds. Names put the random fields last, their
values rounded to the fewest significant digits (>= 2) that keep the samples apart
(``cell=gru,seed=1,lr=0.00012,dropout=0.0083``); the rounded value is the member's value.
sweep.json records the drawn rows (``random_draws``) and each member's overrides; a re-run of the
same random part takes the rows from there. A pinned random field (``--config.train.lr=0.001``)
takes the command-line value in every row. Wrong specs (an unknown distribution, lo >= hi,
lo <= 0 for log_uniform, no or a non-positive ``samples``, a field that is not a config field or
is also in product or zip, an unknown top-level key) are one-line errors before anything trains.

With ``vmap_seeds=True`` the members that differ only in ``train.seed`` are trained as one
compiled program (``multiseed.train_seeds``), each still writing its own run directory.

Modules, in reading order: ``fields`` (dotted config fields), ``labels`` (member names),
``random_search`` (distributions and draws), ``spec`` (load, check and expand get_sweep()), ``locks`` (one process per member), ``status``
(a member's state on disk), ``index`` (sweep.json, the table), ``plan`` (plan_study and groups:
what every launcher does before it trains), ``runner`` (run_sweep, and run_member for one member
or vmapped seed group: also the SLURM array task, ``rnnlab.launch``), ``wandb_export`` (the W&B sweep spec: method
grid, or random with the matching W&B distributions and run_cap = grid x samples).
"""
from .fields import get_field, leaf_fields, set_field
from .index import INDEX_FILE, TABLE_COLUMNS, simple_table, stored_draws, summaries, table, write_index
from .labels import label, short_names, zip_labels
from .locks import LOCK_FILE
from .random_search import DISTRIBUTIONS, Dist, check_random, draw
from .runner import run_member, run_sweep
from .spec import SEED_FIELD, SWEEP_KEYS, Member, Study, check_sweep, cli_fields, error_line, expand, load_sweep
from .status import member_status, record_failure
from .wandb_export import WANDB_DISTRIBUTIONS, wandb_sweep_spec, write_wandb_sweep

__all__ = [
    "DISTRIBUTIONS", "INDEX_FILE", "LOCK_FILE", "SEED_FIELD", "SWEEP_KEYS", "TABLE_COLUMNS", "WANDB_DISTRIBUTIONS",
    "Dist", "Member", "Study", "check_random", "check_sweep", "cli_fields", "draw", "error_line", "expand",
    "get_field", "label", "leaf_fields", "load_sweep", "member_status", "record_failure", "run_member", "run_sweep",
    "set_field", "short_names", "simple_table", "stored_draws", "summaries", "table", "wandb_sweep_spec",
    "write_index", "write_wandb_sweep", "zip_labels",
]
