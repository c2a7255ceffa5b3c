"""Training and evaluation throughput of the word-level LM, rnnlab against PyTorch and Flax, in one process.

The model everywhere: embedding -> L recurrent layers -> V-way softmax readout, trained with SGD and
global-norm gradient clipping on truncated-BPTT windows (the carry passes from one window to the
next). Implementations (``impl``):

- ``rnnlab``: ``train.make_train_step`` on ``model.LanguageModel``; mode ``tf`` (teacher forcing) and
  ``ss`` (``train.mode=scheduled_sampling`` at a constant eps, the same make_train_step);
- ``torch``: ``torch.nn.LSTM`` / ``GRU`` / ``RNN`` (cuDNN on a GPU, ATen/oneDNN on a CPU), mode tf;
- ``torch_loop``: a Python loop over ``LSTMCell`` / ``GRUCell`` / ``RNNCell`` with scheduled sampling
  (what a PyTorch user must write for SS: cuDNN cannot feed back samples), mode ss;
- ``flax``: flax.linen ``nn.RNN`` over ``OptimizedLSTMCell`` / ``GRUCell`` / ``SimpleCell``, mode tf;
- ``rnnlab_seeds``: the rnnlab tf step vmapped over ``seeds`` seeds in one program (the multi-seed
  runner's path), mode tf; ``tokens_per_sec`` counts the tokens of all seeds.

Timing: the step is compiled (jax: trace + lower + compile, timed as ``compile_s``) and run for
``warmup`` steps untimed; then ``repeats`` blocks of ``steps`` steps (lengthened until a block lasts
``min_block_s``; ``timed_steps`` in the record), each block ended by a device synchronisation
(``jax.block_until_ready`` / ``torch.cuda.synchronize``); ``step_ms`` is the median block time /
steps; ``tokens_per_sec = B * T / step``. Peak memory: for jax programs the compiled program's own
footprint (arguments + outputs - donated aliases + temporaries, from XLA's memory analysis), for
torch on a GPU the allocator's peak (``torch.cuda.max_memory_allocated``) over the row; None where
neither exists (torch on a CPU). For torch ``compile_s`` is the first step's extra time over a
steady step (cuDNN plans, allocator warm-up), as it has no compile.

Modules: ``plan`` (sizes, options, the rows to run), ``timing`` (median step, timed compile, peak
memory, step loops, the record), ``rnnlab_rows`` / ``flax_rows`` / ``torch_rows`` (one function per
implementation), ``tables`` (ratios, console lines, markdown, files), ``driver`` (run_benchmark,
environment), ``ab`` (an A/B comparison of two git revisions' benchmark files), ``length_rows``
(speed against sequence length: the parallel-in-time cells mingru, minlstm, output_to_hidden against
lstm, gru at T = 64 ... 4096; ``--lengths``).

Entry point: ``run_benchmark(...) -> list of records``; ``markdown(records, env)``; the CLIs are
``experiments/benchmark.py`` and ``experiments/ab_benchmark.py``.
"""
from .. import RnnlabError
from .driver import environment, run_benchmark
from .flax_rows import bench_flax
from .length_rows import (LENGTH_CELLS, LENGTHS, add_length_ratios, length_benchmark, length_plan, length_size,
                          markdown_lengths, parse_lengths, plot_lengths, run_length_benchmark, write_length_results)
from .plan import CELLS, IMPL_MODES, IMPLS, MODES, SIZES, Options, Size, parse_list, plan
from .rnnlab_rows import bench_rnnlab, rnnlab_config, ss_available
from .tables import add_ratios, headline, line, markdown, write_results
from .timing import batches, compile_timed, eval_timing, jax_peak, median_step, record, step_loop
from .torch_rows import bench_torch, torch_available

__all__ = ["CELLS", "IMPLS", "IMPL_MODES", "LENGTHS", "LENGTH_CELLS", "MODES", "SIZES", "Options", "RnnlabError", "Size",
           "add_length_ratios", "add_ratios", "length_benchmark", "length_plan", "length_size", "markdown_lengths",
           "parse_lengths", "plot_lengths", "run_length_benchmark", "write_length_results",
           "batches", "bench_flax", "bench_rnnlab", "bench_torch", "compile_timed", "environment", "eval_timing",
           "headline", "jax_peak", "line", "markdown", "median_step", "parse_list", "plan", "record",
           "rnnlab_config", "run_benchmark", "ss_available", "step_loop", "torch_available", "write_results"]
