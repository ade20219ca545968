#!/usr/bin/env bash
# The long CPU work, in order, each unit resumable on any machine (fixed step counts; finished runs are
# committed under docs/ and skipped by --resume): the v2 fine-tunes of posebridge-small (issue 24), then
# the seed paper's studies (issue 20): the four backbone rows' seeds, the loss ablation (with alpha 1),
# then ResNet-50 at 64 px (seed 0). Touch runs/PAUSE to hold training before its next step (timing runs).
#   nohup bash scripts/long_runs.sh > runs/long_runs.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p runs
study() {
    echo "== $(date -u +%FT%TZ) training.study $* (load: $(cut -d' ' -f1-3 /proc/loadavg))"
    OMP_WAIT_POLICY=PASSIVE .venv/bin/python -m training.study --resume --pause-file runs/PAUSE "$@"
}
study --config training/configs/v2_finetunes.toml
study --config training/configs/study_backbones.toml --only resnet18,alexnet,model1,lenet
study --config training/configs/study_losses.toml
study --config training/configs/study_backbones.toml --only resnet50 --seeds 0
echo "== $(date -u +%FT%TZ) done"
