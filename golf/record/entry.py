"""The entry point of a record's train_gpt.py: run the pipeline as the official script is run.

    torchrun --standalone --nproc_per_node=8 train_gpt.py      (or: python train_gpt.py)

The script carries the run's config (`CONFIG`) and data layout (`DATA`); the official script's environment
variables choose the data and steer the run: DATA_PATH (shard directory), TOKENIZER_PATH, SEED, RUN_ID,
ITERATIONS, MAX_WALLCLOCK_SECONDS, VAL_LOSS_EVERY, TRAIN_LOG_EVERY, WARMUP_STEPS, TRAIN_BATCH_TOKENS,
TRAIN_SEQ_LEN, VAL_BATCH_SIZE. It trains under the cap, quantizes, writes `final_model.golf`, reloads it,
scores it with the run's protocol and prints the official final lines and the headline; rank 0 also logs
to logs/<RUN_ID>.txt. Its code size is the size of the script file itself. With SCORE_ARTIFACT=<path> it
only scores that artifact (a reviewer checking a submitted model).
"""

import copy
import logging
import os
import sys
import uuid
from pathlib import Path

from golf.config.schema import GolfConfig, from_dict
from golf.errors import GolfError
from golf.logging.console import setup_logging
from golf.pipeline import Pipeline
from golf.utils.runtime import setup_runtime, teardown_runtime

log = logging.getLogger("golf.record")
ARTIFACT = "final_model.golf"
# environment variable -> (config key, type), as the official script reads them
ENVIRONMENT = {
    "SEED": ("seed", int), "ITERATIONS": ("train.iterations", int),
    "MAX_WALLCLOCK_SECONDS": ("budget.train_seconds", float), "VAL_LOSS_EVERY": ("train.val_every", int),
    "TRAIN_LOG_EVERY": ("train.log_every", int), "WARMUP_STEPS": ("train.warmup_steps", int),
    "TRAIN_BATCH_TOKENS": ("train.batch_tokens", int), "TRAIN_SEQ_LEN": ("train.seq_len", int),
    "VAL_BATCH_SIZE": ("eval.batch_tokens", int),
}


def record_config(embedded: dict, data: dict, environ) -> GolfConfig:
    """The run's config with the environment's data paths and run settings applied."""
    tree = copy.deepcopy(embedded)
    for variable, (key, cast) in ENVIRONMENT.items():
        if variable in environ:
            *parents, leaf = key.split(".")
            node = tree
            for part in parents:
                node = node[part]
            node[leaf] = cast(environ[variable])
    root = environ.get("DATA_PATH", data["root"])
    tokenizer = environ.get("TOKENIZER_PATH", os.path.normpath(os.path.join(root, data["tokenizer"])))
    tree["data"].update(root=root, train_pattern=os.path.join(root, data["train"]),
                        val_pattern=os.path.join(root, data["val"]), tokenizer_path=tokenizer,
                        val_bytes_pattern=os.path.join(root, data["val_bytes"]) if "val_bytes" in data else "")
    return from_dict(GolfConfig, tree)


class _NoMetrics:
    """The record logs lines, not metric streams."""

    def log(self, step: int, metrics: dict) -> None:
        pass

    def rewind(self, step: int) -> None:
        pass


def main(embedded: dict, data: dict) -> int:
    cfg = record_config(embedded, data, os.environ)
    rt = setup_runtime(cfg.train)
    run_id = os.environ.get("RUN_ID", str(uuid.uuid4()))
    setup_logging(Path("logs") / f"{run_id}.txt" if rt.is_main else None, rt.rank)
    code_bytes = os.path.getsize(sys.argv[0])
    log.info(f"golf record: seed {cfg.seed}, data {cfg.data.root}, tokenizer {cfg.data.tokenizer_path}, "
             f"world size {rt.world_size}, device {rt.device}, code {code_bytes} bytes")
    score_only = os.environ.get("SCORE_ARTIFACT")
    try:
        pipeline = Pipeline(cfg, rt, Path(score_only or ARTIFACT), code_bytes, _NoMetrics(), legality=False)
        pipeline.load_data()
        if not score_only:
            pipeline.build()
            pipeline.train()
            pipeline.write_artifact()
        scores = pipeline.score()
    except GolfError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        teardown_runtime()
    h = scores.headline_result
    log.info(f"final val_bpb:{h['val_bpb']:.8f} val_loss:{h['val_loss']:.8f} ({scores.headline})")
    return 0
