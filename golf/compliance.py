"""The compliance block of results.json: every check computed from what the run observed.

Sources: the artifact bytes written (its size and the record script's size), the training loop's
measured times, the data access log (which files each reader opened, in which phase; golf.data.access),
the train/val overlap scan done before training (golf.data.disjoint), the legality ledger of the headline
protocol (what the scorer summed, what the val stream handed to adaptations; golf.eval.ledger) and the
headline protocol's eval time. docs/compliance.md explains each check; tests/test_compliance.py makes
each one fail.
"""


def eval_timer(budget, scored_seconds: float, protocol: str, world_size: int) -> dict:
    """What the official eval timer would count for the headline protocol (artifact load to final BPB) on
    budget.devices devices: measured on `world_size`, scaled linearly when fewer devices were used."""
    seconds = scored_seconds * world_size / budget.devices if world_size < budget.devices else scored_seconds
    return {"protocol": protocol, "measured_s": round(scored_seconds, 3), "devices": world_size,
            "budget_devices": budget.devices, "seconds": round(seconds, 3),
            "scaling": "linear in devices" if world_size < budget.devices else "as measured"}


def data_checks(access_log, val_files: set[str], overlap: dict | None) -> dict:
    """Train/val disjointness, training data read outside the training time, val data in calibration.
    `overlap`: golf.data.disjoint's summary from before training (None: not checked, which fails)."""
    shared = (overlap or {}).get("shared_files", [])
    with_docs = (overlap or {}).get("files_with_val_documents", {})
    train_files_tainted = set(shared) | set(with_docs)
    trained_on = set(access_log.files("train"))
    bad_train = sorted(trained_on & (train_files_tainted | val_files))
    late = [r.path for r in access_log.reads if r.reader in ("train", "calibration") and r.phase == "outside"]
    calib = set(access_log.files("calibration"))
    val_in_calib = sorted(calib & (train_files_tainted | val_files))
    return {
        "train_val_disjoint": {
            "pass": overlap is not None and not shared and not with_docs and not bad_train,
            "value": {"shared_files": shared, "files_with_val_documents": with_docs, "val_files_trained_on": bad_train,
                      "checked": overlap is not None}},
        "train_data_after_cap": {
            "pass": not late,
            "value": {"reads_outside_training_time": len(late), "files": sorted(set(late))[:5]},
            **({"reason": "training data was read after training ended (GPTQ calibration outside the training-time "
                          "reserve: set quant.calib_reserve_s)"} if late else {})},
        "no_val_in_calibration": {"pass": not val_in_calib, "value": {"val_files_read": val_in_calib}},
    }


def compliance(cfg, artifact: dict, outcome, scores, timer: dict, data: dict) -> dict:
    """{compliant, budget, checks}; every check {pass, value, ...}."""
    b = cfg.budget
    headline = scores.headline_result
    ledger_checks = dict(headline["checks"])
    # The val stream's calibration reads (a protocol quantizing on val) and the files calibration opened.
    val_calibration = ledger_checks.pop("no_val_in_calibration")
    data = dict(data)
    data["no_val_in_calibration"] = {
        "pass": data["no_val_in_calibration"]["pass"] and val_calibration["pass"],
        "value": {**data["no_val_in_calibration"]["value"], "val_tokens_read": val_calibration["value"]}}
    checks = {
        "artifact_under_limit": {"pass": artifact["bytes_total"] <= b.artifact_limit_bytes,
                                 "value": artifact["bytes_total"], "limit": b.artifact_limit_bytes},
        "full_validation_split": {"pass": cfg.eval.max_seqs == 0, "value": headline["tokens"]},
        # The official cap rule: training stops at the first step that ends past the cap, so the last step may end
        # after it; what must hold is that no step started after it.
        "train_under_budget": {"pass": b.train_seconds <= 0 or outcome.train_seconds <= b.train_seconds
                               or outcome.last_step_start_s < b.train_seconds,
                               "value": round(outcome.train_seconds, 3), "limit": b.train_seconds,
                               "last_step_started_s": round(outcome.last_step_start_s, 3)},
        "eval_under_budget": {"pass": b.eval_seconds <= 0 or timer["seconds"] <= b.eval_seconds,
                              "value": timer["seconds"], "limit": b.eval_seconds, "timer": timer},
        **data,
        **ledger_checks,
    }
    if scores.ttt is not None and not scores.ttt["legal"]:
        checks["legal_ttt_protocol"] = {"pass": False, "value": scores.ttt["reason"]}
    failed = [name for name, check in checks.items() if not check["pass"]]
    return {"compliant": not failed, "budget": b.name, "failed": failed, "checks": checks}
