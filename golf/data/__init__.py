"""Data: the official shard format, loaders, tokenizer checks, dataset builder, demo corpus and
FineWeb download."""
