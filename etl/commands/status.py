"""`tol status`: the state of every shard plan, or of one in detail."""

from __future__ import annotations

import click

from etl.commands.state import State, pass_state


@click.command("status")
@click.argument("plan", required=False)
@pass_state
def status_command(state: State, plan: str | None) -> None:
    """Shards pending / claimed / done / failed, samples written, rate and ETA (safe while workers run).

    \b
    Example:
      tol status
      watch -n 10 tol status main-train
    """
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
