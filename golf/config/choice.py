"""The base of every config option: a string that is also an Enum member."""

from enum import Enum


class Choice(str, Enum):
    """A config option: equal to, printed as and serialized as its value (`cfg.ttt.mode == "stream"`)."""

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)
