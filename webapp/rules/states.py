"""Run states and the only place their transitions are decided (DESIGN.md "Run states")."""

from __future__ import annotations

import enum


class RunState(enum.StrEnum):
    """Where a run is in its life."""

    SCHEDULED = "scheduled"
    QUEUED = "queued"
    INITIALIZING = "initializing"
    PROCESSING = "processing"
    PAUSED = "paused"
    COLLECTING = "collecting"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"

    @property
    def label(self) -> str:
        return self.value.capitalize()

    @property
    def is_finished(self) -> bool:
        """No more work will happen (a failed run may still be retried)."""
        return self in FINISHED

    @property
    def is_running(self) -> bool:
        """A worker is (or should be) executing it right now."""
        return self in (RunState.INITIALIZING, RunState.PROCESSING)

    @property
    def is_pending(self) -> bool:
        return self in (RunState.SCHEDULED, RunState.QUEUED)

    @property
    def holds_job(self) -> bool:
        """While a run is in this state, no other run of the same job may start."""
        return self in (RunState.INITIALIZING, RunState.PROCESSING, RunState.PAUSED)


FINISHED = frozenset({RunState.COMPLETED, RunState.FAILED, RunState.CANCELLED, RunState.SKIPPED})
ACTIVE = frozenset(set(RunState) - FINISHED)

S = RunState
TRANSITIONS: dict[RunState, frozenset[RunState]] = {
    S.SCHEDULED: frozenset({S.QUEUED, S.CANCELLED, S.SKIPPED}),
    # a run whose extraction is done (resumed or retried) goes straight back to processing
    S.QUEUED: frozenset({S.INITIALIZING, S.PROCESSING, S.CANCELLED, S.FAILED, S.SKIPPED}),
    # cancel while initializing is an extraction cancel: nothing was processed yet
    S.INITIALIZING: frozenset({S.PROCESSING, S.CANCELLED, S.FAILED}),
    # Stop on a processing run: it halts at a batch boundary (the in-flight batch finishes, as
    # a pause would: the MessageGears rule) and is cancelled there, in one move
    S.PROCESSING: frozenset({S.PAUSED, S.CANCELLED, S.COLLECTING, S.COMPLETED, S.FAILED}),
    S.PAUSED: frozenset({S.PROCESSING, S.QUEUED, S.CANCELLED, S.FAILED}),
    S.COLLECTING: frozenset({S.COMPLETED, S.FAILED}),
    # retry continues from the checkpoint: queued again (a group run, which has no worker,
    # goes straight back to processing at its failed step)
    S.FAILED: frozenset({S.QUEUED, S.PROCESSING}),
    S.COMPLETED: frozenset(),
    S.CANCELLED: frozenset(),
    S.SKIPPED: frozenset(),
}


class IllegalTransition(ValueError):
    """A state change the run engine does not allow."""

    def __init__(self, source: RunState, target: RunState) -> None:
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[source])) or "nothing"
        super().__init__(f"a {source.value} run cannot become {target.value} (it can become: {allowed})")
        self.source = source
        self.target = target


def can_transition(source: RunState, target: RunState) -> bool:
    """Whether a run in `source` may move to `target`."""
    return target in TRANSITIONS[source]


def check_transition(source: RunState, target: RunState) -> None:
    """Raise IllegalTransition unless `source` may move to `target`."""
    if not can_transition(source, target):
        raise IllegalTransition(source, target)


def transition_table() -> str:
    """The transitions as a Markdown table (the README's "Run states" section is this text,
    checked by a test, so it cannot drift from the engine)."""
    lines = ["| a run that is | may become |", "|---|---|"]
    for source in RunState:
        targets = ", ".join(t.value for t in RunState if t in TRANSITIONS[source]) or "— (final)"
        lines.append(f"| {source.value} | {targets} |")
    return "\n".join(lines)


if __name__ == "__main__":  # python -m webapp.rules.states: the README's table
    print(transition_table())
