"""Download the official cached FineWeb export from the Hugging Face Hub, driven by its manifest.

    python -m golf.data.fineweb --variant sp1024|sp8192|sp8192_caseops [--train-shards N] [--out DIR] [--repo-id ID]
    python -m golf.data.fineweb --tokenizers-only [--variant V] [--out DIR]   # OUT/tokenizers/ only

The export (openai/parameter-golf `data/cached_challenge_fineweb.py` lineage) is a Hugging Face
*dataset* repo laid out as
    datasets/manifest.json
    datasets/datasets/fineweb10B_sp1024/fineweb_val_000000.bin, fineweb_train_000000.bin, ...
    datasets/tokenizers/fineweb_1024_bpe.model, fineweb_1024_bpe.vocab
where manifest.json lists
    {"datasets":   [{"name": "fineweb10B_sp1024", "tokenizer_name": "...",
                     "stats": {"files_train": 195, "files_val": 1, ...}, ...}, ...],
     "tokenizers": [{"name": "...", "model_path": "tokenizers/fineweb_1024_bpe.model",
                     "vocab_path": "tokenizers/fineweb_1024_bpe.vocab", ...}, ...]}
Everything below `datasets/` is mirrored into --out, the same layout as the official `data/`
directory: OUT/manifest.json, OUT/datasets/fineweb10B_sp1024/*.bin, OUT/tokenizers/*.model.
sp1024 lives in willdepueoai/parameter-golf, sp8192 in kevclark/parameter-golf; --repo-id or
$MATCHED_FINEWEB_REPO_ID overrides either. sp8192_caseops is the CaseOps export of PR #1729
(romeerp/parameter-golf-caseops-v1, used by every record from #1855 to #2135): its dataset entry names a
`val_bytes_glob`, and the per-token byte sidecar of every val shard (fineweb_val_bytes_NNNNNN.bin,
golf.data.byte_sidecar) is fetched with it. --tokenizers-only fetches every SentencePiece tokenizer the
manifests of the repos (or of --variant's) list, and no shards: the official tokenizers some tests check
golf's byte accounting and tokenizer spec against.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from golf.data.byte_sidecar import check_sidecar_alignment, sidecar_path
from golf.data.shards import read_shard_header
from golf.data.tokenizer import load_tokenizer
from golf.errors import DataError
from golf.logging.progress import Progress

REPO_ID_ENV = "MATCHED_FINEWEB_REPO_ID"
REMOTE_ROOT = "datasets"
DEFAULT_OUT = "data"
VARIANTS = {
    "sp1024": {"dataset": "fineweb10B_sp1024", "repo_id": "willdepueoai/parameter-golf"},
    "sp8192": {"dataset": "fineweb10B_sp8192", "repo_id": "kevclark/parameter-golf"},
    "sp8192_caseops": {"dataset": "fineweb10B_sp8192_lossless_caps_caseops_v1_reserved",
                       "repo_id": "romeerp/parameter-golf-caseops-v1", "byte_sidecar": True},
}
# The official exports' variants: what --tokenizers-only fetches unless --variant names another
OFFICIAL_VARIANTS = ("sp1024", "sp8192")

# fetch(repo_id, remote_path, local_path) puts the repo file `remote_path` at `local_path`.
Fetch = Callable[[str, str, Path], None]


def place_file(source: Path, destination: Path) -> None:
    """Atomically put `source`'s bytes at `destination`, hard-linking when possible to save disk."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    tmp = destination.with_name(f".{destination.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)
        os.replace(tmp, destination)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def hub_fetch(repo_id: str, remote_path: str, local_path: Path) -> None:
    """Download through the Hugging Face cache, then place the file at `local_path`."""
    from huggingface_hub import hf_hub_download  # imported lazily: only downloads need it

    cached = hf_hub_download(repo_id=repo_id, filename=remote_path, repo_type="dataset")
    # Cache entries are symlinks into the blob store; link the blob itself, not the symlink.
    place_file(Path(cached).resolve(strict=True), local_path)


def resolve_repo_id(variant: str, repo_id: str | None = None) -> str:
    return repo_id or os.environ.get(REPO_ID_ENV) or VARIANTS[variant]["repo_id"]


def _manifest_entry(manifest: dict, section: str, name: str, repo_id: str) -> dict:
    entry = next((e for e in manifest.get(section, []) if e.get("name") == name), None)
    if entry is None:
        available = ", ".join(str(e.get("name")) for e in manifest.get(section, [])) or "none"
        raise DataError(
            f"{REMOTE_ROOT}/manifest.json of {repo_id} lists no {section[:-1]} {name!r} "
            f"(it has: {available}); pass the repo that hosts it with --repo-id or ${REPO_ID_ENV}"
        )
    return entry


def _repo_relative(path: str, repo_id: str) -> str:
    # Manifest paths become local paths; refuse anything that would escape the output directory.
    parts = PurePosixPath(path).parts
    if not parts or PurePosixPath(path).is_absolute() or ".." in parts:
        raise DataError(f"manifest of {repo_id} has an unsafe file path {path!r}; use a trusted --repo-id")
    return PurePosixPath(path).as_posix()


def _is_complete(local_path: Path) -> bool:
    if local_path.suffix == ".bin":
        try:
            read_shard_header(local_path)
        except DataError:
            return False
        return True
    return local_path.is_file() and local_path.stat().st_size > 0


def _fetch(fetch: Fetch, repo_id: str, relative: str, out_dir: Path) -> Path:
    remote_path = f"{REMOTE_ROOT}/{relative}"
    local_path = out_dir / relative
    try:
        fetch(repo_id, remote_path, local_path)
    except OSError as exc:
        raise DataError(
            f"could not download {remote_path} from Hugging Face dataset repo {repo_id} "
            f"({' '.join(str(exc).split())}); check the network and rerun (finished files are kept), "
            f"or point --repo-id / ${REPO_ID_ENV} at a repo that has it"
        ) from exc
    return local_path


def _load_manifest(fetch: Fetch, repo_id: str, directory: Path) -> dict:
    manifest_path = _fetch(fetch, repo_id, "manifest.json", directory)
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(
            f"{manifest_path} from {repo_id} is not valid JSON ({exc}); rerun the download"
        ) from exc
    if not isinstance(manifest, dict):
        raise DataError(f"{manifest_path} from {repo_id} is not a dataset manifest; use a correct --repo-id")
    return manifest


def _tokenizer_files(tokenizer: dict, repo_id: str) -> list[str]:
    return [_repo_relative(tokenizer[key], repo_id) for key in ("model_path", "vocab_path") if tokenizer.get(key)]


def _fetch_missing(fetch: Fetch, repo_id: str, relative: str, out_dir: Path, downloaded: list, skipped: list) -> None:
    """Fetch `relative` unless a complete copy is there; shards are checked as they arrive."""
    if _is_complete(out_dir / relative):
        skipped.append(relative)
        return
    print(f"downloading {relative} from {repo_id}", flush=True)
    local_path = _fetch(fetch, repo_id, relative, out_dir)
    if relative.endswith(".bin"):
        read_shard_header(local_path)
    downloaded.append(relative)


def download_tokenizers(
    out_dir: str | Path = DEFAULT_OUT,
    variants: tuple[str, ...] = OFFICIAL_VARIANTS,
    repo_id: str | None = None,
    fetch: Fetch = hub_fetch,
) -> dict:
    """Fetch every SentencePiece tokenizer (entries with a model_path) that the manifests of the repos of
    `variants` list into `out_dir`, skipping files already complete; no shards. Returns a summary."""
    out_dir = Path(out_dir)
    downloaded, skipped, models = [], [], []
    for repo in dict.fromkeys(resolve_repo_id(variant, repo_id) for variant in variants):
        with tempfile.TemporaryDirectory() as scratch:  # OUT/manifest.json stays the dataset download's
            manifest = _load_manifest(fetch, repo, Path(scratch))
        for tokenizer in manifest.get("tokenizers", []):
            if not tokenizer.get("model_path"):
                continue
            files = _tokenizer_files(tokenizer, repo)
            for relative in files:
                _fetch_missing(fetch, repo, relative, out_dir, downloaded, skipped)
            load_tokenizer(out_dir / files[0])
            models.append(str(out_dir / files[0]))
    if not models:
        raise DataError(f"the manifests of {', '.join(variants)} list no SentencePiece tokenizer; use a complete "
                        f"--repo-id or ${REPO_ID_ENV}")
    return {"tokenizers": models, "downloaded": downloaded, "skipped": skipped}


def download_fineweb(
    variant: str,
    train_shards: int,
    out_dir: str | Path = DEFAULT_OUT,
    repo_id: str | None = None,
    fetch: Fetch = hub_fetch,
) -> dict:
    """Fetch the manifest, the tokenizer, every val shard and the first `train_shards` train
    shards into `out_dir`, skipping files already complete; return a summary."""
    if variant not in VARIANTS:
        raise DataError(f"unknown FineWeb variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    if train_shards < 0:
        raise DataError(f"--train-shards {train_shards} must be >= 0")
    repo_id = resolve_repo_id(variant, repo_id)
    out_dir = Path(out_dir)
    dataset_name = VARIANTS[variant]["dataset"]

    # Always refetched: it is small, and a stale copy could hide newly published shards.
    manifest = _load_manifest(fetch, repo_id, out_dir)
    dataset = _manifest_entry(manifest, "datasets", dataset_name, repo_id)
    tokenizer = _manifest_entry(manifest, "tokenizers", dataset.get("tokenizer_name"), repo_id)
    stats = dataset.get("stats") or {}
    if "files_train" not in stats or "files_val" not in stats:
        raise DataError(
            f"manifest entry {dataset_name} of {repo_id} lacks stats.files_train/files_val; "
            f"use a complete --repo-id"
        )
    available_train = int(stats["files_train"])
    if train_shards > available_train:
        raise DataError(
            f"{variant} has only {available_train} train shards on {repo_id}; lower --train-shards"
        )
    if not tokenizer.get("model_path"):
        raise DataError(
            f"tokenizer {tokenizer['name']} in the manifest of {repo_id} has no model_path; "
            f"use a complete --repo-id"
        )

    sidecar = VARIANTS[variant].get("byte_sidecar", False)
    if sidecar and not dataset.get("val_bytes_glob"):
        raise DataError(f"manifest entry {dataset_name} of {repo_id} has no val_bytes_glob: the export has no byte "
                        f"sidecar, so BPB could not count the original bytes; use the CaseOps export repo")
    tokenizer_files = _tokenizer_files(tokenizer, repo_id)
    val_files = [f"datasets/{dataset_name}/fineweb_val_{i:06d}.bin" for i in range(int(stats["files_val"]))]
    sidecar_files = [sidecar_path(f).as_posix() for f in val_files] if sidecar else []
    train_files = [f"datasets/{dataset_name}/fineweb_train_{i:06d}.bin" for i in range(train_shards)]
    downloaded, skipped = [], []
    files = tokenizer_files + val_files + sidecar_files + train_files
    with Progress(len(files), f"download {variant}", "files") as progress:
        for relative in files:
            _fetch_missing(fetch, repo_id, relative, out_dir, downloaded, skipped)
            progress.update()
    tokenizer_path = out_dir / tokenizer_files[0]
    load_tokenizer(tokenizer_path)
    dataset_dir = out_dir / "datasets" / dataset_name
    if sidecar:
        check_sidecar_alignment(str(dataset_dir / "fineweb_val_[0-9]*.bin"),
                                str(dataset_dir / "fineweb_val_bytes_*.bin"))

    return {
        "repo_id": repo_id,
        "variant": variant,
        "tokenizer_path": str(tokenizer_path),
        "train_pattern": str(dataset_dir / "fineweb_train_*.bin"),
        "val_pattern": str(dataset_dir / "fineweb_val_[0-9]*.bin"),
        "val_bytes_pattern": str(dataset_dir / "fineweb_val_bytes_*.bin") if sidecar else "",
        "train_shards": len(train_files),
        "val_shards": len(val_files),
        "train_tokens": sum(read_shard_header(out_dir / f) for f in train_files),
        "val_tokens": sum(read_shard_header(out_dir / f) for f in val_files),
        "downloaded": downloaded,
        "skipped": skipped,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m golf.data.fineweb", description=__doc__.split("\n")[0])
    parser.add_argument("--variant", choices=sorted(VARIANTS), help="required unless --tokenizers-only")
    parser.add_argument(
        "--train-shards", type=int, default=80, help="train shards of 1e8 tokens (default 80)"
    )
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"output directory (default ./{DEFAULT_OUT})")
    parser.add_argument(
        "--repo-id", help=f"Hugging Face dataset repo (default per variant, or ${REPO_ID_ENV})"
    )
    parser.add_argument("--tokenizers-only", action="store_true",
                        help="only the official tokenizers (sp1024, sp8192; or --variant's), into OUT/tokenizers/")
    args = parser.parse_args(argv)
    if args.variant is None and not args.tokenizers_only:
        parser.error("--variant is required (or pass --tokenizers-only)")
    try:
        if args.tokenizers_only:
            variants = (args.variant,) if args.variant else OFFICIAL_VARIANTS
            summary = download_tokenizers(args.out, variants, args.repo_id)
        else:
            summary = download_fineweb(args.variant, args.train_shards, args.out, args.repo_id)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.tokenizers_only:
        print(f"tokenizers: {len(summary['downloaded'])} files downloaded, {len(summary['skipped'])} already present")
        for path in summary["tokenizers"]:
            print(f"  {path}")
        return 0
    print(
        f"{summary['variant']} from {summary['repo_id']}: {len(summary['downloaded'])} files downloaded, "
        f"{len(summary['skipped'])} already present"
    )
    for split in ("val", "train"):
        shards, tokens, pattern = (summary[f"{split}_{key}"] for key in ("shards", "tokens", "pattern"))
        print(f"  {split:5} {shards} shards, {tokens:,} tokens  {pattern}")
    if summary["val_bytes_pattern"]:
        print(f"  val byte sidecar  {summary['val_bytes_pattern']}")
    print(f"  tokenizer {summary['tokenizer_path']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
