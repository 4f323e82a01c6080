"""The ids of a plan's jobs before the scheduler gives them: job n (from 1) is ``JOBID_<n>``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import overload

JOB_ID = "JOBID_{}"
"""Placeholder for the id the scheduler gives job n (from 1) of a plan."""


def job_id(number: int) -> str:
    """The placeholder of job ``number`` (from 1) of a plan."""
    return JOB_ID.format(number)


def placeholders(count: int) -> list[str]:
    """``JOBID_1`` ... ``JOBID_<count>``: the ids a plan shows before anything is submitted."""
    return [job_id(n) for n in range(1, count + 1)]


class Placeholders(Sequence[str]):
    """``placeholders(count)`` without building the list: job n's placeholder on demand (a chain of n segments is
    planned in linear time)."""

    def __init__(self, count: int) -> None:
        self.size = count

    def __len__(self) -> int:
        return self.size

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...

    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        if isinstance(index, slice):
            return placeholders(self.size)[index]
        if not -self.size <= index < self.size:
            raise IndexError(index)
        return job_id(index % self.size + 1)
