"""`tol splits`: define and inspect train / val / train_small splits."""

from __future__ import annotations

import click

from etl.commands.state import Percent, State, TolGroup, pass_state


@click.group("splits", cls=TolGroup)
def splits_group() -> None:
    """Define and inspect train / val / train_small splits (SQL view `image_splits`).

    \b
    Example:
      tol splits create main --seed 17 --val-percent 5 --train-small-percent 10
      tol splits show main
    """


@splits_group.command("create")
@click.argument("name")
@click.option("--seed", default=17, show_default=True, type=int)
@click.option("--val-percent", default=5.0, show_default=True, type=Percent())
@click.option("--train-small-percent", default=10.0, show_default=True, type=Percent(),
              help="Share of train also in train_small.")
@pass_state
def splits_create(state: State, name: str, seed: int, val_percent: float, train_small_percent: float) -> None:
    """Record split definition NAME. A definition never changes; a new one needs a new name.

    An image's split depends only on the seed and its stable id, on either database, in any order.

    \b
    Example:
      tol splits create v1 --seed 17 --val-percent 5 --train-small-percent 10
      sqlite3 catalog.sqlite "SELECT split, COUNT(*) FROM image_splits WHERE split_name = 'v1' GROUP BY 1"
    """
    from etl import splits

    params, created = splits.create(state.engine(), name, seed, val_percent, train_small_percent)
    verb = "created" if created else "already exists, unchanged:"
    click.echo(f"split {name} {verb} seed {params.seed}, val {params.val_percent:g} %, "
               f"train_small {params.train_small_percent:g} % of train")


@splits_group.command("list")
@pass_state
def splits_list(state: State) -> None:
    """List split definitions.

    \b
    Example:
      tol splits list
    """
    from etl import splits

    engine = state.engine()
    for d in splits.list_definitions(engine):
        if d.kind == "release":
            counts = splits.release_counts(engine, d.id)
            click.echo(f"{d.name}\trelease\ttrain {counts['train']:,}\tval {counts['val']:,}\t"
                       f"train_small {counts['train_small']:,}\t({counts['catalogued']:,} catalogued)")
            continue
        click.echo(f"{d.name}\tseed {d.seed}\tval {d.val_percent:g} %\ttrain_small {d.train_small_percent:g} %")


@splits_group.command("show")
@click.argument("name")
@pass_state
def splits_show(state: State, name: str) -> None:
    """Counts of split NAME per split, source and kingdom, and val species never seen in train.

    \b
    Example:
      tol splits show main
    """
    from etl import splits

    for line in splits.report(state.engine(), name).lines():
        click.echo(line)
