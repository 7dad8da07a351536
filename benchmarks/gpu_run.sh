#!/usr/bin/env bash
# One prepared device run: versions, the fit benchmark and a study timing. Uses the
# machine's preinstalled (CUDA) jax; mrjax itself comes from the working tree.
set -u
export PYTHONPATH="$PWD:${PYTHONPATH:-}"
OUT="${OUT:-benchmarks/results}"
mkdir -p "$OUT"
python -c "import jax, sys; print('jax', jax.__version__, jax.devices())" 2>&1 | tee "$OUT/versions.txt"
python -c "import flax, optax, numpyro, pandas; print('flax', flax.__version__, 'optax', optax.__version__, 'numpyro', numpyro.__version__)" 2>&1 | tee -a "$OUT/versions.txt"
nvidia-smi --query-gpu=name,memory.total --format=csv 2>&1 | tee -a "$OUT/versions.txt"
timeout 300 python benchmarks/bench_fit.py --sizes 100,1000,10000 --rf-max 0 --out "$OUT/bench_fit_gpu.json" 2>&1 | tail -8
timeout 200 python -m mrjax study --runs 200 --batch-size 100 --quiet --out "$OUT/study_gpu" 2>&1 | tail -12
