#!/usr/bin/env bash
# Rerun every study of studies/practice/ and rewrite its summary in studies/results/.
# Usage (from the repository root): bash studies/run_all.sh [NAME ...]   (default: all configs)
# Raw sweeps go to studies/runs/NAME (not committed); summaries to studies/results/NAME.{npz,json}.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
TF=${TRUNCFLOW:-.venv/bin/truncflow}
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for c in studies/practice/*.toml; do names+=("$(basename "$c" .toml)"); done
fi
for n in "${names[@]}"; do
  rm -rf "studies/runs/$n"
  start=$(date +%s)
  /usr/bin/env time -f "%U %S" -o "studies/runs.$n.time" \
    "$TF" sweep "studies/practice/$n.toml" --out "studies/runs/$n" --yes --no-progress
  cpu=$(awk '{print $1 + $2}' "studies/runs.$n.time"); rm -f "studies/runs.$n.time"
  "$PY" -c "import sys; from truncflow.practice import write_summary; \
write_summary(sys.argv[1], sys.argv[2], cpu_seconds=float(sys.argv[3]))" \
    "studies/runs/$n" "studies/results/$n" "$cpu"
  echo "$n: $cpu CPU-s, $(( $(date +%s) - start )) s wall"
done
