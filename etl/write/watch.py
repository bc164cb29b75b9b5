"""`tol status PLAN --watch`: a frame of a plan's write, redrawn every few seconds until the plan is finished.

A frame shows the shards by state, the rate over the last minute and the ETA, each worker's shard in hand with
the age of its claim (a claim whose lease has run out is marked stale: its worker stopped renewing it and
another worker will take it over), and the failed shards with their last error. Everything is read from the
catalog, so it is safe while workers run anywhere.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from etl.plan import get_plan
from etl.write.queue import Claimed, FailedShard, ShardQueue, ShardState, clock, plural

RATE_WINDOW_SECONDS = 60.0


@dataclass(frozen=True)
class Frame:
    """What one refresh of `tol status --watch` shows, read at `now` (epoch seconds)."""

    plan_name: str
    n_shards: int
    n_samples: int
    states: dict[ShardState, int]
    samples_written: int
    samples_last_minute: int
    claims: list[Claimed]
    failed: list[FailedShard]
    now: float

    @property
    def finished(self) -> bool:
        """No shard is pending or claimed: the plan is done, or done but for failed shards."""
        return self.states["pending"] + self.states["claimed"] == 0

    @property
    def rate(self) -> float:
        """Samples written per second over the last minute."""
        return self.samples_last_minute / RATE_WINDOW_SECONDS

    def lines(self) -> list[str]:
        """The frame as printed: totals, rate and ETA; shards in hand; failed shards."""
        s = self.states
        left = self.n_samples - self.samples_written
        eta = f"ETA {clock(left / self.rate)}" if self.rate > 0 and left > 0 else "ETA -"
        stamp = time.strftime("%H:%M:%S", time.localtime(self.now))
        out = [f"{self.plan_name} at {stamp}: {s['done']}/{plural(self.n_shards, 'shard')} done, {s['claimed']} "
               f"claimed, {s['pending']} pending, {s['failed']} failed; {self.samples_written:,}/"
               f"{self.n_samples:,} samples",
               f"  last minute: {self.rate:,.1f} samples/s; {eta}"]
        for claim in self.claims:
            age = self.now - claim.claimed_at
            stale = (f"  STALE: lease expired {self.now - claim.lease_until:.0f} s ago"
                     if claim.lease_until < self.now else "")
            out.append(f"  {claim.worker}: shard {claim.shard_index}, claimed {age:.0f} s ago{stale}")
        out += [failed.line() for failed in self.failed]
        return out


def read_frame(engine: Engine, plan_name: str, now: float | None = None) -> Frame:
    """Read the current frame of plan `plan_name` from the catalog."""
    moment = time.time() if now is None else now
    plan = get_plan(engine, plan_name)
    queue = ShardQueue(engine)
    return Frame(plan.name, plan.n_shards, plan.n_samples, queue.states(plan.id), queue.samples_written(plan.id),
                 queue.samples_written(plan.id, moment - RATE_WINDOW_SECONDS), queue.claims(plan.id),
                 queue.failed(plan.id), moment)


def watch(engine: Engine, plan_name: str, *, interval: float, once: bool, show: Callable[[list[str]], None],
          sleep: Callable[[float], None] = time.sleep) -> Frame:
    """Show a frame every `interval` seconds until the plan is finished (or just one with `once`); returns the
    last frame. Ctrl-C stops it with KeyboardInterrupt, as any command."""
    while True:
        frame = read_frame(engine, plan_name)
        show(frame.lines())
        if once or frame.finished:
            return frame
        sleep(interval)
