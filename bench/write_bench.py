"""Write-stage benchmark (see bench/write).

For each size, a sample collection is generated once under bench/out/ and reused. One worker writes the whole
plan (224x224, center-crop, quality 95) with per-step timers on; then, in a fresh process, a bare Pillow loop
reads, opens, drafts, converts, resizes and encodes the same images in the same order: the ceiling. Both run
in their own process so that peak RSS and CPU time are theirs alone.
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from PIL import Image, ImageOps  # noqa: E402
from sqlalchemy import text  # noqa: E402

from etl import catalog, db, schema, shards, splits, taxonomy, workers  # noqa: E402
from etl.reader import ImageReader, source_roots  # noqa: E402

OUT = ROOT / "bench" / "out"
SIZE = 224
QUALITY = 95


def collection(images: int) -> tuple[Path, str]:
    """The sample collection of `images` images and its prepared catalog (made on first use)."""
    from etl import sampledata

    folder = OUT / f"collection-{images}"
    url = f"sqlite:///{folder / 'bench.sqlite'}"
    if (folder / "ready").exists():
        return folder, url
    shutil.rmtree(folder, ignore_errors=True)
    print(f"generating a sample collection of {images:,} images in {folder} (once) …", flush=True)
    sampledata.generate(folder / "data", images=images, seed=1)
    engine = db.make_engine(url)
    schema.upgrade(engine)
    data = folder / "data"
    for source, sub in (("inat21", "inat21/train"), ("eol", "eol/media_cargo_archive"),
                        ("bioscan", "bioscan/cropped_256")):
        catalog.ingest(engine, source, data / sub, workers=2, echo=lambda _: None,
                       metadata=data / "bioscan" / "BIOSCAN_Insect_Dataset_metadata.jsonld")
    from etl import config

    settings = config.resolve({}, {}, data / "tol.toml")
    taxonomy.load(engine, {r.setting: settings.path(r.setting) for r in taxonomy.RESOURCES})
    taxonomy.resolve(engine)
    splits.create(engine, "bench", 0, 0.0, 0.0)
    shards.create_plan(engine, "bench", shards.PlanOptions(
        split_name="bench", split="train", width=SIZE, height=SIZE, resize="center-crop", quality=QUALITY,
        samples_per_shard=1000, out_dir=str(folder / "shards")))
    engine.dispose()
    (folder / "ready").touch()
    return folder, url


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_write(folder: Path, url: str) -> dict:
    engine = db.make_engine(url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE shards SET state = 'pending', attempts = 0, claim_token = NULL"))
        connection.execute(text("DELETE FROM image_errors"))
    shutil.rmtree(folder / "shards", ignore_errors=True)
    options = workers.WriteOptions(database_url=url, plan_name="bench", roots={}, cache_dir=folder / "cache")
    # Build the EOL gzip seek indexes first: a one-off per archive, not part of the per-image cost.
    plan = shards.get_plan(engine, "bench")
    reader = ImageReader(source_roots(engine, {}), folder / "cache")
    with engine.connect() as connection:
        for path, offset, size in connection.execute(text(
                "SELECT path, MIN(member_offset), MIN(byte_size) FROM images WHERE source = 'eol' GROUP BY path")):
            reader.read("eol", path, offset, size)
    reader.close()
    timings: dict[str, float] = {}
    context = shards.WorkerContext(engine, plan, Path(plan.out_dir), ImageReader(source_roots(engine, {}),
                                   folder / "cache"), "bench", timings=timings)
    wall, cpu = time.perf_counter(), time.process_time()
    stats = shards.run_worker(context)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    engine.dispose()
    del options
    return {"images": stats.samples, "errors": stats.errors, "wall": wall, "cpu": cpu, "timings": timings,
            "rss": peak_rss_mb()}


def measure_ceiling(url: str, folder: Path) -> dict:
    engine = db.make_engine(url)
    with engine.connect() as connection:
        records = connection.execute(text(
            "SELECT i.source, i.path, i.member_offset, i.byte_size FROM shard_members AS m "
            "JOIN shards AS s ON s.id = m.shard_id JOIN images AS i ON i.id = m.image_id "
            "WHERE i.id NOT IN (SELECT image_id FROM image_errors) ORDER BY s.shard_index, m.position")).all()
    reader = ImageReader(source_roots(engine, {}), folder / "cache")
    engine.dispose()
    wall, cpu = time.perf_counter(), time.process_time()
    for source, path, offset, size in records:
        image = Image.open(io.BytesIO(reader.read(source, path, offset, size)))
        if image.format == "JPEG":
            scale = max(SIZE / image.size[0], SIZE / image.size[1])
            image.draft("RGB", (int(image.size[0] * scale) + 1, int(image.size[1] * scale) + 1))
        image = ImageOps.fit(image.convert("RGB"), (SIZE, SIZE), Image.Resampling.BICUBIC)
        image.save(io.BytesIO(), "JPEG", quality=QUALITY)
    return {"images": len(records), "wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu,
            "rss": peak_rss_mb()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", default="3000", help="Comma-separated collection sizes.")
    parser.add_argument("--one", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        kind, folder, url = args.one
        result = measure_write(Path(folder), url) if kind == "write" else measure_ceiling(url, Path(folder))
        print(json.dumps(result))
        return

    def run(kind: str, folder: Path, url: str) -> dict:
        out = subprocess.run([sys.executable, __file__, "--one", kind, str(folder), url], check=True,
                             capture_output=True, text=True)
        return json.loads(out.stdout.strip().splitlines()[-1])

    rows = []
    for images in (int(v) for v in args.images.split(",")):
        folder, url = collection(images)
        write = run("write", folder, url)
        ceiling = run("ceiling", folder, url)
        rows.append((images, write, ceiling))
        t = write["timings"]
        other = write["wall"] - sum(t.values())
        print(f"\n{images:,}-image collection: one worker wrote {write['images']:,} samples "
              f"({write['errors']} undecodable skipped) at {SIZE}x{SIZE}")
        print(f"  write stage : {write['images'] / write['wall']:8.1f} images/s wall, "
              f"{write['images'] / write['cpu']:8.1f} images per CPU-second, peak RSS {write['rss']:.0f} MB")
        for step in ("read", "decode", "resize", "encode", "tar"):
            print(f"    {step:<7} {t.get(step, 0.0):7.2f} s  {100 * t.get(step, 0.0) / write['wall']:5.1f} %")
        print(f"    catalog and sample assembly {other:7.2f} s  {100 * other / write['wall']:5.1f} %")
        print(f"  Pillow loop : {ceiling['images'] / ceiling['wall']:8.1f} images/s wall, "
              f"{ceiling['images'] / ceiling['cpu']:8.1f} images per CPU-second, peak RSS {ceiling['rss']:.0f} MB")
        ratio = (write["images"] / write["wall"]) / (ceiling["images"] / ceiling["wall"])
        print(f"  ratio write / ceiling: {100 * ratio:.1f} % (target ≥ 85 %)")
    if len(rows) > 1:
        per_cpu = [w["images"] / w["cpu"] for _, w, _ in rows]
        spread = (max(per_cpu) - min(per_cpu)) / (sum(per_cpu) / len(per_cpu))
        print("\nimages per CPU-second by size: " + ", ".join(f"{n:,}: {v:.1f}" for (n, _, _), v in
                                                           zip(rows, per_cpu, strict=True))
              + f"; spread {100 * spread:.1f} % of the mean (target within ±20 %)")


if __name__ == "__main__":
    main()
