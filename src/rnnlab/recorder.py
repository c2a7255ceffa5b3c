"""The host side of one run directory while it trains: checkpoints, loggers, validation and the
final summary."""
from __future__ import annotations

import math
import time
from pathlib import Path

import jax
import jax.numpy as jnp

from . import faults
from .checkpoint import Checkpointer
from .config import to_dict
from .keys import split_keys
from .free_running import free_running_metrics, log_items
from .model import count_params
from .seq2seq.professor import disc_log
from .rundir import environment, params_sha256
from .tracking import make_loggers


class RunRecorder:
    """The host side of one run directory while it trains: checkpoints, the loggers and ``meta``
    (best validation perplexity, history, running metric sums, time); ``finish`` writes summary.json.
    ``train_loop`` drives one recorder per run in the program (several when seeds are vmapped)."""

    def __init__(self, cfg, workdir, setup, *, run_name: str, config_file: str = "", t_start: float):
        self.cfg, self.workdir, self.setup = cfg, Path(workdir), setup
        self.run_name, self.config_file, self.t_start = run_name, config_file, t_start
        self.ckpt = Checkpointer(self.workdir, cfg.checkpoint.keep, config=to_dict(cfg))  # config in each checkpoint
        self.sel = setup.kind.selection  # the validation metric that picks the best checkpoint: ppl | nll
        self.meta = {f"best_val_{self.sel}": math.inf, "history": [], "acc": None, "train_time": 0.0,
                     "train_tokens": 0, "wall_s": 0.0, "compile_s": 0.0}
        self.resume_step = None
        self.wall_prev = 0.0  # time spent by earlier (interrupted) processes of this run
        self.logger = None
        self.diverged: str | None = None  # the message, once the run has diverged (faults.py)
        self.diverged_step: int | None = None

    def start(self, state):
        """Restore the latest checkpoint if there is one (-> the state to continue from) and open the loggers."""
        restored = self.ckpt.resume(state)  # the newest usable checkpoint (falls back past damaged ones)
        if restored is not None:
            state, self.meta, _ = restored
            state = jax.tree_util.tree_map(jnp.asarray, state)
            self.resume_step = int(state.step)
            # metrics.jsonl as it was at that checkpoint: later lines (and a torn one) are logged again
            faults.truncate_file(self.workdir / "metrics.jsonl", self.meta.get("metrics_bytes"))
        self.wall_prev = self.meta["wall_s"]
        self.logger = make_loggers(self.cfg, self.workdir, total_steps=self.setup.total_steps,
                                   resume_step=self.resume_step, run_name=self.run_name)
        return state

    def wall(self, now: float | None = None) -> float:
        """Seconds since the run began, over all its processes."""
        return self.wall_prev + ((time.perf_counter() if now is None else now) - self.t_start)

    def log_train(self, step: int, a: dict, dt: float, tokens: int, now: float) -> None:
        """Log the train metrics summed over the last log window (``a``: host floats)."""
        tps = tokens / dt if dt > 0 and tokens else 0.0
        self.meta["train_time"] += dt
        self.meta["train_tokens"] += tokens
        n = a["steps"]  # applied updates in the window (skipped ones are left out of the sums)
        loss = a["nll_sum"] / a["count"] if a["count"] else math.nan
        rec = {"epoch": step / self.setup.steps_per_epoch, "train/loss": loss,
               "train/ppl": math.exp(min(loss, 700)),
               "train/grad_norm": a["grad_norm_sum"] / n if n else math.nan, "train/eps": a["eps"] / n if n else math.nan,
               "train/lr": float(self.setup.lr_fn(step - 1)), "train/tokens_per_sec": tps,
               "wall_s": self.wall(now)}
        if a.get("fed_count"):  # fraction of fed inputs that were gold (scheduled sampling: about eps)
            rec["train/gold_frac"] = a["gold_fed"] / a["fed_count"]
        if a.get("disc_count"):  # professor forcing: the discriminator's loss, accuracy and gates (professor.py)
            rec.update(disc_log(a))
        if self.cfg.train.get("skip_nonfinite", False):
            rec["train/skipped"] = a.get("skipped", 0.0)
            self.meta["skipped"] = self.meta.get("skipped", 0.0) + a.get("skipped", 0.0)
        self.logger.log(step, rec)

    def validate(self, step: int, params) -> bool:
        """Validation metrics now (perplexity, or NLL per frame: the kind's ``selection``); logs them and
        returns whether the selection metric improved on the best so far."""
        s, sel = self.setup, self.sel
        faults.kill_point("eval")
        v = s.evaluate(self.cfg, params, "valid")
        epoch = step / s.steps_per_epoch
        best = f"best_val_{sel}"
        improved = v[sel] < self.meta[best]
        if improved:
            self.meta[best] = v[sel]
        self.meta["since_best"] = 0 if improved else self.meta.get("since_best", 0) + 1
        if self.stopped:
            self.meta["stopped_step"] = step
        self.meta["history"].append({"step": step, "epoch": epoch, f"val_{sel}": v[sel]})
        rec = {"epoch": epoch, "val/loss": v["loss"], f"val/{sel}": v[sel], f"val/best_{sel}": self.meta[best],
               "wall_s": self.wall()}  # seconds since the run began (plots)
        rec.update({f"val/{k}": x for k, x in v.items() if k not in ("nll_sum", "count", "loss", sel)})
        self.logger.log(step, rec)
        return improved

    @property
    def stopped(self) -> bool:
        """Early stopping (``train.early_stop_patience`` > 0): that many validations in a row without
        improvement; the loop trains this run no further."""
        patience = int(self.cfg.train.get("early_stop_patience", 0))
        return patience > 0 and self.meta.get("since_best", 0) >= patience

    def best_params(self):
        """The parameters of the best checkpoint (by validation), for the final evaluation with early stopping."""
        from .runs import find_checkpoint, restore_params

        which, step = find_checkpoint(self.workdir, "best")
        return jax.tree_util.tree_map(jnp.asarray, restore_params(self.workdir, which, step)), step

    def save(self, step: int, state, acc: dict | None, best: bool) -> None:
        """Checkpoint ``state`` (this run's, unbatched) with the host loop state."""
        self.meta["acc"] = acc
        self.meta["wall_s"] = self.wall()
        self.meta["metrics_bytes"] = faults.file_size(self.workdir / "metrics.jsonl")  # cut back to this on resume
        self.ckpt.save(step, state, self.meta, best=best)

    def diverge(self, step: int, message: str) -> None:
        """The run hit a non-finite loss or gradient: summary.json gets status diverged (the step, the
        message, the last good checkpoint); nothing more is logged, evaluated or saved for it."""
        self.diverged, self.diverged_step = message, step
        cfg = self.cfg
        self.logger.summary({
            "status": "diverged", "error": message, "diverged_step": step,
            "last_checkpoint_step": self.ckpt.latest_complete_step(), "run_name": self.run_name,
            "config_file": self.config_file, "cell": cfg.model.cell, "train_mode": cfg.train.mode,
            "seed": cfg.train.seed, "data": cfg.data.name, "hidden_size": cfg.model.hidden_size,
            "num_layers": cfg.model.num_layers, "steps_per_epoch": self.setup.steps_per_epoch,
            "skipped_steps": int(self.meta.get("skipped", 0)), "wall_s": self.wall(), **environment()})

    def finish(self, step: int, params) -> dict:
        """Final valid/test perplexity; writes summary.json (status finished) and returns it."""
        self.logger.status("final evaluation")
        faults.kill_point("final")  # fault injection (faults.py)
        s, cfg, meta, sel = self.setup, self.cfg, self.meta, self.sel
        level = s.corpus.level
        best_step = None
        if int(cfg.train.get("early_stop_patience", 0)) > 0:  # the best checkpoint is the one evaluated
            params, best_step = self.best_params()
            step = meta.get("stopped_step", step)
        metrics = {split: s.evaluate(cfg, params, split) for split in s.kind.final_splits}
        val, test = metrics["valid"], metrics["test"]
        env = environment()
        summary = {
            "status": "finished", "run_name": self.run_name, "config_file": self.config_file,
            "cell": cfg.model.cell, "train_mode": cfg.train.mode, "seed": cfg.train.seed,
            "data": cfg.data.name, "level": level, "hidden_size": cfg.model.hidden_size,
            "num_layers": cfg.model.num_layers, "num_params": count_params(params),
            **s.kind.summary(metrics, s.corpus), f"best_val_{sel}": min(meta[f"best_val_{sel}"], val[sel]),
            "steps": step, "epochs": step / s.steps_per_epoch, "steps_per_epoch": s.steps_per_epoch,
            "tokens_per_sec": meta["train_tokens"] / meta["train_time"] if meta["train_time"] else 0.0,
            "compile_s": meta["compile_s"], "wall_s": self.wall(),
            "params_sha256": params_sha256(params), "val_history": meta["history"], **env,
        }
        if best_step is not None:
            summary["evaluated_step"] = best_step  # early stopping: the best checkpoint's step
            summary["early_stopped"] = "stopped_step" in meta
        if cfg.train.get("skip_nonfinite", False):
            summary["skipped_steps"] = int(meta.get("skipped", 0))
        for k, v in s.corpus.meta.items():  # the corpus' facts; its "seed" (data.seed) must not hide train.seed
            summary[k if k not in summary else f"data_{k}"] = v
        if cfg.eval.get("free_running", False):  # nll_test, nll_oracle, exposure_gap, ... (free_running.py)
            free = free_running_metrics(s.model, params, s.corpus, cfg, split_keys(cfg.train.seed)["eval"], test=test)
            summary.update(free)
            self.logger.log(step, log_items(free))
        self.logger.log(step, {"test/loss": test["loss"], f"test/{sel}": test[sel],
                               **{f"test/{k}": x for k, x in test.items() if k not in ("nll_sum", "count", "loss", sel)}})
        self.logger.summary(summary)
        return summary

    def close(self) -> None:
        if self.logger is not None:
            self.logger.close()
        self.ckpt.close()

