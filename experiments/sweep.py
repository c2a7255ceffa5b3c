"""Run a study: every member of a config's get_sweep(), one run directory each, then the table.

    python -m experiments.sweep --config=configs/quickstart.py --workdir=runs/quickstart [--config.a.b=value ...]
        [--vmap_seeds] [--wandb_sweep=sweep.yaml]
        [--launcher=slurm [--slurm.partition=P --slurm.gpus_per_task=N --slurm.cpus_per_task=N --slurm.time=MIN
                           --slurm.mem=GB --slurm.array_parallelism=N] [--wait]]

get_sweep() may cross its grid with random draws ('random', 'samples', 'seed'; README, Sweeps).
Re-running skips finished members, resumes unfinished ones and retries failed ones. --vmap_seeds
trains the seeds of each configuration as one program. --wandb_sweep=FILE only writes a W&B sweep
spec for `wandb sweep FILE` + `wandb agent` (README, Sweeps) and trains nothing. --launcher=slurm
submits the members (those neither finished nor running nor queued) as one SLURM job array through
submitit, prints the job ids and, with --wait, waits and prints the table (README, Many machines).
"""
import sys

from absl import flags
from ml_collections import config_flags

from rnnlab.cli import main_wrapper, parse_flags
from rnnlab.launch.slurm import OPTIONS, slurm_options

config_flags.DEFINE_config_file("config", None, "study config file (python, get_config() and get_sweep())",
                                lock_config=True)
flags.DEFINE_string("workdir", None, "study directory: one run directory per member inside")
flags.DEFINE_bool("vmap_seeds", False, "train the seeds of each configuration as one vmapped program")
flags.DEFINE_string("wandb_sweep", None, "write a W&B sweep spec (YAML) to this file and exit")
flags.DEFINE_string("zip", None, "run only the zipped tuple with this label (what a W&B agent passes)")
flags.DEFINE_enum("launcher", "local", ["local", "slurm"], "local: train here, one member after the other; "
                  "slurm: submit a SLURM job array (submitit), one task per member or vmapped seed group")
for _name, (_default, _help) in OPTIONS.items():  # --slurm.partition=P, --slurm.time=MIN, ... (rnnlab.launch.slurm)
    (flags.DEFINE_string if isinstance(_default, str) else flags.DEFINE_integer)(f"slurm.{_name}", _default, _help)
flags.DEFINE_bool("wait", False, "--launcher=slurm: wait for the jobs, then print the table")
FLAGS = flags.FLAGS


def main():
    parse_flags()
    from rnnlab import sweep
    from rnnlab.cli import die

    if FLAGS.config is None or not FLAGS.workdir:
        die("both --config=configs/<name>.py and --workdir=DIR are required")
    config_file = config_flags.get_config_filename(FLAGS["config"])
    study = sweep.load_sweep(config_file)
    pinned = sweep.cli_fields(sys.argv[1:])
    if FLAGS.wandb_sweep:
        spec = sweep.wandb_sweep_spec(FLAGS.config, study, config_file=config_file, workdir=FLAGS.workdir,
                                      pinned=pinned, zip_choice=FLAGS.zip)
        sweep.write_wandb_sweep(FLAGS.wandb_sweep, spec)
        print(f"wrote {FLAGS.wandb_sweep}; then: wandb sweep {FLAGS.wandb_sweep} && wandb agent <entity/project/id>")
        return 0
    if FLAGS.launcher == "slurm":
        from rnnlab.launch import launch

        options = slurm_options(**{k: FLAGS[f"slurm.{k}"].value for k in OPTIONS})
        index = launch(FLAGS.config, FLAGS.workdir, study, options=options, wait=FLAGS.wait, config_file=config_file,
                       pinned=pinned, zip_choice=FLAGS.zip, vmap_seeds=FLAGS.vmap_seeds)
        if index is None:  # submitted, not waited for
            return 0
    else:
        index = sweep.run_sweep(FLAGS.config, FLAGS.workdir, study, config_file=config_file, pinned=pinned,
                                zip_choice=FLAGS.zip, vmap_seeds=FLAGS.vmap_seeds)
    print(sweep.table(FLAGS.workdir, index))
    mine = [m for m in index["members"] if m["name"] in index["selected"]]
    elsewhere = [m["name"] for m in mine if m["status"] == "running"]
    if elsewhere:
        print(f"still being trained by another process: {', '.join(elsewhere)}", file=sys.stderr)
    failed = [m["name"] for m in mine if m["status"] not in ("finished", "running")]
    if failed:
        die(f"{len(failed)} of {len(index['selected'])} members did not finish: {', '.join(failed)} "
            f"(errors in their summary.json; re-run the command to retry)", 1)
    return 0


if __name__ == "__main__":
    sys.exit(main_wrapper(main))
