"""Write-stage benchmark (see bench/write): `tol`'s writer against three bare loops, side by side.

For each size, a sample collection is generated once under bench/out/ and reused. Each round runs, each in a
fresh process and on the same files in the same order:

- `tol`: one worker writes the plan (224x224, center-crop, quality 95) with per-step timers on: read, decode,
  resize, encode, sample (its json, its tar members from the taxon's template, hashing and the write), and
  the rest (catalog work per shard: claim, sample list, commit; the stat before each read);
- the bare Pillow loop: open → draft → RGB → crop → BICUBIC → JPEG;
- the bare OpenCV loop: imdecode with IMREAD_REDUCED_COLOR_k → crop → INTER_AREA → imencode;
- the bare simplejpeg loop: decode with min_width/min_height (DCT scaling) → crop → cv2 INTER_AREA →
  simplejpeg encode (4:2:0).

The bare loops read the images `tol` wrote (not the ones it skipped) through the same reader; a file a bare
loop's codec cannot open (a PNG named .jpg, CMYK) goes through the Pillow loop's steps instead. The figure is
images per CPU-second of the whole process (all its threads and any children), over the timed loop only;
three rounds are interleaved (the order rotates) and the median is reported, with the machine and its load:
on a shared machine CPU time is the figure that means something. Both sides are timed alike: the bare loops
exclude listing their records from the catalog, and `tol`'s timed span is its write loop (claims, sample
lists and commits are work it must do); the bare loops' one warm-up image is about 1 ms, nothing beside
seconds. The ratio depends on the CPU: hashing (sha256 and md5 of every shard byte, about 0.1 ms an image)
and the resampling's share differ between machines.

With --sample-images N, only the first ⌈N / 1000⌉ shards of each plan are written (and looped over by the
bare loops): a plan's order is a seeded shuffle of the whole split, so every shard draws its images from the
whole collection, every archive and every class, and the cost per image of a few shards is that of the
whole plan. Before timing, EOL archives are made readable once (restaged, or indexed with
TOL_EOL_ACCESS=gzip-index): a one-off per archive, reported on its own.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import peak_rss_mb  # noqa: E402
from PIL import Image, ImageOps  # noqa: E402
from sqlalchemy import text  # noqa: E402

from etl import catalog, db, schema, splits, taxonomy  # noqa: E402
from etl.images import CODEC_STACK  # noqa: E402
from etl.plan import PlanOptions, create_plan, get_plan  # noqa: E402
from etl.reader import ImageReader, source_roots  # noqa: E402
from etl.write.queue import ShardQueue  # noqa: E402
from etl.write.worker import WorkerContext, claim_and_write  # noqa: E402

OUT = (ROOT / "bench" / "out").resolve()  # a link to collections kept elsewhere: the plan names their real path
SIZE = 224
QUALITY = 95
KINDS = ("tol", "pillow", "opencv", "simplejpeg")
LABELS = {"tol": "tol shards write (1 worker)", "pillow": "bare Pillow loop", "opencv": "bare OpenCV loop",
          "simplejpeg": "bare simplejpeg loop"}


def plan_name() -> str:
    """The benchmark's plan for this codec stack (a plan is written with one stack only)."""
    return "bench-" + hashlib.sha256(CODEC_STACK.encode()).hexdigest()[:8]


def collection(images: int) -> tuple[Path, str]:
    """The sample collection of `images` images and its prepared catalog (made on first use), with a plan
    for this codec stack."""
    from etl import sampledata

    folder = OUT / f"collection-{images}"
    url = f"sqlite:///{folder / 'bench.sqlite'}"
    if not (folder / "ready").exists():
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
        engine.dispose()
        (folder / "ready").touch()
    engine = db.make_engine(url)
    schema.upgrade(engine)
    create_plan(engine, plan_name(), PlanOptions(
        split_name="bench", split="train", width=SIZE, height=SIZE, resize="center-crop", quality=QUALITY,
        samples_per_shard=1000, out_dir=str(folder / f"shards-{plan_name()}")))
    engine.dispose()
    return folder, url


def process_cpu() -> float:
    """CPU seconds of this process (every thread) and of its waited-for children."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def measure_write(folder: Path, url: str, max_shards: int, eol_access: str) -> dict:
    engine = db.make_engine(url)
    plan = get_plan(engine, plan_name())
    queue = ShardQueue(engine)
    queue.reset([shard.id for shard in queue.shards(plan.id)], reason="reset by bench/write")
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM image_errors"))
    shutil.rmtree(plan.out_dir, ignore_errors=True)
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
    wall, cpu = time.perf_counter(), process_cpu()
    stats = claim_and_write(context, should_claim=lambda done: max_shards <= 0 or done.claims < max_shards)
    wall, cpu = time.perf_counter() - wall, process_cpu() - cpu
    engine.dispose()
    return {"images": stats.samples, "errors": stats.errors, "wall": wall, "cpu": cpu, "timings": timings,
            "rss": peak_rss_mb(), "prepare_s": prepared, "archive_mb": archive_bytes / 1e6,
            "shards": stats.shards}


# ============================================================================================ bare loops


def _needed(width: int, height: int) -> tuple[int, int]:
    scale = max(SIZE / width, SIZE / height)
    return math.ceil(width * scale), math.ceil(height * scale)


def _centre(pixels):  # numpy array, height × width × 3: the centred square
    height, width = pixels.shape[:2]
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return pixels[top:top + side, left:left + side]


def pillow_loop(data: bytes) -> bytes:
    """Pillow: open → draft → RGB → crop → BICUBIC → JPEG."""
    image: Image.Image = Image.open(io.BytesIO(data))
    if image.format == "JPEG":
        image.draft("RGB", _needed(*image.size))
    image = ImageOps.fit(image.convert("RGB"), (SIZE, SIZE), Image.Resampling.BICUBIC)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=QUALITY)
    return out.getvalue()


def opencv_loop() -> Callable[[bytes], bytes]:
    import cv2
    import numpy as np

    cv2.setNumThreads(1)
    reduced = {8: cv2.IMREAD_REDUCED_COLOR_8, 4: cv2.IMREAD_REDUCED_COLOR_4, 2: cv2.IMREAD_REDUCED_COLOR_2}

    def run(data: bytes) -> bytes:
        """OpenCV: imdecode with IMREAD_REDUCED_COLOR_k → crop → INTER_AREA → imencode."""
        buffer = np.frombuffer(data, np.uint8)
        header = Image.open(io.BytesIO(data))  # the size, to choose k (OpenCV has no header-only read)
        needed = _needed(*header.size)
        flag = next((flag for k, flag in reduced.items()
                     if header.size[0] // k >= needed[0] and header.size[1] // k >= needed[1]), cv2.IMREAD_COLOR)
        pixels = cv2.imdecode(buffer, flag)
        if pixels is None:
            return pillow_loop(data)
        resized = cv2.resize(_centre(pixels), (SIZE, SIZE), interpolation=cv2.INTER_AREA)
        return cv2.imencode(".jpg", resized, [cv2.IMWRITE_JPEG_QUALITY, QUALITY])[1].tobytes()

    return run


def simplejpeg_loop() -> Callable[[bytes], bytes]:
    import cv2
    import simplejpeg

    cv2.setNumThreads(1)

    def run(data: bytes) -> bytes:
        """simplejpeg: decode with min_width/min_height → crop → cv2 INTER_AREA → simplejpeg encode."""
        try:
            height, width, _, _ = simplejpeg.decode_jpeg_header(data)
            needed = _needed(width, height)
            pixels = simplejpeg.decode_jpeg(data, min_width=needed[0], min_height=needed[1])
        except ValueError:
            return pillow_loop(data)
        resized = cv2.resize(_centre(pixels), (SIZE, SIZE), interpolation=cv2.INTER_AREA)
        return simplejpeg.encode_jpeg(resized, quality=QUALITY, colorsubsampling="420")

    return run


def measure_loop(kind: str, url: str, folder: Path, max_shards: int, eol_access: str) -> dict:
    engine = db.make_engine(url)
    queue = ShardQueue(engine)
    written = [s for s in queue.shards(get_plan(engine, plan_name()).id) if s.state == "done"]
    written = written[:max_shards if max_shards > 0 else None]
    records = []
    for shard in written:  # the images the writer wrote, in its order
        skipped = queue.skipped_images(shard.id)
        records += [record for record in queue.samples(shard.id) if record.image_id not in skipped]
    reader = ImageReader(source_roots(engine, {}), folder / "cache", {"eol_access": eol_access})
    engine.dispose()
    step = {"pillow": lambda: pillow_loop, "opencv": opencv_loop, "simplejpeg": simplejpeg_loop}[kind]()
    step(reader.read(records[0].source, records[0].path, records[0].member_offset, records[0].byte_size))
    wall, cpu = time.perf_counter(), process_cpu()
    for record in records:
        step(reader.read(record.source, record.path, record.member_offset, record.byte_size))
    return {"images": len(records), "wall": time.perf_counter() - wall, "cpu": process_cpu() - cpu,
            "rss": peak_rss_mb()}


# ============================================================================================== report


def machine() -> str:
    """CPU model, cores, load and the codec stack: the figures' context."""
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    return (f"{model}, {os.cpu_count()} CPUs, load average {load}; Python {platform.python_version()}; "
            f"{CODEC_STACK}")


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", default="3000", help="Comma-separated collection sizes.")
    parser.add_argument("--sample-images", type=int, default=0,
                        help="Write only the first ⌈N / 1000⌉ shards of each plan (0: the whole plan).")
    parser.add_argument("--rounds", type=int, default=3, help="Interleaved rounds (the median is reported).")
    parser.add_argument("--one", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    max_shards = -(-args.sample_images // 1000)
    eol_access = os.environ.get("TOL_EOL_ACCESS", "restage")
    if args.one:
        kind, folder, url = args.one
        result = (measure_write(Path(folder), url, max_shards, eol_access) if kind == "tol"
                  else measure_loop(kind, url, Path(folder), max_shards, eol_access))
        print(json.dumps(result))
        return

    def run(kind: str, folder: Path, url: str) -> dict:
        out = subprocess.run([sys.executable, __file__, "--sample-images", str(args.sample_images), "--one", kind,
                              str(folder), url], check=True, capture_output=True, text=True)
        return json.loads(out.stdout.strip().splitlines()[-1])

    print(f"machine: {machine()}")
    print(f"EOL access: {eol_access}; {args.rounds} interleaved rounds, median of images per CPU-second")
    for images in (int(v) for v in args.images.split(",")):
        folder, url = collection(images)
        rounds: dict[str, list[dict]] = {kind: [] for kind in KINDS}
        rounds["tol"].append(run("tol", folder, url))  # the bare loops need the written shards' order
        for number in range(args.rounds):
            order = (*KINDS[1:], "tol") if number % 2 else KINDS  # rotate: tol first, then last
            for kind in order:
                if kind == "tol" and number == 0:
                    continue
                rounds[kind].append(run(kind, folder, url))
                print(f"  round {number + 1}: {kind:<10} "
                      f"{rounds[kind][-1]['images'] / rounds[kind][-1]['cpu']:8.1f} images per CPU-second",
                      flush=True)
        write = rounds["tol"][-1]
        t = write["timings"]
        print(f"\n{images:,}-image collection: one worker wrote {write['images']:,} samples in {write['shards']} "
              f"shards ({write['errors']} undecodable skipped) at {SIZE}x{SIZE}, quality {QUALITY}")
        print(f"  one-off EOL {eol_access}: {write['prepare_s']:.1f} s for {write['archive_mb']:,.0f} MB of archives")
        other = write["wall"] - sum(t.values())
        print("  tol's steps (last round, wall): " + ", ".join(
            f"{label} {100 * t.get(step, 0.0) / write['wall']:.1f} %" for step, label in (
                ("read", "read"), ("decode", "decode"), ("resize", "resize"), ("encode", "encode"),
                ("tar", "sample assembly (json, tar members, hashes, write)")))
              + f", the rest (catalog, stat before each read) {100 * other / write['wall']:.1f} %")
        rates = {kind: median([r["images"] / r["cpu"] for r in rounds[kind]]) for kind in KINDS}
        fastest = max(rates[kind] for kind in KINDS[1:])
        print(f"  {'contender':<30} {'img/CPU-s':>10} {'img/s wall':>11} {'peak RSS':>9} {'vs fastest bare':>16}")
        for kind in KINDS:
            wall = median([r["images"] / r["wall"] for r in rounds[kind]])
            rss = max(r["rss"] for r in rounds[kind])
            print(f"  {LABELS[kind]:<30} {rates[kind]:>10.1f} {wall:>11.1f} {rss:>6.0f} MB "
                  f"{rates[kind] / fastest:>15.2f}x")
        print(f"  tol / fastest bare loop: {rates['tol'] / fastest:.2f}x (target ≥ 1.00)")


if __name__ == "__main__":
    main()
