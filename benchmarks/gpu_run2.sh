#!/usr/bin/env bash
# Second device run: robustness across sizes and study scaling in runs.
set -u
export PYTHONPATH="$PWD:${PYTHONPATH:-}"
OUT="${OUT:-benchmarks/results}"
mkdir -p "$OUT"
timeout 330 python benchmarks/bench_sizes.py --sizes 100,1000,10000 --runs 20 --batch-size 10 --out "$OUT/bench_sizes_gpu.json" 2>&1 | tail -24
for R in 1000 4000; do timeout 100 python -m mrjax study --runs $R --batch-size 500 --quiet --out "$OUT/study_$R" 2>&1 | head -1; done
