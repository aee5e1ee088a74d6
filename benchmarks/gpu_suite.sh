#!/usr/bin/env bash
# golf's performance numbers on one lent GPU (H100 / H200), in at most 8 minutes, all written under OUT_DIR.
#
#   bash benchmarks/gpu_suite.sh OUT_DIR          # on the GPU machine, from the repo root
#   bash benchmarks/gpu_suite.sh --cpu OUT_DIR    # the same steps at toy size on a CPU (CI runs it)
#
# Steps, in priority order, each under its own timeout: the demo data; golf vs the official script on the
# baseline, model level (benchmarks.peer) and whole scripts (CUDA only); training throughput of baseline and
# recur_parallel (tok/s, MFU, peak memory, compiled vs eager: benchmarks.throughput); eval and score-first TTT,
# compiled and eager, and PR #2135's phased LoRA TTT with the n-gram tilt, extrapolated to the official val set
# on 8 GPUs (benchmarks.eval_ttt); then throughput of
# every other full-size preset while time is left. A deadline for the whole suite (GOLF_SUITE_BUDGET_S: 450 s
# on a GPU, 150 s with --cpu) caps each step's timeout, so one hang costs only its own step; a step the
# deadline leaves no time for is reported as skipped. The GPU mode refuses to start without CUDA.
# torch.compile's cache (inductor's default folder) is shared by the steps: a model compiled once compiles
# again from it.
#
# Output: OUT_DIR/results/<bench>.{jsonl,md} (the rows, each naming its device), OUT_DIR/logs/<step>.log,
# OUT_DIR/summary.md (the device, each step's status and seconds, then every row), and OUT_DIR/suite.tar.gz
# holding all of it. Exit status 0 when every step ran or was skipped by design (no CUDA for the whole scripts,
# no reference script), 1 when a step failed, timed out or found no time left, 2 when the suite could not start.
# The official train_gpt.py: $GOLF_REFERENCE, else .reference/train_gpt.py (gitignored: copy it there before a
# device run, which carries only the repo), else shared/reference/train_gpt.py beside the checkout. Python: $PYTHON or python3;
# wheels in .whl/ (hydra-core, omegaconf, antlr4 for a machine without them) are installed to a temp dir first.
set -u

cpu_mode=0
if [ "${1:-}" = "--cpu" ]; then cpu_mode=1; shift; fi
if [ $# -ne 1 ]; then
    echo "usage: bash benchmarks/gpu_suite.sh [--cpu] OUT_DIR" >&2
    exit 2
fi
repo=$(cd "$(dirname "$0")/.." && pwd)
out=$(mkdir -p "$1" && cd "$1" && pwd)
mkdir -p "$out/logs" "$out/results"
cd "$repo" || exit 2
py=${PYTHON:-python3}
export GOLF_BENCH_RESULTS="$out/results" PYTHONUNBUFFERED=1 WANDB_MODE=disabled
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
if compgen -G ".whl/*.whl" >/dev/null; then
    site=$(mktemp -d)
    "$py" -m pip install -q --no-index --no-deps --no-compile --target "$site" .whl/*.whl || exit 2
    export PYTHONPATH="$repo:$site${PYTHONPATH#"$repo"}"
fi
reference=${GOLF_REFERENCE:-}
for candidate in .reference/train_gpt.py "$(dirname "$repo")/shared/reference/train_gpt.py"; do
    if [ -z "$reference" ] && [ -f "$candidate" ]; then reference=$(cd "$(dirname "$candidate")" && pwd)/train_gpt.py; fi
done

# sizes BUDGET_S BASE RECUR PEER_SIZE THROUGHPUT_SIZE TTT_SIZE PHASED: the mode's default budget, the baseline
# and recur_parallel configs, the size arguments of the peer, throughput and eval/TTT steps, and the phased
# TTT preset.
sizes() {
    budget=${GOLF_SUITE_BUDGET_S:-$1} base=$2 recur=$3 peer_size=$4 throughput_size=$5 ttt_size=$6 phased=$7
}
presets=""
if [ $cpu_mode = 1 ]; then
    # 2 x 64 baseline at seq 64, 1,024 tokens/step, one thread: every step's code path in seconds.
    train="data=demo train.seq_len=64 train.batch_tokens=1024 train.grad_accum_steps=1 train.warmup_steps=1"
    train="$train train.threads=1 train.compile=off eval.batch_tokens=8192 eval.max_seqs=64 logger=none"
    sizes 150 "arch=tiny arch.num_layers=2 arch.model_dim=64 arch.num_heads=2 arch.num_kv_heads=1 $train" \
        "arch=recur_parallel_cpu arch.recur_start_step=0 $train" "--steps 2 --repeats 1 --precision fp32" \
        "--steps 2 --repeats 1" "--max-seqs 8 --repeats 1 ttt.chunk_tokens=128" ttt=phased_lora_cpu
else
    # The official baseline: 9 x 512 at seq 1024, 524,288 tokens/step in 8 micro-batches; bf16, compiled.
    official="+experiment=baseline data=demo train.warmup_steps=3 logger=none"
    sizes 450 "$official" "$official arch=recur_parallel arch.recur_start_step=0" \
        "--steps 20 --repeats 2 --precision bf16" "--steps 10 --repeats 1" "--max-seqs 128 --repeats 1" ttt=phased_lora
    presets=$(cd golf/conf/arch && ls ./*.yaml | sed 's|^\./||; s|\.yaml$||' \
              | grep -v -x -e baseline -e recur_parallel -e tiny -e '.*_cpu')
fi
deadline=$budget  # SECONDS counts from the start of the script: the wheel install is inside the budget
# The device the rows were measured on (each row names it too); the GPU mode stops here without CUDA.
device=$(timeout 60 "$py" -c "import torch; from benchmarks.common import device_name
cuda = torch.cuda.is_available()
print(f'{device_name(torch.device(\"cuda\" if cuda else \"cpu\"))}, torch {torch.__version__}'
      + (f', CUDA {torch.version.cuda}' if cuda else ''))" 2>"$out/logs/device.log") || {
    echo "error: python could not load torch and golf's benchmarks (logs/device.log):" >&2
    tail -n 3 "$out/logs/device.log" >&2
    exit 2
}
if [ $cpu_mode = 0 ] && [[ $device == cpu* ]]; then
    echo "error: no CUDA device here ($device); run 'bash benchmarks/gpu_suite.sh --cpu OUT_DIR' for the toy sizes" >&2
    exit 2
fi
command -v nvidia-smi >/dev/null && nvidia-smi >>"$out/logs/device.log" 2>&1
summary="$out/summary.md"
printf '# golf benchmark suite (%s)\n\nDevice: %s. Budget %d s.\n\n| step | status | seconds |\n|---|---|---|\n' \
    "$([ $cpu_mode = 1 ] && echo "CPU mode" || echo "GPU")" "$device" "$budget" >"$summary"
failures=0

# step NAME TIMEOUT_S COMMAND...: run it with its log under logs/, capped by the suite's deadline.
step() {
    local name=$1 limit=$2 left=$((deadline - SECONDS)) start=$SECONDS status rc
    shift 2
    if [ "$left" -lt "$limit" ]; then limit=$left; fi
    if [ "$limit" -lt 5 ]; then
        status="skipped: the suite's ${budget} s budget is spent"
        failures=$((failures + 1))
    else
        echo "== $name (up to ${limit} s): $*"
        timeout -k 10 "$limit" "$@" >"$out/logs/$name.log" 2>&1
        rc=$?
        case $rc in
            0) status=ok ;;
            124 | 137) status="timeout after ${limit} s"; failures=$((failures + 1)) ;;
            *) status="failed (exit $rc): $(tail -n 1 "$out/logs/$name.log" | cut -c1-200)"; failures=$((failures + 1)) ;;
        esac
    fi
    echo "   $name: $status"
    printf '| %s | %s | %d |\n' "$name" "$status" $((SECONDS - start)) >>"$summary"
}

skip() {
    echo "   $1: skipped: $2"
    printf '| %s | skipped: %s | 0 |\n' "$1" "$2" >>"$summary"
}

step data 60 "$py" -c "from golf.data.demo import ensure_demo; print(ensure_demo())"
if [ -z "$reference" ]; then
    skip peer_model "no official train_gpt.py (set GOLF_REFERENCE or copy it to .reference/)"
    skip peer_script "no official train_gpt.py (set GOLF_REFERENCE or copy it to .reference/)"
else
    # shellcheck disable=SC2086  # the size and config strings are word lists
    step peer_model 180 "$py" -m benchmarks.peer --ref "$reference" --parts model $peer_size $base
    if [ $cpu_mode = 1 ]; then
        skip peer_script "the official main() needs CUDA"
    else
        # shellcheck disable=SC2086
        step peer_script 150 "$py" -m benchmarks.peer --ref "$reference" --parts script --steps 40 $base
    fi
fi
# shellcheck disable=SC2086
step throughput_baseline 100 "$py" -m benchmarks.throughput $throughput_size $base
# shellcheck disable=SC2086
step throughput_recur_parallel 100 "$py" -m benchmarks.throughput $throughput_size $recur
if [ $cpu_mode = 1 ]; then
    # shellcheck disable=SC2086
    step ttt_eager 60 "$py" -m benchmarks.eval_ttt $ttt_size --modes full,ttt ttt=sgd $base
    skip ttt_compiled "CPU mode (a cold C++ compile takes ~35 s here)"
else
    # shellcheck disable=SC2086
    step ttt_compiled 100 "$py" -m benchmarks.eval_ttt $ttt_size --modes full,sliding,ttt ttt=sgd ttt.compile=true $base
    # shellcheck disable=SC2086
    step ttt_eager 60 "$py" -m benchmarks.eval_ttt $ttt_size --modes ttt ttt=sgd $base
fi
# PR #2135's scoring: phased LoRA TTT with the n-gram tilt (its timing against the 600 s eval budget)
# shellcheck disable=SC2086
step ttt_phased_tilt 100 "$py" -m benchmarks.eval_ttt $ttt_size --modes ttt $phased eval.ngram_tilt.enabled=true $base
for preset in $presets; do
    # shellcheck disable=SC2086
    step "throughput_$preset" 60 "$py" -m benchmarks.throughput --steps 5 --repeats 1 $base arch="$preset"
done

printf '\n' >>"$summary"
for table in "$out"/results/*.md; do
    [ -f "$table" ] && printf '## %s\n\n%s\n\n' "$(basename "$table" .md)" "$(cat "$table")" >>"$summary"
done
tar -czf "$out/suite.tar.gz" -C "$out" summary.md results logs
echo
cat "$summary"
[ "$failures" -eq 0 ]
