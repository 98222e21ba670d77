#!/bin/bash
# Every family on full MNIST through the command line, 5 epochs each (batch 32, Adam 1e-3, seed 0), then its test
# metrics and its PSNR on masking-noise (p = 0.5) test inputs. One JSON line per measurement.
#   AECORE_DATA_DIR=../shared/data bench/zoo_cli.sh
set -euo pipefail
cd "$(dirname "$0")/.."
: "${AECORE_DATA_DIR:?set AECORE_DATA_DIR to a folder with the MNIST IDX files (../shared/data here)}"
export AECORE_RUNS_DIR="${AECORE_RUNS_DIR:-$(mktemp -d)}"
for spec in "stacked" "tied" "pca" "sparse-l1" "sparse-kl" "l2" "k-sparse" "neural-sparse-coding" "denoising" \
            "contractive" "conv" "conv --set decoder=unpool" "recurrent"; do
  start=$(date +%s)
  # shellcheck disable=SC2086
  run=$(python3 -m aecore train $spec --dataset mnist --epochs 5 2>/dev/null | tail -1)
  echo "{\"cmd\": \"train $spec --dataset mnist --epochs 5\", \"wall_s\": $(( $(date +%s) - start ))}"
  python3 -m aecore eval "$run" --noise masking --noise-level 0.5
done
