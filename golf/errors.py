"""User-facing errors.

Every error a user can cause (bad override, missing data, corrupt shard, over-budget artifact)
is raised as a GolfError whose message names the problem and the fix. The entrypoint prints
these as one line, without a traceback; anything else is a bug and keeps its traceback.
"""


class GolfError(Exception):
    """An error the user can fix; the message says what is wrong and how to fix it."""


class ConfigError(GolfError):
    """A config value is invalid or inconsistent with another one."""


class DataError(GolfError):
    """Shards, tokenizer or dataset are missing, corrupt or inconsistent."""


class ArtifactError(GolfError):
    """The artifact is over budget, corrupt or cannot be reloaded."""
