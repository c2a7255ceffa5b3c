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

With ``vmap_seeds=True`` the members that differ only in ``train.seed`` are trained as one
compiled program (``multiseed.train_seeds``), each still writing its own run directory.

Modules, in reading order: ``fields`` (dotted config fields), ``labels`` (member names),
``spec`` (load, check and expand get_sweep()), ``locks`` (one process per member), ``status``
(a member's state on disk), ``index`` (sweep.json, the table), ``runner`` (run_sweep, and
run_member for one member or vmapped seed group), ``wandb_export`` (the W&B sweep spec).
"""
from .fields import get_field, leaf_fields, set_field
from .index import INDEX_FILE, TABLE_COLUMNS, simple_table, summaries, table, write_index
from .labels import label, short_names, zip_labels
from .locks import LOCK_FILE
from .runner import run_member, run_sweep
from .spec import SEED_FIELD, SWEEP_KEYS, Member, check_sweep, cli_fields, error_line, expand, load_sweep
from .status import member_status, record_failure
from .wandb_export import wandb_sweep_spec, write_wandb_sweep

__all__ = [
    "INDEX_FILE", "LOCK_FILE", "SEED_FIELD", "SWEEP_KEYS", "TABLE_COLUMNS", "Member", "check_sweep", "cli_fields",
    "error_line", "expand", "get_field", "label", "leaf_fields", "load_sweep", "member_status", "record_failure",
    "run_member", "run_sweep", "set_field", "short_names", "simple_table", "summaries", "table", "wandb_sweep_spec",
    "write_index", "write_wandb_sweep", "zip_labels",
]
