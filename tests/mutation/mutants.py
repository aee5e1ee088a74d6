"""The curated mutants of the mutation check (`python -m tests.mutation.run`): small, realistic bugs in the code
that decides a leaderboard number, each with the tests that must catch it.

A mutant replaces `original`, which must occur exactly once in `path`, by `mutated`. When the code moves the
runner stops and names the stale entries: update the snippet (and keep the bug) rather than dropping it. New
critical code gets mutants here. `tests` are pytest arguments (files or node ids), the quickest that kill it.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str
    original: str
    mutated: str
    tests: tuple[str, ...]


MUON_GOLDEN = "tests/test_muon_golden.py"
TTT_UPDATE = "tests/test_ttt_update.py"
TTT_LEGALITY = "tests/test_ttt_legality.py"
BPB = "tests/test_bpb_trained_tokenizer.py"
SLIDING = "tests/test_sliding_eval.py"
REPORT_STATS = ("tests/test_report.py::test_p_values_are_one_sided_welch_and_paired_on_golden_samples",
                "tests/test_report.py::test_record_bar_needs_both_the_margin_and_the_p_value")
EXPORT = "tests/test_export.py"
COMPLIANCE = "tests/test_compliance.py"
ARTIFACT = "tests/test_artifact.py"
RESUME = "tests/test_fault_injection.py"
SIDECAR = "tests/test_bpb_sidecar.py"
TTT_PHASED = "tests/test_ttt_phased.py"
NGRAM_TILT = "tests/test_ngram_tilt.py"

# The table: bugs that passed the whole suite at dba08c0.
TABLE = [
    # Rows 1-4 (TTT order and range, ledger): map them to the order probes of the TTT protocols once those exist;
    # until then the legality tests, and for the stream protocol the first-principles update, whose scores must
    # come from the weights before each chunk's update.
    Mutant("stream TTT trains on a chunk before scoring it", "golf/ttt/stream.py",
           "        score_windows(model, shard(windows, ctx.rank, ctx.world_size), ctx, acc)\n",
           "        if index < len(chunks) - 1:\n"
           "            trainer.train_range(ctx.val, windows[0].scored[0], windows[-1].scored[1], cfg.epochs)\n"
           "        score_windows(model, shard(windows, ctx.rank, ctx.world_size), ctx, acc)\n",
           (TTT_UPDATE, TTT_LEGALITY)),
    Mutant("stream TTT trains on one target of the next, unscored chunk", "golf/ttt/stream.py",
           "trainer.train_range(ctx.val, a, b, cfg.epochs)", "trainer.train_range(ctx.val, a, b + 1, cfg.epochs)",
           (TTT_UPDATE, TTT_LEGALITY)),
    Mutant("stream TTT reads one token past each training sequence", "golf/ttt/training.py",
           "rows = [val.read(s, e + 1) for s, e in mine if e - s == length]",
           "rows = [val.read(s + 1, e + 2) for s, e in mine if e - s == length]", (TTT_LEGALITY,)),
    Mutant("LoRA TTT adapts on a chunk before scoring it", "golf/ttt/lora.py",
           "            self._score(active)\n",
           "            self._adapt(active)\n"
           "            self._score(active)\n",
           (TTT_LEGALITY,)),
    Mutant("ledger accepts an update in the phase of its score", "golf/eval/ledger.py",
           "is None or c >= e.clock]", "is None or c > e.clock]", (TTT_LEGALITY,)),
    Mutant("ledger takes a read's first token as revealed by its own position", "golf/eval/ledger.py",
           "return max(read.start - 1, 0), max(read.end - 1, 0)", "return read.start, max(read.end - 1, 0)",
           (TTT_LEGALITY,)),
    Mutant("Newton-Schulz coefficient 3.4445 -> 3.4", "golf/optim/muon.py",
           "NS5_COEFFS = (3.4445, -4.7750, 2.0315)", "NS5_COEFFS = (3.4, -4.7750, 2.0315)", (MUON_GOLDEN,)),
    Mutant("artifact limit checked on model bytes only", "golf/compliance.py",
           '"artifact_under_limit": {"pass": artifact["bytes_total"] <= b.artifact_limit_bytes,',
           '"artifact_under_limit": {"pass": artifact["bytes_model"] <= b.artifact_limit_bytes,', (COMPLIANCE,)),
    Mutant("paired t-test two-sided", "golf/report.py",
           'p = stats.ttest_1samp(diffs, 0.0, alternative="less").pvalue',
           'p = stats.ttest_1samp(diffs, 0.0).pvalue', REPORT_STATS),
    Mutant("submission val_bpb_std with ddof=0", "golf/export.py",
           '"val_bpb_std": statistics.stdev(bpbs) if', '"val_bpb_std": statistics.pstdev(bpbs) if', (EXPORT,)),
    Mutant("record compliant when any seed is", "golf/export.py",
           '"compliance": {"compliant": all(r["compliance"]["compliant"] for r in res),',
           '"compliance": {"compliant": any(r["compliance"]["compliant"] for r in res),', (EXPORT,)),
    Mutant("TTT cosine LR schedule dropped", "golf/ttt/stream.py",
           "set_lr(optimizer, cfg.lr, cosine(index / max(len(chunks) - 1, 1), cfg.lr_floor))",
           "set_lr(optimizer, cfg.lr, 1.0)",
           (TTT_UPDATE,)),
    Mutant("TTT loss not divided by the target count", "golf/ttt/training.py",
           "(nll / n_targets).backward()", "nll.backward()", (TTT_UPDATE,)),
    Mutant("leading space counted twice (+16.7% bytes)", "golf/eval/bpb.py",
           "            piece = piece[1:]\n", '            piece = " " + piece[1:]\n', (BPB,)),
]

# Realistic bugs the suite already caught at dba08c0, or that the tests of issue 25 catch.
REALISTIC = [
    Mutant("space byte counted after BOS", "golf/eval/bpb.py",
           "space = self.has_leading_space[targets] & ~self.is_boundary[inputs]",
           "space = self.has_leading_space[targets]", (BPB,)),
    Mutant("byte-fallback piece worth its piece text", "golf/eval/bpb.py",
           "            base_bytes[token_id] = 1\n            continue\n", "            pass\n", (BPB,)),
    Mutant("bpb with tokens and bytes swapped", "golf/eval/bpb.py",
           "val_loss / math.log(2.0) * tokens / nbytes", "val_loss / math.log(2.0) * nbytes / tokens", (BPB,)),
    Mutant("masked sum counts unscored positions", "golf/eval/bpb.py",
           "self.token_count += scored.sum()", "self.token_count += targets.numel()", (SLIDING,)),
    Mutant("every sliding window scores all its positions", "golf/eval/sliding.py",
           "Window(start, length, 0 if start == 0 else context)", "Window(start, length, 0)", (SLIDING,)),
    Mutant("sliding windows stop before the tail", "golf/eval/sliding.py",
           "while start == 0 or start + context < n_predictions:",
           "while start == 0 or start + seq_len < n_predictions:", (SLIDING,)),
    Mutant("rank shares overlap by one window", "golf/eval/sliding.py",
           "items[n * rank // world_size : n * (rank + 1) // world_size]",
           "items[n * rank // world_size : n * (rank + 1) // world_size + 1]", (SLIDING,)),
    Mutant("sliding windows feed the targets as inputs", "golf/eval/sliding.py",
           "                x[row, : w.length] = chunk[:-1]\n", "                x[row, : w.length] = chunk[1:]\n",
           (BPB,)),
    Mutant("non-overlapping eval: boundary rule reads the target as input", "golf/eval/full.py",
           "acc.add(nll, x, y, ctx.tables, target_bytes=nbytes)", "acc.add(nll, y, y, ctx.tables, target_bytes=nbytes)",
           (BPB,)),
    Mutant("int8 scale floor removed", "golf/artifact/int8.py",
           "scale = (clip / 127.0).clamp_min(1.0 / 127.0)", "scale = clip / 127.0", (ARTIFACT,)),
    Mutant("int8 control tensors stored fp16", "golf/artifact/int8.py",
           "            if name in control:\n", "            if name not in control:\n", (ARTIFACT,)),
    Mutant("int8 dequantize divides by the scale", "golf/artifact/int8.py",
           "w = q.float() * s.float().view(", "w = q.float() / s.float().view(", (ARTIFACT,)),
    Mutant("artifact checksum not verified", "golf/artifact/container.py",
           "if hashlib.sha256(payload).digest() != digest:", "if len(digest) != 32:", (ARTIFACT,)),
    Mutant("artifact sha256 read at the wrong offset", "golf/artifact/container.py",
           "return blob[6 + name_len : 6 + name_len + 32].hex()", "return blob[6 : 6 + 32].hex()", (ARTIFACT,)),
    Mutant("resume forgets the loader position", "golf/checkpoint.py",
           '        restore_loader(loader, mine["loader"])\n', "", (RESUME,)),
    Mutant("resume forgets the optimizer states", "golf/checkpoint.py",
           '            opt.load_state_dict(mine["optimizers"][key])\n', "            pass\n", (RESUME,)),
    Mutant("config hash includes resume", "golf/checkpoint.py",
           'kept = {k: v for k, v in resolved.items() if k != "resume"}', "kept = dict(resolved)", (RESUME,)),
    Mutant("report std over seeds with ddof=0", "golf/report.py",
           "return statistics.stdev(values) if len(values) > 1 else None",
           "return statistics.pstdev(values) if len(values) > 1 else None", REPORT_STATS),
    Mutant("Welch test assumes equal variances", "golf/report.py",
           "stats.ttest_ind(sample, baseline, equal_var=False,", "stats.ttest_ind(sample, baseline, equal_var=True,",
           REPORT_STATS),
    Mutant("report delta sign flipped", "golf/report.py",
           "delta = _mean(losses) - _mean(base_losses)", "delta = _mean(base_losses) - _mean(losses)", REPORT_STATS),
    Mutant("record bytes_total of the smallest seed", "golf/export.py",
           '"bytes_total": max(a.bytes_total for a in arts)', '"bytes_total": min(a.bytes_total for a in arts)',
           (EXPORT,)),
    Mutant("compliant when any check passes", "golf/compliance.py",
           'failed = [name for name, check in checks.items() if not check["pass"]]',
           'failed = [name for name, check in checks.items() if not check["pass"]][len(checks) - 1 :]',
           (COMPLIANCE,)),
    Mutant("calibration after training counted as inside it", "golf/compliance.py",
           'r.reader in ("train", "calibration") and r.phase == "outside"',
           'r.reader == "train" and r.phase == "outside"', (COMPLIANCE,)),
    Mutant("headline is always the round trip", "golf/pipeline.py",
           '    return "sliding" if cfg.eval.name == "sliding" else "roundtrip"', '    return "roundtrip"',
           (COMPLIANCE,)),
    Mutant("artifact forgets the depth the model was trained to", "golf/models/registry.py",
           "    model.load_step_state(contents.step_state)\n", "", (COMPLIANCE,)),
    Mutant("Muon without Nesterov momentum", "golf/optim/muon.py",
           "        return grad.add(buf, alpha=group[\"momentum\"]) if group[\"nesterov\"] else grad\n",
           "        return buf if group[\"nesterov\"] else grad\n",
           (MUON_GOLDEN,)),
    Mutant("Muon without the sqrt(rows / cols) scale", "golf/optim/muon.py",
           "scale = max(1, update.size(-2) / update.size(-1)) ** 0.5", "scale = 1", (MUON_GOLDEN,)),
    Mutant("TTT cosine off by one chunk", "golf/ttt/stream.py",
           "cosine(index / max(len(chunks) - 1, 1), cfg.lr_floor)",
           "cosine(index / max(len(chunks) - 2, 1), cfg.lr_floor)", (TTT_UPDATE,)),
    Mutant("TTT SGD without momentum", "golf/ttt/training.py",
           "torch.optim.SGD(param_groups, lr=cfg.lr, momentum=cfg.momentum,",
           "torch.optim.SGD(param_groups, lr=cfg.lr, momentum=0.0,", (TTT_UPDATE,)),
]

# A transformed dataset's bytes (CaseOps): the sidecar charged one token off, or not at all by one scorer.
SIDECAR_BYTES = [
    Mutant("byte sidecar charged to the input token, not the target", "golf/eval/val_stream.py",
           "self._token_bytes[start + 1 : end + 1]", "self._token_bytes[start:end]", (SIDECAR,)),
    Mutant("LoRA TTT scores with the tokenizer's bytes on a sidecar dataset", "golf/ttt/lora.py",
           "x, y, ctx.tables, mask, nbytes)", "x, y, ctx.tables, mask)", (SIDECAR,)),
    Mutant("a record script forgets the byte sidecar", "golf/record/script.py",
           'data["val_bytes"] = os.path.basename(d.val_bytes_pattern)', "pass", (SIDECAR,)),
]

# Phased TTT and the n-gram tilt (issue 23): look-aheads each causal probe must catch, and fidelity bugs.
EVAL_FRONTIER = [
    Mutant("phased TTT pauses one batch before its documents are scored", "golf/ttt/phased.py",
           "pauses.setdefault(end, []).append(count)", "pauses.setdefault(end - 1, []).append(count)",
           (TTT_LEGALITY, TTT_PHASED)),
    Mutant("phased global step trains on the whole queue", "golf/ttt/phased.py",
           "[docs[d] for d in queue[:count]]", "[docs[d] for d in queue]", (TTT_LEGALITY, TTT_PHASED)),
    Mutant("phased global step reads each document without its last target", "golf/ttt/phased.py",
           "ctx.val.read(start, end + 1)", "ctx.val.read(start, end)", (TTT_PHASED,)),
    Mutant("ledger clocks not aligned over ranks before a global step", "golf/eval/ledger.py",
           "            self.clock = max(clocks)\n", "", (TTT_PHASED,)),
    Mutant("headline ignores phased TTT", "golf/pipeline.py",
           'if cfg.ttt.mode in ("stream", "lora", "phased_lora"):', 'if cfg.ttt.mode in ("stream", "lora"):',
           (TTT_PHASED,)),
    Mutant("n-gram tilt hints the position's own target", "golf/eval/ngram_tilt.py",
           "top_token_before = token[leader].roll(1)", "top_token_before = token[leader]", (TTT_LEGALITY, NGRAM_TILT)),
    Mutant("n-gram tilt gate counts the position's own target", "golf/eval/ngram_tilt.py",
           "top_before = torch.where(first, 0, top_after.roll(1))", "top_before = top_after",
           (TTT_LEGALITY, NGRAM_TILT)),
    Mutant("n-gram tilt walks the val stream under a length-sorted queue", "golf/eval/ngram_tilt.py",
           "    return with_tilt(ctx, cfg, queue_order(ctx, ttt))\n", "    return with_tilt(ctx, cfg)\n",
           (TTT_LEGALITY,)),
    Mutant("n-gram tilt boosts without the new softmax", "golf/eval/ngram_tilt.py",
           "        return F.cross_entropy(tilted.reshape(-1, tilted.size(-1)), targets.reshape(-1),\n",
           "        bonus = (tilted - logits.float()).gather(-1, targets.unsqueeze(-1)).squeeze(-1)\n"
           "        return -bonus + F.cross_entropy(logits.float().reshape(-1, tilted.size(-1)),"
           " targets.reshape(-1),\n",
           (NGRAM_TILT,)),
]

MUTANTS = TABLE + REALISTIC + SIDECAR_BYTES + EVAL_FRONTIER
