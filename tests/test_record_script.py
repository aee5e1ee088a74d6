"""train_gpt.py, the record script every run writes and counts: run as the official script is run, it trains,
quantizes and scores exactly as golf did (byte-identical artifact, the same val_bpb to the last printed
digit), single process and under torchrun with 2 gloo processes; it embeds only the code the config uses,
nothing from Hydra, OmegaConf or W&B, and its size is the run's bytes_code."""

import ast
import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FAST_RUN, job_dirs, read_results, run_golf

from golf.config.compose import compose, typed
from golf.record.closure import ENTRY, OPTIONAL, RECORD_MODULES, imports, module_file, record_modules, static_closure
from golf.record.entry import record_config
from golf.record.script import _literal, _source_literal, train_script

FORBIDDEN = ("hydra", "omegaconf", "wandb", "matplotlib", "scipy")
# What golf's jobs add around a run (checkpoints, preemption, the data access log, results, the typed schema):
# never part of a record's counted code.
JOB_ONLY = ("golf.config.schema", "golf.preemption", "golf.checkpoint", "golf.data.access", "golf.data.loader_state",
            "golf.job_trainer", "golf.job_pipeline")
# A recipe config touching every optional path a record can carry at CPU size: recurrence, parallel residuals,
# XSA, value embeddings, SmearGate, EMA, late QAT, GPTQ with training-data calibration inside the training-time
# reserve, sliding eval and score-first stream TTT.
RECIPE = [*(o for o in FAST_RUN if not o.startswith("arch")), "arch=recur_parallel_cpu", "arch.recur_start_step=2",
          "train.ema_decay=0.9",
          "quant=gptq_int6", "quant.calib_seqs=4", "quant.qat_threshold=0.5", "eval=sliding64", "ttt=sgd",
          "ttt.chunk_tokens=1024", "ttt.epochs=1"]


def _cfg(*overrides: str):
    return typed(compose([*overrides, "paths.data_root=/tmp", "data.root=/tmp/demo"], hydra_runtime=True))


def _run_script(job: Path, workdir: Path, nproc: int = 1) -> tuple[str, bytes]:
    """Run the job's train_gpt.py as a record is run: a bare folder, data from DATA_PATH, seed from SEED."""
    workdir.mkdir()
    script = workdir / "train_gpt.py"
    script.write_bytes((job / "train_gpt.py").read_bytes())
    results = read_results(job)
    env = {**os.environ, "DATA_PATH": results["data"]["root"], "SEED": str(results["seed"]), "RUN_ID": "test",
           "PYTHONPATH": "", "PYTHONUNBUFFERED": "1"}
    launch = ([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
              if nproc > 1 else [sys.executable])
    proc = subprocess.run([*launch, "train_gpt.py"], cwd=workdir, env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr, (workdir / "final_model.golf").read_bytes()


@pytest.mark.parametrize("overrides,nproc", [(FAST_RUN, 1), (RECIPE, 2)], ids=["baseline", "recipe_2_ranks"])
def test_the_record_script_reproduces_the_run(tmp_path, demo_cache, overrides, nproc):
    launcher = ["launcher=torchrun", f"launcher.nproc={nproc}"] if nproc > 1 else []
    out = tmp_path / "golf"
    out.mkdir()
    proc = run_golf([*overrides, *launcher], out, demo_cache)
    [job] = job_dirs(out)
    results = read_results(job)
    assert results["status"] == "completed", proc.stderr[-3000:]
    log, artifact = _run_script(job, tmp_path / "record", nproc)
    assert artifact == (job / "artifact" / "model.golf").read_bytes()
    m = results["metrics"]
    assert f"final val_bpb:{m['val_bpb']:.8f} val_loss:{m['val_loss']:.8f} ({m['headline']})" in log
    assert results["artifact"]["bytes_code"] == (job / "train_gpt.py").stat().st_size
    assert f"Code size: {results['artifact']['bytes_code']} bytes" in log
    if nproc > 1:
        assert m["headline"] == "ttt" and results["compliance"]["checks"]["score_before_update"]["pass"]


# Phased LoRA TTT with the n-gram tilt as the records run it (batched per-document LoRA, a global step between
# batches), shrunk to the demo model: the record embeds their modules.
PHASED_TILT = [*FAST_RUN, "ttt=phased_lora", "ttt.lora_rank=4", "ttt.lora_chunk=64", "ttt.lora_batch_docs=1",
               "ttt.lr=0.01", "ttt.phases=1", "ttt.phase_docs=1", "ttt.chunk_tokens=512",
               "eval.ngram_tilt.enabled=true"]


@pytest.mark.parametrize("overrides", [FAST_RUN, PHASED_TILT], ids=["baseline", "phased_tilt"])
def test_score_only_mode_scores_a_given_artifact(tmp_path, demo_cache, overrides):
    out = tmp_path / "golf"
    out.mkdir()
    run_golf(overrides, out, demo_cache)
    [job] = job_dirs(out)
    results = read_results(job)
    work = tmp_path / "review"
    work.mkdir()
    (work / "train_gpt.py").write_bytes((job / "train_gpt.py").read_bytes())
    env = {**os.environ, "DATA_PATH": results["data"]["root"], "SCORE_ARTIFACT": str(job / "artifact" / "model.golf"),
           "PYTHONPATH": ""}
    proc = subprocess.run([sys.executable, "train_gpt.py"], cwd=work, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"final val_bpb:{results['metrics']['val_bpb']:.8f}" in proc.stdout + proc.stderr
    assert "step 1/" not in proc.stdout + proc.stderr  # no training
    if overrides is PHASED_TILT:
        assert results["metrics"]["headline"] == "ttt" and results["ttt"]["queue"]["order"] == "length"
        assert [p["documents"] for p in results["ttt"]["phases"]] == [1] and results["ttt"]["ngram_tilt"]["gated"]
        assert results["compliance"]["checks"]["score_before_update"]["pass"]


def test_a_baseline_record_carries_no_optional_component():
    modules = set(record_modules(_cfg("arch=baseline")))
    assert not modules & set(OPTIONAL), sorted(modules & set(OPTIONAL))
    # nor what only other configs import through an optional module (gradient SNR and layer groups: TTT; the
    # fake-quant grid: late QAT; writing shards: the CaseOps sidecar module)
    assert not modules & {"golf.optim.gradient_snr", "golf.models.layer_groups", "golf.models.fake_quant",
                          "golf.data.shard_writer"}
    recipe = set(record_modules(_cfg(*RECIPE)))
    for name in ("golf.models.smear_gate", "golf.models.value_embedding", "golf.quant.lowbit", "golf.quant.qat",
                 "golf.quant.calibration", "golf.ttt.stream", "golf.optim.averaging", "golf.eval.sliding"):
        assert name in recipe, name
    assert "golf.ttt.lora" not in recipe and "golf.models.ebls" not in recipe


FRONTIER_IMPORTS = """
import sys, torch
from golf.artifact import container
from golf.config.compose import compose, typed
from golf.models.registry import build_model
from golf.quant.quantize import quantize
from golf.record.closure import OPTIONAL, record_modules
cfg = typed(compose(sys.argv[1:], hydra_runtime=True))
torch.manual_seed(0)
model = build_model(cfg.arch)
model.on_train_step(10**6, 1.0)
ids = torch.randint(2, cfg.arch.vocab_size, (2, 32))
model(ids, ids).backward()
container.unpack(quantize(model, cfg, 16_000_000).blob)
print(sorted(m for m in OPTIONAL if m in sys.modules), sorted(set(OPTIONAL) & set(record_modules(cfg))))
"""


def test_a_frontier_record_embeds_every_optional_module_its_run_imports():
    # Build, train a step, quantize and reload the pr2135 model in a fresh process: every optional module that
    # imports must be one the record's closure embeds (else the record script dies on an ImportError).
    overrides = ["+experiment=pr2135_cpu", "arch.num_layers=5", "arch.recur_layers=[1,2]", "arch.parallel_start=3",
                 "arch.xsa_layers=[0,1,2,3,4]", "quant.calib_source=self_generated", "quant.calib_seqs=2",
                 "quant.calib_seq_len=16", "quant.hot_compressor=brotli", "arch.rope_yarn_train_len=16",
                 "paths.data_root=/tmp", "data.root=/tmp/demo"]
    done = subprocess.run([sys.executable, "-c", FRONTIER_IMPORTS, *overrides], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    imported, embedded = (ast.literal_eval(part + "]") for part in done.stdout.strip()[:-1].split("] "))
    assert set(imported) <= set(embedded), sorted(set(imported) - set(embedded))
    for name in ("golf.models.sparse_attn_gate", "golf.models.gated_smear", "golf.models.asym_softcap",
                 "golf.models.document_mask", "golf.models.lane_mix", "golf.models.yarn", "golf.quant.lqer",
                 "golf.artifact.pergroup", "golf.quant.awq_lite"):
        assert name in imported, name


def test_counted_code_stays_inside_the_allow_list_and_every_lazy_import_is_declared():
    everything = static_closure([ENTRY, *OPTIONAL])
    assert set(everything) <= RECORD_MODULES, sorted(set(everything) - RECORD_MODULES)
    declared = set(OPTIONAL) | {".".join(m.split(".")[:i]) for m in OPTIONAL for i in range(1, m.count(".") + 1)}
    for name in everything:
        top, lazy = imports(name)
        missing = {m for m in lazy if module_file(m) is not None} - declared
        assert not missing, f"{name} imports {sorted(missing)} inside a function: declare them in OPTIONAL"
        tree = ast.parse(module_file(name).read_text(encoding="utf-8"))
        third_party = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                       for alias in node.names}
        third_party |= {(node.module or "").split(".")[0] for node in ast.walk(tree)
                        if isinstance(node, ast.ImportFrom) and not node.level}
        assert not third_party & set(FORBIDDEN), (name, sorted(third_party & set(FORBIDDEN)))


def test_the_allow_list_has_no_stale_entry():
    assert RECORD_MODULES == set(static_closure([ENTRY, *OPTIONAL]))
    assert RECORD_MODULES.isdisjoint(JOB_ONLY), sorted(RECORD_MODULES & set(JOB_ONLY))


def test_the_wrapper_literal_and_the_module_literals_evaluate_to_what_they_hold():
    tricky = bytes(range(256)) + b"'''" + b"''" + b"\\'" + b"\x00" + b"0\x007\x00\x008" + b"\r\n\r" + b"'"
    for payload in (tricky, b"'", b"", b"\\", b"\x00", b"a''"):
        source = b"# -*- coding: latin-1 -*-\nx = '''" + _literal(payload).encode("latin-1") + b"'''\n"
        namespace = {}
        exec(compile(source, "wrapper", "exec"), namespace)
        assert namespace["x"].encode("latin-1") == payload, payload
    for source in ("a = 'x'", "x\\", "s = r'\\n'\n", "a'''b", "q = \"'\"\n"):
        assert ast.literal_eval(_source_literal(source)) == source


def test_the_record_config_is_the_embedded_one_with_the_environment_applied():
    embedded = {"train": {"iterations": 10, "seq_len": 64}, "budget": {"train_seconds": 600.0},
                "data": {"name": "demo", "vocab_size": 1024}}
    data = {"root": "./data/datasets/demo", "train": "t_*.bin", "val": "v_*.bin", "tokenizer": "tok.model"}
    cfg = record_config(embedded, data, {"ITERATIONS": "7", "MAX_WALLCLOCK_SECONDS": "90", "DATA_PATH": "/d"})
    assert (cfg.seed, cfg.train.iterations, cfg.train.seq_len, cfg.budget.train_seconds) == (1337, 7, 64, 90.0)
    assert (cfg.data.val_pattern, cfg.data.tokenizer_path, cfg.data.val_bytes_pattern) == (
        "/d/v_*.bin", "/d/tok.model", "")
    assert record_config(embedded, data, {"SEED": "42"}).seed == 42 and embedded["train"]["iterations"] == 10


def _embedded(*overrides: str) -> dict:
    plain, _ = train_script(_cfg(*overrides, "export.code=plain"))
    line = next(line for line in plain.decode("utf-8").splitlines() if line.startswith("CONFIG = "))
    return ast.literal_eval(line[len("CONFIG = "):])


def test_the_embedded_config_holds_what_its_code_reads_and_the_whole_arch():
    config = _embedded("+experiment=cpu_demo", "quant=gptq_int6")
    # read as getattr(quant, f"bits_{category}") by golf.quant.intn: no word of the code names them
    assert {"bits_attn", "bits_mlp", "bits_embed", "bits_other", "sdclip_k_attn"} <= config["quant"].keys()
    assert config["quant"]["gptq_block_size"] == 128 and config["train"]["iterations"] > 0
    # the artifact stores every arch field: the group stays whole
    assert config["arch"].keys() == {f.name for f in dataclasses.fields(_cfg("+experiment=cpu_demo").arch)}
    # no embedded module reads these without TTT, n-gram tilt or checkpoints
    assert "lora_rank" not in config["ttt"] and "boost" not in config["eval"].get("ngram_tilt", {})
    assert "checkpoint_every_minutes" not in config["train"]
    assert "lora_rank" in _embedded("+experiment=cpu_demo", "ttt=lora")["ttt"]


def test_the_script_is_the_same_for_every_seed_and_names_no_machine_path():
    a, _ = train_script(_cfg("+experiment=cpu_demo", "seed=1"))
    b, _ = train_script(_cfg("+experiment=cpu_demo", "seed=2"))
    assert a == b
    plain, _ = train_script(_cfg("+experiment=cpu_demo", "export.code=plain"))
    text = plain.decode("utf-8")
    assert "/tmp/demo" not in text and "'root': './data/datasets/demo'" in text
    config = ast.literal_eval(next(line for line in text.splitlines() if line.startswith("CONFIG = "))[9:])
    assert "seed" not in config and "paths" not in config and config["data"] == {"name": "demo", "vocab_size": 1024}


def test_a_compressed_record_names_the_problem_without_golf_s_fix(tmp_path):
    """golf's fixes name its commands and config keys, which a record cannot take: the compressed script says
    the problem only; the plain one keeps golf's full message."""
    for code_format in ("plain", "lzma"):
        script, _ = train_script(_cfg("+experiment=cpu_demo", f"export.code={code_format}"))
        (tmp_path / code_format).mkdir()
        (tmp_path / code_format / "train_gpt.py").write_bytes(script)
        env = {**os.environ, "DATA_PATH": str(tmp_path / "no_data")}
        proc = subprocess.run([sys.executable, "train_gpt.py"], cwd=tmp_path / code_format, env=env,
                              capture_output=True, text=True, timeout=300)
        line = proc.stderr.strip().splitlines()[-1]
        assert proc.returncode == 1 and line.startswith("error: tokenizer ") and " not found" in line, proc.stderr
        assert ("python -m golf.data.fineweb" in line) == (code_format == "plain"), line
