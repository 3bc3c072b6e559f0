import pytest

from tests.conftest import no_database
from webapp.rules.states import (
    FINISHED,
    TRANSITIONS,
    IllegalTransition,
    RunState,
    can_transition,
    check_transition,
)

pytestmark = no_database

S = RunState


@pytest.mark.parametrize(
    "source,target",
    [
        (S.SCHEDULED, S.QUEUED),
        (S.QUEUED, S.INITIALIZING),
        (S.INITIALIZING, S.PROCESSING),
        (S.INITIALIZING, S.CANCELLED),
        (S.PROCESSING, S.PAUSED),
        (S.PAUSED, S.PROCESSING),
        (S.PAUSED, S.CANCELLED),
        (S.PROCESSING, S.COMPLETED),
        (S.PROCESSING, S.COLLECTING),
        (S.COLLECTING, S.COMPLETED),
        (S.PROCESSING, S.FAILED),
        (S.FAILED, S.QUEUED),
        (S.SCHEDULED, S.CANCELLED),
        (S.QUEUED, S.SKIPPED),
        (S.PROCESSING, S.CANCELLED),  # Stop: halted at a batch boundary and cancelled there
        (S.FAILED, S.PROCESSING),  # a group run reopens at its failed step (it has no worker)
    ],
)
def test_allowed_transitions(source, target):
    assert can_transition(source, target)
    check_transition(source, target)


@pytest.mark.parametrize(
    "source,target",
    [
        (S.COMPLETED, S.PROCESSING),
        (S.CANCELLED, S.QUEUED),
        (S.QUEUED, S.COMPLETED),
        (S.SCHEDULED, S.PROCESSING),
        (S.COLLECTING, S.PAUSED),
    ],
)
def test_illegal_transitions_are_refused_with_a_clear_error(source, target):
    assert not can_transition(source, target)
    with pytest.raises(IllegalTransition) as info:
        check_transition(source, target)
    assert f"a {source.value} run cannot become {target.value}" in str(info.value)


def test_finished_states_only_leave_through_retry():
    for state in FINISHED:
        allowed = TRANSITIONS[state]
        assert allowed <= {S.QUEUED, S.PROCESSING}
        assert (state is S.FAILED) == bool(allowed)


def test_every_state_has_a_transition_entry():
    assert set(TRANSITIONS) == set(RunState)


def test_the_readme_state_table_is_the_engines():
    from pathlib import Path

    from webapp.rules.states import transition_table

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- run-states:begin -->\n")[1].split("\n<!-- run-states:end -->")[0]
    assert block == transition_table(), "regenerate it: python -m webapp.rules.states"


def test_no_engine_move_goes_through_an_intermediate_state():
    """Each change of state the engine makes is one legal move (no pause-then-cancel or
    queue-then-process pairs standing in for a missing transition)."""
    import re
    from pathlib import Path

    engine = Path(__file__).resolve().parents[1] / "webapp" / "engine"
    for module in engine.glob("*.py"):
        lines = module.read_text(encoding="utf-8").splitlines()
        moves = [
            i
            for i, line in enumerate(lines)
            if re.search(r"\bmove\(", line) and not line.lstrip().startswith("def ")
        ]
        for first, second in zip(moves, moves[1:], strict=False):
            same_run = (
                lines[first].split("move(")[1].split(",")[0] == lines[second].split("move(")[1].split(",")[0]
            )
            assert not (second - first <= 2 and same_run), (
                f"{module.name}:{first + 1}: two moves of one run in a row"
            )
