"""A seeded fault profile: the sandbox misbehaves the way real APIs and networks do, on a share of
all answers, reproducibly.

A scheduled refresh meets rate limits, 5xx, slow and hung answers, dropped connections and bodies
cut off on the way. The profile draws, for every request an emulator receives, whether it fails
and how, from a random generator seeded per emulator, so a failing run can be replayed. It is
configuration of the sandbox (`dora-pipeline sandbox --faults ...`, `demo --faults ...` or
`DORA_SANDBOX_FAULTS`), written as `key=value` pairs separated by commas:

    rate=0.3,seed=7,kinds=rate_limit+server_error+hang:0.5,hang_seconds=3

`kinds` are drawn in proportion to their weights (1 when not given). The transient kinds end in
the same data once the client has retried; `repeat_page` (a paginated answer repeats the previous
page) and `duplicate_record` (an answer carries one of its records twice) are bad data, which the
pipeline must refuse or set aside, never load.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, fields

TRANSIENT = ("rate_limit", "rate_limit_without_retry_after", "server_error", "slow", "hang", "reset", "truncate")
BAD_DATA = ("repeat_page", "duplicate_record")
KINDS = TRANSIENT + BAD_DATA


class FaultProfileError(ValueError):
    pass


@dataclass(frozen=True)
class FaultProfile:
    rate: float = 0.0
    seed: int = 0
    # (kind, weight) pairs
    kinds: tuple[tuple[str, float], ...] = tuple((kind, 1.0) for kind in TRANSIENT)
    slow_seconds: float = 0.3
    # longer than the client's request timeout, so the client gives up and tries again
    hang_seconds: float = 40.0
    retry_after_seconds: int = 1
    _weights: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise FaultProfileError(f"rate must be between 0 and 1, not {self.rate}")
        unknown = [kind for kind, _ in self.kinds if kind not in KINDS]
        if unknown:
            raise FaultProfileError(f"unknown fault kind {unknown[0]!r}; known: {', '.join(KINDS)}")
        if not self.kinds or any(weight <= 0 for _, weight in self.kinds):
            raise FaultProfileError("kinds needs at least one kind, each with a positive weight")
        object.__setattr__(self, "_weights", tuple(weight for _, weight in self.kinds))

    @classmethod
    def parse(cls, text: str) -> FaultProfile:
        """`rate=0.3,seed=7,kinds=hang:0.5+truncate` (see the module's docstring)."""
        numbers = {f.name: f.type for f in fields(cls) if f.name not in ("kinds", "_weights")}
        values: dict = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, _, value = part.partition("=")
            key, value = key.strip(), value.strip()
            try:
                if key == "kinds":
                    values["kinds"] = tuple(_kind(item) for item in value.split("+") if item.strip())
                elif key in numbers:
                    values[key] = int(value) if numbers[key] == "int" else float(value)
                else:
                    raise FaultProfileError(f"unknown setting {key!r}; known: kinds, {', '.join(numbers)}")
            except ValueError as exc:
                if isinstance(exc, FaultProfileError):
                    raise
                raise FaultProfileError(f"{key}={value!r} is not a number") from None
        return cls(**values)

    def generator(self, emulator: str) -> random.Random:
        """The draws of one emulator: the same seed gives the same sequence of faults."""
        return random.Random(f"{self.seed}:{emulator}")

    def draw(self, rng: random.Random) -> str | None:
        """The fault for the next request, or None to serve it as it is."""
        if self.rate <= 0 or rng.random() >= self.rate:
            return None
        return rng.choices([kind for kind, _ in self.kinds], weights=self._weights)[0]


def _kind(item: str) -> tuple[str, float]:
    name, _, weight = item.strip().partition(":")
    return name.strip(), float(weight) if weight else 1.0
