"""When the stream loop commits its open transaction: a pure policy, shared by the services and the
bench's pipeline skeleton (bench/skeleton.py), so that both commit the same way.

The loop keeps one transaction open across polls and commits it when `due()` says so:

- at once when the loop has been idle: the previous commit ended at least `interval` ago, so a
  contact arriving on a quiet system waits for one commit round trip and nothing else;
- otherwise `interval` after the previous commit ended: under load the commits are paced to at
  most one per `interval` + one round trip, whatever the rate, and every transaction carries what
  arrived meanwhile (fewer, larger transactions: the broker's cost is per transaction);
- at once when `max_inputs` inputs are pending (bounds a transaction's size and a replay's).

Measured (bench/skeleton.py, docs/decisions/0002-commit-cadence.md): a commit per poll cost the
broker a transaction per message at low rates and queued transactions behind each other at high
rates; a fixed wait added the whole wait at every hop even when idle. Kafka Streams commits every
100 ms under exactly-once (commit.interval.ms); 20 ms is our default (SWITCHBOARD_COMMIT_INTERVAL_MS).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class CommitPolicy:
    interval: float = 0.020
    max_inputs: int = 500
    last_commit_end: float = float("-inf")

    def due(self, now: float, pending_inputs: int, has_outputs: bool = False) -> bool:
        """Whether the open transaction (holding `pending_inputs` inputs, and outputs if
        `has_outputs`) should be committed now."""
        if pending_inputs <= 0 and not has_outputs:
            return False
        if pending_inputs >= self.max_inputs:
            return True
        return now - self.last_commit_end >= self.interval

    def wait(self, now: float, pending_inputs: int, has_outputs: bool = False) -> float | None:
        """Seconds until the open transaction is due (0: now), or None with nothing to commit."""
        if pending_inputs <= 0 and not has_outputs:
            return None
        if pending_inputs >= self.max_inputs:
            return 0.0
        return max(0.0, self.last_commit_end + self.interval - now)

    def committed(self, now: float) -> None:
        self.last_commit_end = now
