import pytest

from webapp.engine.states import (
    FINISHED,
    TRANSITIONS,
    IllegalTransition,
    RunState,
    can_transition,
    check_transition,
)

S = RunState


@pytest.mark.parametrize("source,target", [
    (S.SCHEDULED, S.QUEUED), (S.QUEUED, S.INITIALIZING), (S.INITIALIZING, S.PROCESSING),
    (S.INITIALIZING, S.CANCELLED), (S.PROCESSING, S.PAUSED), (S.PAUSED, S.PROCESSING),
    (S.PAUSED, S.CANCELLED), (S.PROCESSING, S.COMPLETED), (S.PROCESSING, S.COLLECTING),
    (S.COLLECTING, S.COMPLETED), (S.PROCESSING, S.FAILED), (S.FAILED, S.QUEUED),
    (S.SCHEDULED, S.CANCELLED), (S.QUEUED, S.SKIPPED),
])
def test_allowed_transitions(source, target):
    assert can_transition(source, target)
    check_transition(source, target)


@pytest.mark.parametrize("source,target", [
    (S.PROCESSING, S.CANCELLED),  # must be paused first
    (S.COMPLETED, S.PROCESSING),
    (S.CANCELLED, S.QUEUED),
    (S.QUEUED, S.COMPLETED),
    (S.SCHEDULED, S.PROCESSING),
    (S.COLLECTING, S.PAUSED),
])
def test_illegal_transitions_are_refused_with_a_clear_error(source, target):
    assert not can_transition(source, target)
    with pytest.raises(IllegalTransition) as info:
        check_transition(source, target)
    assert f"a {source.value} run cannot become {target.value}" in str(info.value)


def test_finished_states_only_leave_through_retry():
    for state in FINISHED:
        allowed = TRANSITIONS[state]
        assert allowed <= {S.QUEUED}
        assert (state is S.FAILED) == bool(allowed)


def test_every_state_has_a_transition_entry():
    assert set(TRANSITIONS) == set(RunState)
