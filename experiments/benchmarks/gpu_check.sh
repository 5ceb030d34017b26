#!/usr/bin/env bash
# The prepared GPU check of issue 13: every speed figure of sampling, training, simulation and multi-process
# rollouts, each printed next to its reference, in under 8 minutes on one GPU.
#
#   bash experiments/benchmarks/gpu_check.sh                 # on a GPU machine (cuda, paper sizes)
#   bash experiments/benchmarks/gpu_check.sh --device cpu    # smoke check on a CPU: tiny sizes, same code paths
#
# References printed with the figures:
#   sampling:   the fp32 eager sampler of the same run, and the paper's 18.5 s per 1000 denoiser iterations at
#               128x128 (Titan RTX); the issue's target is < 1.85 s (10x the paper) at batch 1
#   training:   the bare step (forward, backward, Adam on one fixed batch, in the Trainer's precision and memory
#               format) of the same run; the target is a ratio of at least 0.95
#   simulation: the bare lbmpy kernel loop of the same run, one channel per lattice against channels stacked in
#               one lattice, and for --target gpu the 2-core CPU's 280 MLUPS (measured for the issue) -- the
#               target is 10x that
#   rollouts:   a single-process rollout with the same seed (the sharded file must be identical)
# Each section runs on its own with a time limit; a failing or stopped section is reported and the next one runs.
# The sampling target and the GPU tests come first, compiled training last. Exit status: the number of failed
# sections.
set -u
cd "$(dirname "$0")/../.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

DEVICE=cuda
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE="$2"; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument $1 (use --device cpu|cuda)" >&2; exit 2 ;;
  esac
done

if [ "$DEVICE" = cpu ]; then
  SAMPLING=(--config tiny --size 32 --iters 3 --device cpu --variants fp32 bf16)
  SAMPLING_BATCH=()
  SAMPLING_COMPILE=()
  TRAIN=(--configs tiny --size 32 --steps 2 --device cpu --variants default channels_last)
  TRAIN_COMPILE=()
  SIM=(--frames 12 --size 48 --every 32 --runs 2 --target cpu)  # 3-cell cylinder: resolved at Re 200
  FRAME_COST=(--frames 32 --repeats 1 --size 32 --every 32 --members 2 --inflow-noise 0.05 --target cpu)
  LATTICE_BATCH=(--members 4 --size 48 --steps 64 --repeats 1 --target cpu)
  SIM_BATCH=(--reynolds 150 150 150 150 --batch-runs 4 --frames 8 --test-frames 4 --size 48 --every 32 --target cpu)
  NPROC=2
else
  SAMPLING=(--config paper_128 --size 128 --iters 50 --device "$DEVICE"
            --variants fp32 bf16 cudagraph bf16+cudagraph bf16+cudagraph+channels_last)
  SAMPLING_BATCH=(--config paper_128 --size 128 --batch 16 --iters 20 --device "$DEVICE" --variants fp32 bf16+cudagraph)
  SAMPLING_COMPILE=(--config paper_128 --size 128 --iters 50 --device "$DEVICE"
                    --variants fp32 bf16+compile bf16+compile+channels_last)
  # 8 timed steps (5 gave ratios of 0.92-1.05 that did not separate the Trainer from noise)
  TRAIN=(--configs paper_64 paper_128 --size 64 128 --steps 8 --device "$DEVICE" --variants default channels_last)
  TRAIN_COMPILE=(--configs paper_64 --size 64 --steps 5 --device "$DEVICE" --variants compile)
  SIM=(--frames 100 --size 128 --runs 2 --target gpu)
  FRAME_COST=(--frames 32 --repeats 1 --size 128 --members 16 --inflow-noise 0.05 --target gpu)
  LATTICE_BATCH=(--members 16 --size 128 --steps 1024 --repeats 2 --target gpu)
  SIM_BATCH=(--reynolds $(printf '150 %.0s' $(seq 16)) --batch-runs 16 --frames 80 --test-frames 20 --size 128
             --inflow-noise 0.05 --target gpu)
  NPROC=2
fi

FAILED=0
section() {  # section TITLE LIMIT_S COMMAND...: run (stopped after LIMIT_S seconds), time, report
  local title="$1" limit="$2"; shift 2
  echo; echo "=== $title"; echo "\$ $*"
  local start=$SECONDS status
  timeout "$limit" "$@"; status=$?
  if [ $status -eq 0 ]; then echo "--- $title: ok ($((SECONDS - start)) s)"
  else
    [ $status -eq 124 ] && echo "(stopped after its limit of $limit s)"
    echo "--- $title: FAILED ($((SECONDS - start)) s)"; FAILED=$((FAILED + 1))
  fi
}
SCRATCH=$(mktemp -d); trap 'rm -rf "$SCRATCH"' EXIT

# most important first, so that a run cut short by its time limit still reports what matters: the sampling
# target (eager, captured, compiled), the GPU tests (captured samples, the simulator's GPU path, its Strouhal
# number), training, where a simulated frame's time goes, then the remaining figures
section "environment" 60 python -c "import torch; print('torch', torch.__version__, '| cuda', torch.cuda.is_available(),
  '|', torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU', '| threads', torch.get_num_threads())"
section "sampling, batch 1 (reference: fp32 eager; paper 18.5 s / 1000 iterations)" 150 \
  python experiments/benchmarks/denoiser_speed.py "${SAMPLING[@]}"
if [ "$DEVICE" != cpu ]; then
  section "sampling, batch 1, compiled (torch.compile reduce-overhead)" 200 \
    python experiments/benchmarks/denoiser_speed.py "${SAMPLING_COMPILE[@]}"
  section "GPU tests (captured sampling vs eager, CUDA rollouts, GPU lattice and Strouhal number)" 240 \
    python -m pytest -q -s -p no:cacheprovider -m gpu $(grep -l "mark.gpu" tests/*.py)
fi
section "training (reference: the bare step in the same precision and memory format)" 150 \
  python experiments/benchmarks/bench_train.py "${TRAIN[@]}"
section "simulation, what each stage of a frame costs (reference: the bare kernel loop)" 90 \
  python experiments/benchmarks/karman_frame_cost.py "${FRAME_COST[@]}"
section "simulation, runs batched through the CLI (reference: CPU 280 MLUPS)" 150 \
  python -m forecast simulate karman "$SCRATCH/batched.zarr" "${SIM_BATCH[@]}" --no-progress
section "simulation, channels stacked in one lattice (reference: one channel per lattice)" 90 \
  python experiments/benchmarks/karman_batch.py "${LATTICE_BATCH[@]}"
section "simulation, one lattice per run (reference: the bare kernel loop; CPU 280 MLUPS for --target gpu)" 120 \
  python experiments/benchmarks/karman_throughput.py "${SIM[@]}"
if [ ${#SAMPLING_BATCH[@]} -gt 0 ]; then
  section "sampling, batch 16" 90 python experiments/benchmarks/denoiser_speed.py "${SAMPLING_BATCH[@]}"
fi
section "rollouts across $NPROC processes (reference: one process, same seed)" 150 \
  python experiments/benchmarks/sharded_rollout_check.py --nproc "$NPROC" --device "$DEVICE"
if [ "$DEVICE" != cpu ]; then
  section "training, compiled" 200 python experiments/benchmarks/bench_train.py "${TRAIN_COMPILE[@]}"
fi

echo; echo "gpu_check.sh: $FAILED section(s) failed"
exit "$FAILED"
