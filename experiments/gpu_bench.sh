#!/bin/bash
# The GPU numbers of docs/benchmarks.md, on one GPU machine with jax[cuda], flax, optax, torch (cuDNN).
#   experiments/gpu_bench.sh bench OUT   # benchmark: all sizes, cells, implementations, both SS samplers, torch fp32 and
#                                        # fp16 (cuDNN's persistent kernels) (~12 min on an H100)
#   experiments/gpu_bench.sh bf16 OUT    # rnnlab teacher forcing with bf16 matmul operands, sizes M, L, W (~1.5 min)
#   experiments/gpu_bench.sh e2e OUT     # Zaremba medium end to end (39 epochs) + ptb_small fp32 vs bf16
# Results: OUT/benchmark*.json|md, OUT/summary_*.json (training run directories go to $TMPDIR).
set -euo pipefail
what=${1:-all}
out=$(realpath -m "${2:-runs/gpu}")
tmp=${TMPDIR:-/tmp}/rnnlab_gpu
mkdir -p "$out" "$tmp"
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
if [[ $what == bench || $what == all ]]; then
  python -m experiments.benchmark --sizes S,M,L,W --cells lstm,gru,rnn --unrolls 8 --steps 10 --repeats 3 --min_block 0.1 \
    --warmup 2 --samplers gumbel,inverse_cdf --torch_dtypes float32,float16 --out "$tmp/bench"
  cp "$tmp/bench/benchmark.json" "$out/benchmark.json"; cp "$tmp/bench/benchmark.md" "$out/benchmark.md"
fi
if [[ $what == bf16 || $what == all ]]; then
  python -m experiments.benchmark --sizes M,L,W --cells lstm,gru,rnn --impls rnnlab --modes tf --unrolls 8 \
    --dtypes bfloat16 --steps 10 --repeats 3 --min_block 0.1 --warmup 2 --out "$tmp/bench_bf16"
  cp "$tmp/bench_bf16/benchmark.json" "$out/benchmark_bf16.json"; cp "$tmp/bench_bf16/benchmark.md" "$out/benchmark_bf16.md"
fi
if [[ $what == e2e || $what == all ]]; then
  common=(--config.train.progress=False --config.wandb.mode=disabled)
  python -m experiments.train --config=configs/ptb_medium.py --workdir="$tmp/ptb_medium" "${common[@]}"
  cp "$tmp/ptb_medium/summary.json" "$out/summary_ptb_medium.json"
  for dt in float32 bfloat16; do
    python -m experiments.train --config=configs/ptb_small.py --workdir="$tmp/ptb_small_$dt" "${common[@]}" \
      --config.model.matmul_dtype=$dt
    cp "$tmp/ptb_small_$dt/summary.json" "$out/summary_ptb_small_$dt.json"
  done
fi
