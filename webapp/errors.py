"""The error a job raises to fail its run with a reason written for a person, and the signals a
run's context raises at a batch boundary (the job type may catch them to tidy up)."""

from __future__ import annotations


class JobError(ValueError):
    """A run cannot go on, for a reason its message states plainly (no data, no SQL)."""


class RunStopped(Exception):
    """Raised at a batch boundary when someone asked the run to stop."""


class RunPaused(Exception):
    """Raised at a batch boundary when someone asked the run to pause."""
