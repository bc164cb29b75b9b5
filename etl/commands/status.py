"""`tol status`: the state of every shard plan, or of one in detail, once or refreshed until it is finished."""

from __future__ import annotations

import sys

import click

from etl.commands.state import State, pass_state
from etl.errors import TolError, WorkLeftError


@click.command("status")
@click.argument("plan", required=False)
@click.option("--watch", is_flag=True, help="Redraw PLAN's state every --interval seconds until it is finished.")
@click.option("--interval", default=5.0, show_default=True, type=click.FloatRange(min=0.1),
              help="Seconds between two frames of --watch.")
@click.option("--once", is_flag=True, help="Print one frame of --watch and stop (for scripts).")
@pass_state
def status_command(state: State, plan: str | None, watch: bool, interval: float, once: bool) -> None:
    """Shards pending / claimed / done / failed, samples written, rate and ETA (safe while workers run).

    With --watch: per worker the shard in hand and the age of its claim (stale when its lease expired), the
    failed shards with their errors, the rate over the last minute and the ETA, until the plan is finished
    (exit 0, or 3 if shards failed) or Ctrl-C (exit 130).

    \b
    Example:
      tol status
      tol status main-train --watch --interval 10
    """
    if watch or once:
        if plan is None:
            raise TolError("--watch and --once need a PLAN")
        _watch(state, plan, interval, once)
        return
    from etl.plan import get_plan, plan_names
    from etl.write.queue import ShardQueue

    engine = state.engine()
    if plan is None:
        names = plan_names(engine)
        if not names:
            click.echo("no shard plans yet (tol shards plan)")
    else:
        names = [plan]
    queue = ShardQueue(engine)
    for name in names:
        for line in queue.status(get_plan(engine, name)).lines(detail=plan is not None):
            click.echo(line)


def _watch(state: State, plan: str, interval: float, once: bool) -> None:
    from etl.write.watch import watch

    redraw = not once and sys.stdout.isatty()

    def show(lines: list[str]) -> None:
        if redraw:
            click.clear()
        click.echo("\n".join(lines))

    frame = watch(state.engine(), plan, interval=interval, once=once, show=show)
    if frame.finished and frame.states["failed"]:
        raise WorkLeftError(f"plan {plan}: {frame.states['failed']} shards failed; retry with "
                            f"`tol shards retry {plan} && tol shards write {plan}`")
