"""A job dir: the one owner of its file names and of loading its resolved config.

    config.yaml      resolved config (written by golf.train; every rank reads it)
    overrides.txt    the command-line overrides
    env.json         machine, packages, git state (allow-listed environment variables)
    results.json     the run's results (golf.logging.results: the declared layout)
    metrics.jsonl    every logged metric, one JSON object per line
    train.log        rank 0's log
    error.txt        the traceback of a failed run
    train_gpt.py     the record script this run counts as its code bytes (golf.record)
    artifact/model.golf   the artifact (golf.artifact.container)
    prequant.pt      unquantized weights (input of `python -m golf.quant`)
    ckpt/last.pt     training checkpoint (golf.checkpoint)
    ttt/, requant/   protocols and exports re-run on the finished job
    .lock            held while a process runs the job (golf.resume)
"""

from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

from golf.config.compose import typed
from golf.config.schema import GolfConfig
from golf.errors import ConfigError
from golf.record.script import SCRIPT_NAME
from golf.utils.atomic import remove_temp_files


@dataclass(frozen=True)
class JobDir:
    path: Path

    def __post_init__(self):
        object.__setattr__(self, "path", Path(self.path))

    config = property(lambda self: self.path / "config.yaml")
    overrides = property(lambda self: self.path / "overrides.txt")
    env = property(lambda self: self.path / "env.json")
    results = property(lambda self: self.path / "results.json")
    metrics = property(lambda self: self.path / "metrics.jsonl")
    train_log = property(lambda self: self.path / "train.log")
    error = property(lambda self: self.path / "error.txt")
    train_script = property(lambda self: self.path / SCRIPT_NAME)
    artifact = property(lambda self: self.path / "artifact" / "model.golf")
    prequant = property(lambda self: self.path / "prequant.pt")
    checkpoint = property(lambda self: self.path / "ckpt" / "last.pt")
    ttt_dir = property(lambda self: self.path / "ttt")
    requant_dir = property(lambda self: self.path / "requant")
    lock = property(lambda self: self.path / ".lock")

    def remove_temp_files(self) -> list[Path]:
        """The temp files of atomic writes a killed process left (golf.utils.atomic); only under the job's lock."""
        return remove_temp_files([self.path, self.checkpoint.parent, self.artifact.parent])

    def resolved_config(self) -> dict:
        """config.yaml as plain data (what the config hash is computed over)."""
        if not self.config.is_file():
            raise ConfigError(f"{self.path} is not a golf job dir (no config.yaml); pass outputs/runs/<run> or a "
                              f"job dir of outputs/multirun/<sweep>/")
        config = OmegaConf.to_container(OmegaConf.load(self.config))
        if isinstance(config.get("resume"), str):  # job dirs from before `resume` became a group
            config["resume"] = {"mode": config["resume"]}
        return config

    def load_config(self) -> GolfConfig:
        """The typed config every rank of this job runs with."""
        return typed(self.resolved_config())
