"""Write-stage benchmark (see bench/write).

For each size, a sample collection is generated once under bench/out/ and reused. One worker writes the plan
(224x224, center-crop, quality 95) with per-step timers on; then, in a fresh process, a bare Pillow loop
reads, opens, drafts, converts, resizes and encodes the same images in the same order: the ceiling. Both run
in their own process so that peak RSS and CPU time are theirs alone.

With --sample-images N, only the first ⌈N / 1000⌉ shards of each plan are written (and looped over by the
ceiling): a plan's order is a seeded shuffle of the whole split, so every shard draws its images from the
whole collection, every archive and every class, and the cost per image of a few shards is that of the
whole plan. Before timing, EOL archives are made readable once (restaged, or indexed with
TOL_EOL_ACCESS=gzip-index): a one-off per archive, reported on its own.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import peak_rss_mb  # noqa: E402
from PIL import Image, ImageOps  # noqa: E402
from sqlalchemy import text  # noqa: E402

from etl import catalog, db, schema, splits, taxonomy  # noqa: E402
from etl.plan import PlanOptions, create_plan, get_plan  # noqa: E402
from etl.reader import ImageReader, source_roots  # noqa: E402
from etl.write.queue import ShardQueue  # noqa: E402
from etl.write.worker import WorkerContext, claim_and_write  # noqa: E402

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
    create_plan(engine, "bench", PlanOptions(
        split_name="bench", split="train", width=SIZE, height=SIZE, resize="center-crop", quality=QUALITY,
        samples_per_shard=1000, out_dir=str(folder / "shards")))
    engine.dispose()
    (folder / "ready").touch()
    return folder, url


def measure_write(folder: Path, url: str, max_shards: int, eol_access: str) -> dict:
    engine = db.make_engine(url)
    plan = get_plan(engine, "bench")
    queue = ShardQueue(engine)
    queue.reset([shard.id for shard in queue.shards(plan.id)], reason="reset by bench/write")
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM image_errors"))
    shutil.rmtree(folder / "shards", ignore_errors=True)
    # Make the EOL archives readable first (restage or index): a one-off per archive, not a per-image cost.
    shutil.rmtree(folder / "cache", ignore_errors=True)
    reader = ImageReader(source_roots(engine, {}), folder / "cache", {"eol_access": eol_access})
    prepared = time.perf_counter()
    with engine.connect() as connection:
        archives = connection.execute(text(
            "SELECT path, MIN(member_offset), MIN(byte_size) FROM images WHERE source = 'eol' AND status = 'present' "
            "GROUP BY path")).all()
    for path, offset, size in archives:
        with contextlib.suppress(OSError):  # the sample's truncated archive: the write stage records it
            reader.read("eol", path, offset, size)
    prepared = time.perf_counter() - prepared
    archive_bytes = sum((source_roots(engine, {})["eol"] / path).stat().st_size for path, _, _ in archives)
    reader.close()
    timings: dict[str, float] = {}
    context = WorkerContext(engine, plan, Path(plan.out_dir), ImageReader(source_roots(engine, {}),
                            folder / "cache", {"eol_access": eol_access}), "bench", timings=timings)
    wall, cpu = time.perf_counter(), time.process_time()
    stats = claim_and_write(context, should_claim=lambda done: max_shards <= 0 or done.claims < max_shards)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    engine.dispose()
    return {"images": stats.samples, "errors": stats.errors, "wall": wall, "cpu": cpu, "timings": timings,
            "rss": peak_rss_mb(), "prepare_s": prepared, "archive_mb": archive_bytes / 1e6,
            "shards": stats.shards}


def measure_ceiling(url: str, folder: Path, max_shards: int, eol_access: str) -> dict:
    engine = db.make_engine(url)
    queue = ShardQueue(engine)
    written = queue.shards(get_plan(engine, "bench").id)[:max_shards if max_shards > 0 else None]
    records = []
    for shard in written:  # the images the writer wrote, in its order
        skipped = queue.skipped_images(shard.id)
        records += [record for record in queue.samples(shard.id) if record.image_id not in skipped]
    reader = ImageReader(source_roots(engine, {}), folder / "cache", {"eol_access": eol_access})
    engine.dispose()
    wall, cpu = time.perf_counter(), time.process_time()
    for record in records:
        image = Image.open(io.BytesIO(reader.read(record.source, record.path, record.member_offset,
                                                  record.byte_size)))
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
    parser.add_argument("--sample-images", type=int, default=0,
                        help="Write only the first ⌈N / 1000⌉ shards of each plan (0: the whole plan).")
    parser.add_argument("--one", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    max_shards = -(-args.sample_images // 1000)
    eol_access = os.environ.get("TOL_EOL_ACCESS", "restage")
    if args.one:
        kind, folder, url = args.one
        result = (measure_write(Path(folder), url, max_shards, eol_access) if kind == "write"
                  else measure_ceiling(url, Path(folder), max_shards, eol_access))
        print(json.dumps(result))
        return

    def run(kind: str, folder: Path, url: str) -> dict:
        out = subprocess.run([sys.executable, __file__, "--sample-images", str(args.sample_images), "--one", kind,
                              str(folder), url], check=True, capture_output=True, text=True)
        return json.loads(out.stdout.strip().splitlines()[-1])

    print(f"EOL access: {eol_access}")
    rows = []
    for images in (int(v) for v in args.images.split(",")):
        folder, url = collection(images)
        write = run("write", folder, url)
        ceiling = run("ceiling", folder, url)
        rows.append((images, write, ceiling))
        t = write["timings"]
        other = write["wall"] - sum(t.values())
        print(f"\n{images:,}-image collection: one worker wrote {write['images']:,} samples in {write['shards']} "
              f"shards ({write['errors']} undecodable skipped) at {SIZE}x{SIZE}")
        print(f"  one-off EOL {eol_access}: {write['prepare_s']:.1f} s for {write['archive_mb']:,.0f} MB of archives")
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
