"""How many views a video is tested with: temporal clips x spatial crops.

Kept free of torch so that reading the workflow (which builds protocol
settings) does not import it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Views:
    clips: int = 1
    crops: int = 1

    def __post_init__(self):
        if self.clips < 1 or self.crops < 1:
            raise ValueError(f"views need at least one clip and one crop, got {self.clips} x {self.crops}")

    @staticmethod
    def of(d: dict | None) -> Views:
        return Views(**(d or {}))

    def describe(self) -> dict:
        return {"clips": self.clips, "crops": self.crops}

    @property
    def n(self) -> int:
        return self.clips * self.crops
