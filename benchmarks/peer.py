"""golf against the official script, side by side in one process: speed at equal BPB.

    python -m benchmarks.peer --ref PATH +experiment=cpu_demo [overrides] [--steps N] [--repeats 4]
        [--precision bf16,fp32] [--parts model,script]

Model level (any device): the config is trained twice from the same seed on the same shards, once by golf
(golf's model and optimizers in its real Trainer, as in a run: warmup with state restore, schedules, loss
watch, checkpoint at the end) and once by the official script's own classes loaded from PATH (its GPT, Muon
and DistributedTokenLoader, fused Adam, stepped the way its main() steps them: warmup with state restore,
Muon momentum warmup, linear warmdown, its optimizer order). Both train at the same precision: `bf16` is
bf16 storage + bf16 autocast as the official main() runs (token embedding bf16, everything else fp32),
`fp32` is plain fp32. On CUDA both compile (fullgraph, static shapes, and the official Newton-Schulz as its
main() compiles it) and the official side runs flash attention only, as its main() sets. Each side is built
once, so compiled graphs are reused, and every run restarts it from the initial weights and empty optimizer
states; repeats alternate the sides (ABBA) and medians are reported. After every run both trained models are
scored by the official `eval_val` with the official byte tables (one evaluator, the same exact BPB
accounting, over the whole val split or its first eval.max_seqs sequences; on CUDA it runs under its own bf16
autocast, on CPU under the leg's precision). One short untimed run of each side comes first: a process's
first calls pay one-time costs.

Like with like: neither side logs (golf trains with train.log_every=0, the official loop prints nothing), so
neither reads the loss back during the timed steps. What golf does at a log step and the official script does
not, the per-layer gradient SNR (golf.optim.gradient_snr, measured on the device and read back with the loss),
is therefore outside the timed region here; its cost per log step is measured separately on golf's model and
reported beside the comparison (`golf_snr_ms_per_log_step`). In the whole-script comparison it is inside golf's
training clock (benchmarks.peer_script). Golf's end-of-run checkpoint write is kept off both clocks.

Reported per precision: ms/step by the wall clock (golf: its Trainer's training clock; official: the same
span of its loop) and by process CPU time (robust against other jobs on a shared machine when threads=1),
golf/official for both, Δ pre-quant BPB (golf - official), peak memory (CUDA: what a run allocates above the
resident weights; CPU: the process's peak RSS, both sides together), the load average. On CUDA the whole
scripts follow (benchmarks.peer_script; `--parts model` or `--parts script` runs one part).
Results: benchmarks/results/peer.{jsonl,md} (and peer_script.{jsonl,md}).
"""

import argparse
import contextlib
import copy
import dataclasses
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

import sentencepiece as spm
import torch

from benchmarks.common import (
    device_name,
    golf_trainer,
    golf_training_setup,
    load_config,
    peak_memory_mb,
    record,
    sync,
    train_loader,
)
from benchmarks.reference import (
    check_official_config,
    find_reference,
    load_reference,
    official_model,
    official_optimizers,
)
from golf.checkpoint import Checkpointer
from golf.config.derived import grad_accum_steps
from golf.errors import GolfError
from golf.models.layer_groups import layer_groups
from golf.optim.gradient_snr import GradientSNR
from golf.optim.schedule import lr_multiplier, muon_momentum
from golf.utils.runtime import seed_everything, setup_runtime

BENCH_OVERRIDES = ["train.val_every=0", "train.log_every=0", "train.checkpoint_every_minutes=0", "budget=unlimited"]


class _TimedCheckpointer(Checkpointer):
    """A real checkpointer that counts the CPU time of its writes, which the Trainer keeps off its clock."""

    cpu_s = 0.0

    def save(self, *args, **kwargs):
        start = time.process_time()
        super().save(*args, **kwargs)
        self.cpu_s += time.process_time() - start


class Side:
    """One implementation, built once; `reset` puts back the initial weights and empty optimizer states."""

    def __init__(self, model, runner, optimizers: list):
        self.model, self.runner, self.optimizers = model, runner, optimizers
        self.initial = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.initial_optimizers = [copy.deepcopy(opt.state_dict()) for opt in optimizers]

    def reset(self) -> None:
        self.model.load_state_dict(self.initial, strict=True)
        for opt, state in zip(self.optimizers, self.initial_optimizers, strict=True):
            opt.load_state_dict(state)


class GolfSide(Side):
    def __init__(self, cfg, rt):
        model, runner, optimizers = golf_training_setup(cfg, rt, rt.compile)
        self.named_optimizers = optimizers
        super().__init__(model, runner, list(optimizers.values()))

    def train(self, cfg, rt) -> tuple[float, float]:
        """Seconds of wall clock and of process CPU time for cfg.train.iterations steps."""
        self.reset()
        with tempfile.TemporaryDirectory() as job_dir:
            checkpointer = _TimedCheckpointer(Path(job_dir), "benchmark", rt)
            trainer = golf_trainer(cfg, rt, self.model, self.runner, self.named_optimizers, checkpointer)
            trainer.warmup()
            cpu_start = time.process_time()
            outcome = trainer.run()
            return outcome.train_seconds, time.process_time() - cpu_start - checkpointer.cpu_s


class OfficialSide(Side):
    def __init__(self, ref, cfg, rt):
        seed_everything(cfg.seed)
        self.ref = ref
        model = official_model(ref, cfg.arch, rt.autocast_dtype == torch.bfloat16).to(rt.device)
        runner = model
        if rt.compile:  # as its main() does: the model whole, and Newton-Schulz rebound to a compiled version
            runner = torch.compile(model, dynamic=False, fullgraph=True)
            if not hasattr(ref.zeropower_via_newtonschulz5, "_torchdynamo_orig_callable"):
                ref.zeropower_via_newtonschulz5 = torch.compile(ref.zeropower_via_newtonschulz5)
        super().__init__(model, runner, official_optimizers(ref, model, cfg.optimizer, cfg.arch.tie_embeddings,
                                                            fused=True))

    def _step(self, cfg, rt, loader, accum: int) -> torch.Tensor:
        """Forward/backward over the micro-batches, as the official loop does; returns the mean loss."""
        train_loss = torch.zeros((), device=rt.device)
        bf16 = rt.autocast_dtype is not None
        for _ in range(accum):
            x, y = loader.next_batch(cfg.train.batch_tokens, cfg.train.seq_len, accum)
            with torch.autocast(device_type=rt.device.type, dtype=torch.bfloat16, enabled=bf16):
                loss = self.runner(x, y)
            train_loss += loss.detach()
            (loss * (1.0 / accum)).backward()
        return train_loss / accum

    def _zero_grad(self) -> None:
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=True)

    def train(self, cfg, rt) -> tuple[float, float]:
        t, o, accum = cfg.train, cfg.optimizer, grad_accum_steps(cfg, 1)
        self.reset()
        loader = self.ref.DistributedTokenLoader(cfg.data.train_pattern, 0, 1, rt.device)
        for _ in range(t.warmup_steps):  # primes every path, then the initial state and a fresh stream come back
            self._zero_grad()
            self._step(cfg, rt, loader, accum)
            for opt in self.optimizers:
                opt.step()
        self.reset()
        self._zero_grad()
        loader = self.ref.DistributedTokenLoader(cfg.data.train_pattern, 0, 1, rt.device)
        muon = next(opt for opt in self.optimizers if isinstance(opt, self.ref.Muon))
        sync(rt.device)
        start, cpu_start = time.perf_counter(), time.process_time()
        for step in range(t.iterations):
            elapsed_ms = 1000.0 * (time.perf_counter() - start)
            scale = lr_multiplier(step, elapsed_ms, t.iterations, t.warmdown_iters, None)
            self._zero_grad()
            self._step(cfg, rt, loader, accum)
            for group in muon.param_groups:
                group["momentum"] = muon_momentum(step, o.muon_momentum_warmup_start, o.muon_momentum,
                                                  o.muon_momentum_warmup_steps)
            for opt in self.optimizers:
                for group in opt.param_groups:
                    group["lr"] = group["base_lr"] * scale
            if o.grad_clip_norm > 0:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), o.grad_clip_norm)
            for opt in self.optimizers:
                opt.step()
            self._zero_grad()
        sync(rt.device)
        return time.perf_counter() - start, time.process_time() - cpu_start


def official_sdpa(rt):
    """The attention backends the official main() allows on CUDA (flash only); nothing to choose on CPU."""
    if rt.device.type != "cuda":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([SDPBackend.FLASH_ATTENTION])


class OfficialEval:
    """The official eval_val and byte tables, applied to any model whose forward(x, y) is the mean loss."""

    def __init__(self, ref, cfg, rt):
        self.ref, self.rt = ref, rt
        self.args = SimpleNamespace(val_batch_size=cfg.eval.batch_tokens, train_seq_len=cfg.train.seq_len)
        self.val_tokens = ref.load_validation_tokens(cfg.data.val_pattern, cfg.train.seq_len)
        if cfg.eval.max_seqs > 0:  # a capped val split (eval.max_seqs), as golf's own evaluation caps it
            self.val_tokens = self.val_tokens[: cfg.eval.max_seqs * cfg.train.seq_len + 1]
        sp = spm.SentencePieceProcessor(model_file=cfg.data.tokenizer_path)
        self.luts = ref.build_sentencepiece_luts(sp, cfg.arch.vocab_size, rt.device)

    def __call__(self, model) -> float:
        model = copy.deepcopy(model)  # its inference-mode rotary caches must not reach the next training run
        cpu_bf16 = self.rt.device.type == "cpu" and self.rt.autocast_dtype is not None
        with warnings.catch_warnings(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=cpu_bf16):
            warnings.simplefilter("ignore")  # eval_val's CUDA autocast warns (and stays off) on a CPU machine
            _, bpb = self.ref.eval_val(self.args, model, 0, 1, self.rt.device, 1, self.val_tokens, *self.luts)
        return bpb


def _timed(side, cfg, rt, context) -> dict:
    if rt.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(rt.device)
    resident = torch.cuda.memory_allocated(rt.device) if rt.device.type == "cuda" else 0
    with context:
        wall_s, cpu_s = side.train(cfg, rt)
    steps = cfg.train.iterations
    run_peak = (torch.cuda.max_memory_allocated(rt.device) - resident) / 2**20 if rt.device.type == "cuda" else None
    return {"ms": 1000.0 * wall_s / steps, "cpu_ms": 1000.0 * cpu_s / steps, "peak_mb": run_peak}


def compare_models(ref, cfg, rt, repeats: int) -> tuple[dict, float]:
    """ABBA-alternated training runs of both sides and the official BPB of each run's weights; then the cost of
    golf's per-log-step gradient SNR (ms), which no timed run includes."""
    sides = {"golf": GolfSide(cfg, rt), "official": OfficialSide(ref, cfg, rt)}
    contexts = {"golf": contextlib.nullcontext, "official": lambda: official_sdpa(rt)}
    evaluate = OfficialEval(ref, cfg, rt)
    prime = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, iterations=min(cfg.train.iterations, 3)))
    for name, side in sides.items():  # untimed: a process's first calls pay one-time costs (allocator, kernels)
        with contexts[name]():
            side.train(prime, rt)
    runs = {name: [] for name in sides}
    for i in range(repeats):
        for name in (list(sides) if i % 2 == 0 else list(reversed(sides))):
            run = _timed(sides[name], cfg, rt, contexts[name]())
            with contexts[name]():
                run["bpb"] = evaluate(sides[name].model)
            runs[name].append(run)
            print(f"  {name:8s} run {i + 1}/{repeats}: {run['ms']:.1f} ms/step (CPU {run['cpu_ms']:.1f}) "
                  f"val_bpb {run['bpb']:.8f}", flush=True)
    return runs, snr_ms_per_log_step(sides["golf"], cfg, rt)


def snr_ms_per_log_step(side: GolfSide, cfg, rt, repeats: int = 5) -> float:
    """Median ms of what golf adds at a log step over the official script: the gradient SNR of every layer
    (measured on the device, then read back), on the gradients of one fresh micro-batch of golf's model."""
    side.reset()
    x, y = train_loader(cfg, rt).next_batch(cfg.train.batch_tokens, cfg.train.seq_len, grad_accum_steps(cfg, 1))
    with torch.autocast(device_type=rt.device.type, dtype=torch.bfloat16, enabled=rt.autocast_dtype is not None):
        side.runner(x, y).backward()
    snr = GradientSNR(layer_groups(side.model), cfg.ttt.snr_min, cfg.ttt.snr_max)
    seconds = []
    for _ in range(repeats):
        sync(rt.device)
        start = time.perf_counter()
        snr.measure()
        snr.metrics("snr")
        seconds.append(time.perf_counter() - start)
    for opt in side.optimizers:
        opt.zero_grad(set_to_none=True)
    return 1000.0 * statistics.median(seconds)


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def report(cfg, rt, runs: dict, snr_ms: float, overrides: list[str], repeats: int, load_before: tuple) -> dict:
    golf, official = runs["golf"], runs["official"]
    golf_ms, official_ms = _median(golf, "ms"), _median(official, "ms")
    golf_cpu, official_cpu = _median(golf, "cpu_ms"), _median(official, "cpu_ms")
    precision = "bf16" if rt.autocast_dtype is not None else "fp32"
    device = device_name(rt.device)
    peaks = {name: max(run["peak_mb"] for run in side) if rt.device.type == "cuda" else None
             for name, side in runs.items()}
    row = {
        "bench": "peer", "device": device, "torch": torch.__version__, "overrides": overrides,
        "arch": f"{cfg.arch.name} {cfg.arch.num_layers}x{cfg.arch.model_dim}", "seq_len": cfg.train.seq_len,
        "batch_tokens": cfg.train.batch_tokens, "steps": cfg.train.iterations, "repeats": repeats,
        "precision": precision, "compile": rt.compile, "threads": torch.get_num_threads(),
        "golf_ms_per_step": round(golf_ms, 2), "official_ms_per_step": round(official_ms, 2),
        "golf_over_official": round(golf_ms / official_ms, 4),
        "golf_cpu_ms_per_step": round(golf_cpu, 2), "official_cpu_ms_per_step": round(official_cpu, 2),
        "golf_over_official_cpu": round(golf_cpu / official_cpu, 4),
        "runs_ms": {name: [round(run["ms"], 2) for run in side] for name, side in runs.items()},
        "runs_cpu_ms": {name: [round(run["cpu_ms"], 2) for run in side] for name, side in runs.items()},
        "val_bpb": {name: [run["bpb"] for run in side] for name, side in runs.items()},
        "delta_bpb": golf[0]["bpb"] - official[0]["bpb"],
        "golf_snr_ms_per_log_step": round(snr_ms, 3),
        "run_peak_mb": peaks if rt.device.type == "cuda" else None,
        "process_peak_rss_mb": None if rt.device.type == "cuda" else round(peak_memory_mb(rt.device)),
        "load_avg": [round(v, 2) for v in (*load_before, *os.getloadavg())],
    }
    memory = (f"{peaks['golf']:,.0f} / {peaks['official']:,.0f}" if rt.device.type == "cuda"
              else f"RSS {row['process_peak_rss_mb']:,} (both)")
    load = f"{load_before[0]:.1f}→{os.getloadavg()[0]:.1f}"
    record("peer", row,
           "| device | arch | seq | tokens/step | steps x repeats | precision | compile | threads | golf ms/step "
           "| official ms/step | golf/official | CPU-time ratio | Δ BPB (golf − official) | peak MiB golf / official "
           "| golf SNR ms per log step (untimed) | load |\n" + "|---" * 16 + "|\n",
           f"| {device} | {row['arch']} | {row['seq_len']} | {row['batch_tokens']:,} | {row['steps']} x {repeats} | "
           f"{precision} | {rt.compile} | {row['threads']} | {golf_ms:.1f} | {official_ms:.1f} | "
           f"{row['golf_over_official']:.3f} | {row['golf_over_official_cpu']:.3f} | {row['delta_bpb']:+.2e} | "
           f"{memory} | {snr_ms:.2f} | {load} |")
    return row


def run(args, overrides: list[str]) -> None:
    ref_path = find_reference(args.ref)
    ref = load_reference(ref_path)
    steps = [f"train.iterations={args.steps}"] if args.steps else []
    default_parts = "model,script" if torch.cuda.is_available() else "model"
    parts = set((args.parts or default_parts).split(","))
    for precision in args.precision.split(",") if "model" in parts else []:
        cfg = load_config([*overrides, *steps, f"train.precision={precision}", *BENCH_OVERRIDES])
        check_official_config(cfg)
        rt = setup_runtime(cfg.train)
        print(f"peer {precision}: {cfg.arch.num_layers}x{cfg.arch.model_dim}, {cfg.train.iterations} steps x "
              f"{args.repeats} repeats on {device_name(rt.device)}", flush=True)
        load_before = os.getloadavg()
        runs, snr_ms = compare_models(ref, cfg, rt, args.repeats)
        report(cfg, rt, runs, snr_ms, overrides, args.repeats, load_before)
    if "script" in parts:
        from benchmarks.peer_script import compare_scripts

        compare_scripts(ref_path, [*overrides, *steps])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ref", help="the official train_gpt.py (default: $GOLF_REFERENCE, .reference/, "
                                      "shared/reference/ beside the checkout)")
    parser.add_argument("--steps", type=int, help="training steps per run (default: the config's train.iterations)")
    parser.add_argument("--repeats", type=int, default=4, help="runs per side, ABBA-alternated")
    parser.add_argument("--precision", default="bf16,fp32", help="comma list of bf16 / fp32 legs")
    parser.add_argument("--parts", help="model (any device), script (CUDA only); default: both on CUDA, else model")
    args, overrides = parser.parse_known_args()
    try:
        run(args, overrides)
    except GolfError as exc:
        raise SystemExit(f"error: {exc}") from None


if __name__ == "__main__":
    main()
