"""Issue 15, item 2: errors cross process boundaries with their fields, and are found inside Ray's wrappers."""
from __future__ import annotations

import pickle

import pytest

from egostream.errors import InputError, Interrupted, PredictionCountError, describe_failure


@pytest.mark.parametrize("error", [InputError("f.pt", "rows", "empty"), InputError(None, None, "bare"),
                                   PredictionCountError("p.json", "results", ["a", "b"], ["z"])])
def test_input_errors_pickle_with_their_fields(error: InputError) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error) and str(copy) == str(error) and vars(copy) == vars(error)


def test_pickled_input_error_keeps_the_message_a_user_sees() -> None:
    copy = pickle.loads(pickle.dumps(PredictionCountError("p.json", "results", ["a"], [])))
    assert str(copy) == "p.json: results: 1 missing (first: a)" and copy.missing == ["a"] and copy.path == "p.json"


def test_ray_task_errors_are_unwrapped_to_the_input_error() -> None:
    from ray.exceptions import RayTaskError

    cause = InputError("clip.mp4", "container", "cannot open video")
    wrapped = RayTaskError("StageActor.call", "Traceback (most recent call last):\n  ...", cause)
    for error in (wrapped, wrapped.as_instanceof_cause()):
        assert describe_failure(error) == "clip.mp4: container: cannot open video"
    chained = RuntimeError("stage died")
    chained.__cause__ = wrapped
    assert describe_failure(chained) == "clip.mp4: container: cannot open video"


def test_unwritable_files_are_expected_failures_and_bugs_are_not() -> None:
    assert describe_failure(PermissionError(13, "Permission denied", "/ro/out.json")) == (
        "/ro/out.json: Permission denied")
    assert describe_failure(ValueError("a bug")) is None and describe_failure(OSError("no file")) is None


def test_interrupts_carry_the_exit_status_of_their_signal() -> None:
    import signal

    assert Interrupted(signal.SIGINT).exit_status == 130 and Interrupted(signal.SIGTERM).exit_status == 143
    assert isinstance(Interrupted(), KeyboardInterrupt)
