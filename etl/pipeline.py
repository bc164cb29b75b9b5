"""Whole-pipeline runs: `tol run` from a configuration, and `tol demo` on a generated sample collection.

Each stage is skipped when its work is already done: an ingest whose root was already ingested, a reference
file already loaded with the same content, a split or plan that exists, a plan whose shards are all written.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine

from etl import catalog, db, exclusions, provenance, schema, sources, splits, taxonomy
from etl.config import Config, resolve
from etl.errors import TolError
from etl.plan import DEFAULT_MIN_SHARDS, SPLITS, PlanOptions, create_plan, few_shards_warning, parse_size
from etl.sources.common import sha256_file
from etl.sources.licensing import provenance_settings

Echo = Callable[[str], None]


def _references_changed(engine, paths: dict[str, Path | None]) -> bool:
    with engine.connect() as connection:
        loaded = dict(connection.execute(text("SELECT name, sha256 FROM ref_resources")).all())
    for resource in taxonomy.RESOURCES:
        path = paths.get(resource.setting)
        if path is not None and path.is_file() and loaded.get(resource.name) != sha256_file(path):
            return True
    return False


def _provenance_changed(engine, paths: dict[str, Path | None]) -> bool:
    with engine.connect() as connection:
        loaded = dict(connection.execute(text("SELECT file, file_sha256 FROM source_provenance")).all())
        sources_loaded = connection.execute(text("SELECT COUNT(*) FROM source_provenance")).scalar_one()
    if sources_loaded == 0:
        return True
    return any(path is not None and path.exists() and loaded.get(str(path)) != provenance.files_sha256(path)
               for path in paths.values())


def names_and_licenses(engine: Engine, settings: Config, *, ingested: bool, echo: Callable[[str], None],
                       quiet: bool) -> None:
    """The stages between ingest and plans that `tol run` and `tol reproduce` share: load the reference files
    and name every image, then load the licenses, each only when its files changed or images were ingested."""
    paths = {r.setting: settings.path(r.setting) for r in taxonomy.RESOURCES}
    if _references_changed(engine, paths) or ingested:
        for result in taxonomy.load(engine, paths, settings.get_value("reference_reject_percent"),
                                    progress=not quiet):
            echo(f"taxa load {result.name}: {result.status if result.status != 'loaded' else f'{result.rows:,} rows'}")
        resolved = taxonomy.resolve(engine, progress=not quiet)
        echo(f"taxa resolve: {resolved.taxa} taxa, {resolved.named_images:,} images named, "
             f"{resolved.unnamed_images:,} not")
    else:
        echo("taxa: references unchanged, names already resolved")
    provenance_paths = {setting.name: settings.path(setting.name) for setting in provenance_settings()}
    if _provenance_changed(engine, provenance_paths) or ingested:
        for loaded in provenance.load(engine, provenance_paths, progress=not quiet):
            echo(loaded.lines()[-1])
    else:
        echo("licenses: files unchanged, already loaded")


def share_problem(option: str, value: float) -> str | None:
    """Why `value` cannot be the split share `option` (None if it can): a share must leave both parts
    non-empty, so it lies strictly between 0 and 100."""
    if not math.isfinite(value) or not 0 < value < 100:
        return f"{option} must be greater than 0 and less than 100, not {value}"
    return None


def check_run_options(settings: Config, *, split_name: str, seed: int, val_percent: float,
                      train_small_percent: float, samples_per_shard: int, size: str,
                      min_shards: int = DEFAULT_MIN_SHARDS) -> None:
    """Refuse, before the first stage runs, any option `run` would only trip over later (one line each)."""
    problems = [share_problem("--val-percent", val_percent),
                share_problem("--train-small-percent", train_small_percent)]
    if not re.match(splits.NAME_PATTERN, split_name):
        problems.append(f"--split-name {split_name!r} must be 1-64 letters, digits, '_', '.' or '-'")
    if not -(2**63) <= seed < 2**63:
        problems.append(f"--seed must fit in 64 bits, not {seed}")
    if samples_per_shard < 1:
        problems.append(f"--samples-per-shard must be at least 1, not {samples_per_shard}")
    if settings.get_value("workers") < 1:
        problems.append(f"workers must be at least 1, not {settings.get_value('workers')}")
    for problem in problems:
        if problem:
            raise TolError(problem)
    parse_size(size)
    for source in sources.SOURCES:
        root = settings.path(source.ROOT.name)
        if root is not None and not root.is_dir():
            raise TolError(f"{source.ROOT.name} {root} is not a folder")
    for split in SPLITS:
        PlanOptions(split_name=split_name, split=split, samples_per_shard=samples_per_shard,
                    min_shards=min_shards).check()


def run(settings: Config, engine: Engine, *, split_name: str, seed: int, val_percent: float,
        train_small_percent: float, samples_per_shard: int, size: str, quiet: bool, echo: Echo,
        min_shards: int = DEFAULT_MIN_SHARDS) -> None:
    """The whole pipeline on the collection of `settings`, into the catalog of `engine` (created or upgraded
    to head here), with `settings`' `workers` processes (see the module docstring). Every option is checked
    before the first stage runs."""
    from etl import export, verify
    from etl.write.launch import WriteOptions, write_plan

    check_run_options(settings, split_name=split_name, seed=seed, val_percent=val_percent,
                      train_small_percent=train_small_percent, samples_per_shard=samples_per_shard, size=size,
                      min_shards=min_shards)
    made = schema.ensure_head(engine)
    if made:
        echo(made)
    count = settings.get_value("workers")
    ingested_any = False
    for source in sources.SOURCES:
        root = settings.path(source.ROOT.name)
        if root is None:
            echo(f"ingest {source.NAME}: skipped ({source.ROOT.name} not set)")
            continue
        if catalog.ingested_before(engine, source.NAME, root):
            echo(f"ingest {source.NAME}: already done for {root}")
            continue
        metadata = settings.path(source.METADATA.setting.name) if source.METADATA is not None else None
        summary = catalog.ingest(engine, source.NAME, root, metadata=metadata,
                                 workers=count, progress=not quiet, echo=echo)
        ingested_any = True
        for line in summary.lines()[:1]:
            echo(f"ingest {line}")
    names_and_licenses(engine, settings, ingested=ingested_any, echo=echo, quiet=quiet)
    seen, unseen = settings.path("rare_seen"), settings.path("rare_unseen")
    if seen and unseen:
        rare = exclusions.load_rare_species(engine, seen, unseen, settings.get_value("reference_reject_percent"))
        for line in rare.lines():
            echo(f"exclude rare-species: {line}")
    _, created = splits.create(engine, split_name, seed, val_percent, train_small_percent)
    echo(f"splits {split_name}: {'created' if created else 'exists'}")
    width, height = parse_size(size)
    out_base = Path(settings.get_value("output_dir")).resolve()
    for split in SPLITS:
        name = f"{split_name}-{split}"
        options = PlanOptions(split_name=split_name, split=split, width=width, height=height,
                              samples_per_shard=samples_per_shard, out_dir=str(out_base / name),
                              min_shards=min_shards)
        plan, created = create_plan(engine, name, options, progress=not quiet)
        echo(f"plan {name}: {plan.n_samples:,} samples in {plan.n_shards} shards "
             f"({'new' if created else 'exists'}; left out {plan.n_excluded} excluded, {plan.n_unnamed} unnamed)")
        warning = few_shards_warning(name, plan.n_samples, plan.n_shards, min_shards)
        if warning:
            echo(warning)
        report = write_plan(WriteOptions.from_settings(settings, name), count, progress=not quiet)
        if report is not None:
            for line in report.lines():
                echo(line)
            report.check_complete()
        results = verify.verify(engine, settings.database_url, name, full=False, workers=count, progress=not quiet)
        bad = [r for r in results if r.problems]
        if bad:
            raise TolError(f"plan {name}: {len(bad)} shards fail verification, e.g. {bad[0].path}: "
                           f"{bad[0].problems[0]}")
        target = out_base / f"catalog-{name}.csv"
        rows = export.export(engine, name, "csv", target, progress=not quiet)
        echo(f"verify {name}: {len(results)} shards good; catalog {target} ({rows:,} rows)")
    with engine.connect() as connection:
        overlap = exclusions.report(engine)
        errors = connection.execute(text("SELECT COUNT(*) FROM image_errors")).scalar_one()
    echo(f"exclusions: {overlap.excluded_images} images excluded, {overlap.planned_excluded} in plans; "
         f"{errors} images could not be written (SELECT * FROM image_errors)")


def demo(directory: Path, *, images: int, quiet: bool, echo: Echo) -> None:
    """Make a sample collection in `directory` (unless one is there) and run the pipeline on it with SQLite."""
    from etl import sampledata

    folder = directory.resolve()
    config_file = folder / "tol.toml"
    if not config_file.exists():
        echo(f"writing a sample collection of about {images} images to {folder} …")
        sampledata.generate(folder, images=images, seed=0)
    # The demo's catalog is always the SQLite file in its folder, whatever TOL_DATABASE_URL says.
    settings = resolve({"database_url": f"sqlite:///{folder / 'catalog.sqlite'}"}, None, config_file)
    engine = db.make_engine(settings.database_url)
    try:
        run(settings, engine, split_name="main", seed=17, val_percent=5.0, train_small_percent=10.0,
            samples_per_shard=200, size="224x224", quiet=quiet, echo=echo)
    finally:
        engine.dispose()
    echo(f"done: shards under {Path(settings.get_value('output_dir')).resolve()}, catalog {settings.database_url}")
