#!/usr/bin/env bash
# Fourth device run, on the current code: the default, 10,000-run and real-data studies, the fit
# benchmark, the whole-pipeline bootstrap at 100/3,900 and 1k/39k, and the study and metric tests
# on the GPU backend. Uses the machine's preinstalled (CUDA) jax; mrjax comes from the working tree.
set -u
export PYTHONPATH="$PWD:${PYTHONPATH:-}"
OUT="${OUT:-benchmarks/results}"
mkdir -p "$OUT"
DATA=../shared/data/routellm-evals
[ -d "$DATA" ] || DATA=shared/data/routellm-evals
{
  python -c "import jax; print('jax', jax.__version__, jax.devices())"
  python -c "import flax, optax, numpyro, pandas; print('flax', flax.__version__, 'optax', optax.__version__, 'numpyro', numpyro.__version__, 'pandas', pandas.__version__)"
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
  echo "data: $DATA"; ls "$DATA" | head -3
} 2>&1 | tee "$OUT/versions.txt"
# step NAME LINES CMD...: CMD's output goes whole to $OUT/NAME.log; its last LINES lines and the wall time are shown.
step() { local name=$1 n=$2; shift 2; echo "== $name: $*"; local t0=$SECONDS
  "$@" > "$OUT/$name.log" 2>&1; echo "   rc=$? [$((SECONDS - t0)) s wall]"; tail -n "$n" "$OUT/$name.log"; }
step study_200 14 timeout 90 python -m mrjax study --runs 200 --batch-size 100 --quiet --out "$OUT/study_gpu"
step study_200_b50 2 timeout 90 python -m mrjax study --runs 200 --quiet --out "$OUT/study_gpu_b50"
step study_10000 2 timeout 90 python -m mrjax study --runs 10000 --batch-size 500 --quiet --out "$OUT/study_10000"
for D in routellm-mmlu routellm-gsm8k; do
  step study_$D 12 timeout 90 python -m mrjax study --data $D --data-dir "$DATA" --runs 200 --batch-size 100 --quiet --out "$OUT/study_$D"
done
rm -f "$OUT"/study_*/curves.csv
step bench_fit 9 timeout 150 python benchmarks/bench_fit.py --sizes 100,1000,10000 --rf-max 0 --out "$OUT/bench_fit_gpu.json"
step bench_bootstrap 4 timeout 100 python benchmarks/bench_bootstrap.py --replicates 1000 --econml-replicates 0 --out "$OUT/bench_bootstrap_gpu.json"
step bench_bootstrap_1k 4 timeout 100 python benchmarks/bench_bootstrap.py --replicates 200 --n-gold 1000 --n-preference 39000 --econml-replicates 0 --out "$OUT/bench_bootstrap_1k_gpu.json"
if python -c "import pytest" 2>/dev/null; then
  step pytest 6 timeout 120 python -m pytest -q -x -p no:cacheprovider tests/test_study.py tests/test_metrics.py
else
  echo "pytest not installed on the device: tests not run"
fi

