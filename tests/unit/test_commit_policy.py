"""The stream loop's commit cadence (services/common/commit.py): pure, time passed in."""

from __future__ import annotations

from services.common.commit import CommitPolicy


def test_nothing_to_commit_is_never_due() -> None:
    p = CommitPolicy(interval=0.02, max_inputs=500)
    assert not p.due(100.0, 0)
    assert p.wait(100.0, 0) is None


def test_after_an_idle_spell_the_first_input_commits_at_once() -> None:
    p = CommitPolicy(interval=0.02, max_inputs=500)
    p.committed(10.0)
    assert p.due(10.5, 1)
    assert p.wait(10.5, 1) == 0.0


def test_under_load_commits_are_paced_by_the_interval_after_the_last_one() -> None:
    p = CommitPolicy(interval=0.02, max_inputs=500)
    p.committed(10.0)
    assert not p.due(10.005, 3)
    assert abs((p.wait(10.005, 3) or 0) - 0.015) < 1e-9
    assert p.due(10.021, 3)


def test_a_full_transaction_commits_at_once_whatever_the_interval() -> None:
    p = CommitPolicy(interval=10.0, max_inputs=500)
    p.committed(10.0)
    assert not p.due(10.001, 499)
    assert p.due(10.001, 500)
    assert p.wait(10.001, 500) == 0.0


def test_outputs_without_inputs_are_committed_too() -> None:
    """A timer (tick) produced records: they go out on the same cadence."""
    p = CommitPolicy(interval=0.02, max_inputs=500)
    p.committed(10.0)
    assert not p.due(10.01, 0, has_outputs=True)
    assert p.due(10.03, 0, has_outputs=True)


def test_zero_interval_commits_every_poll() -> None:
    p = CommitPolicy(interval=0.0, max_inputs=500)
    p.committed(10.0)
    assert p.due(10.0, 1)
