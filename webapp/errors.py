"""The error a job raises to fail its run with a reason written for a person."""

from __future__ import annotations


class JobError(ValueError):
    """A run cannot go on, for a reason its message states plainly (no data, no SQL)."""
