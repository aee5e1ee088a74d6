"""User-facing errors.

Every error a user can cause (bad override, missing data, corrupt shard, over-budget artifact)
is raised as a GolfError whose message names the problem and the fix. The entrypoint prints
these as one line, without a traceback; anything else is a bug and keeps its traceback.

Code a record script embeds passes a fix that names golf's commands or config keys as `fix=`: such a fix
is no use to whoever runs the record (its config is fixed, golf's CLI absent), so the compressed script leaves
it out (golf.record.minify) and says the problem only.
"""


class GolfError(Exception):
    """An error the user can fix: what is wrong, then (`fix`) how to fix it."""

    def __init__(self, problem: str, fix: str = ""):
        super().__init__(f"{problem}; {fix}" if fix else problem)


class ConfigError(GolfError):
    """A config value is invalid or inconsistent with another one."""


class DataError(GolfError):
    """Shards, tokenizer or dataset are missing, corrupt or inconsistent."""


class ArtifactError(GolfError):
    """The artifact is over budget, corrupt or cannot be reloaded."""
