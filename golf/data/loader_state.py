"""Where a training loader stands in its data: saved in every checkpoint and put back on resume.

Only golf's jobs checkpoint and resume (golf.checkpoint), so this is not part of a record script's counted
code: the loaders themselves only read (golf.data.loader, golf.data.coprime_loader). The state is plain data, as a
checkpoint stores it; putting back a state written over other shards is a DataError naming the shards.
"""

from golf.data.coprime_loader import CoprimeLoader, ShardCursor
from golf.data.loader import DistributedTokenLoader, TokenStream
from golf.data.shards import load_shard
from golf.errors import DataError

_SAME_DATA = "resume with the same data option the run started with"


def loader_state(loader: DistributedTokenLoader | CoprimeLoader) -> dict:
    if isinstance(loader, CoprimeLoader):
        return {"rng": loader.rng.bit_generator.state, "batches_built": loader.batches_built,
                "cursors": [vars(c).copy() if c is not None else None for c in loader.cursors]}
    return {"file_index": loader.stream.file_index, "position": loader.stream.position}


def restore_loader(loader: DistributedTokenLoader | CoprimeLoader, state: dict) -> None:
    if isinstance(loader, CoprimeLoader):
        _restore_coprime(loader, state)
    else:
        restore_stream(loader.stream, state)


def restore_stream(stream: TokenStream, state: dict) -> None:
    file_index, position = int(state["file_index"]), int(state["position"])
    if not 0 <= file_index < len(stream.files):
        raise DataError(f"checkpoint data position points at shard #{file_index}, but only {len(stream.files)} "
                        f"shards match {stream.pattern}; {_SAME_DATA}")
    tokens = load_shard(stream.files[file_index])
    if not 0 <= position <= tokens.size:
        raise DataError(f"checkpoint data position {position} is past the end of {stream.files[file_index]} "
                        f"({tokens.size} tokens); {_SAME_DATA}")
    stream.file_index, stream.position, stream.tokens = file_index, position, tokens


def _restore_coprime(loader: CoprimeLoader, state: dict) -> None:
    if len(state["cursors"]) != len(loader.shards):
        raise DataError(f"checkpoint loader state covers {len(state['cursors'])} shards, but {len(loader.shards)} "
                        f"match {loader.pattern}; {_SAME_DATA}")
    loader.rng.bit_generator.state = state["rng"]
    loader.batches_built = int(state["batches_built"])
    loader.cursors = [_cursor(c) if c is not None else None for c in state["cursors"]]


def _cursor(fields: dict) -> ShardCursor:
    cursor = ShardCursor.__new__(ShardCursor)  # its fields as saved, without drawing a new pass
    cursor.__dict__.update(fields)
    return cursor
