#!/usr/bin/env bash
# Third device run: 200-run real-data studies and a 10,000-run default study.
set -u
export PYTHONPATH="$PWD:${PYTHONPATH:-}"
OUT="${OUT:-benchmarks/results}"
mkdir -p "$OUT"
for D in routellm-mmlu routellm-gsm8k; do
  timeout 200 python -m mrjax study --data $D --data-dir ../shared/data/routellm-evals --runs 200 --batch-size 100 --quiet --out "$OUT/study_$D" 2>&1 | head -11
done
timeout 150 python -m mrjax study --runs 10000 --batch-size 500 --quiet --out "$OUT/study_10000" 2>&1 | head -1
rm -f "$OUT"/study_*/curves.csv
