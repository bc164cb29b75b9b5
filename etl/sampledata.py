"""A sample collection laid out exactly like the real iNat21, EOL and BIOSCAN-1M trees, with every reference file.

The real collections (10M images) are not available where we build and test, so this module writes a small
one with the same on-disk layouts and the same kinds of mess: the worked examples of the naming rules,
synthetic species (some shared across sources), HTML and authorities in names, `not_classified`, gaps in the
hierarchy, and a few hostile files. The same seed gives the same bytes.

`expected.json` beside the collection says what an ingest must find (computed here from what was written,
not by the ingest code).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import random
import tarfile
import uuid
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw, ImageOps

FIXED_MTIME = 1_600_000_000
# Share of the requested images per source (the real mix is 26 % iNat21, 11 % BIOSCAN, 63 % EOL).
SHARES = {"inat21": 0.4, "bioscan": 0.2, "eol": 0.4}

# ---------------------------------------------------------------------------------------------- fixtures
# The worked examples of naming.md §12, as they appear in each source's files.

INAT_FIXTURE_CLASSES = [
    "00000_Animalia_Annelida_Clitellata_Haplotaxida_Lumbricidae_Lumbricus_terrestris",
    "04815_Animalia_Chordata_Aves_Passeriformes_Paridae_Cyanistes_caeruleus",
    "05432_Plantae_Tracheophyta_Magnoliopsida_Ranunculales_Papaveraceae_Papaver_rhoeas",
    "00005_Animalia_Arthropoda_Arachnida_Araneae_Antrodiaetidae_Atypoides_riversi",
]
NC = "not_classified"
BIOSCAN_FIXTURES = [  # image_file, order, family, genus, species
    ("4286925.jpg", "Diptera", "Cecidomyiidae", NC, NC),
    ("5016789.jpg", "Coleoptera", "Dytiscidae", "Hydroporus", "Hydroporus striola"),
    ("5335944.jpg", "Coleoptera", "Curculionidae", "Euplatypus", NC),
    ("BIOUG68114-B02.jpg", "Hymenoptera", NC, NC, NC),
    ("4900531.jpg", "Diptera", "Phoridae", "Megaselia", "Megaselia sp. 12ABC"),
    ("3995976.jpg", "Diptera", NC, "Contarinia", "Contarinia nasturtii"),
]
METAZOA, CHORDATA = ("Metazoa", "kingdom"), ("Chordata", "phylum")
# DH chains: (canonicalName, taxonRank[, page id]); a page id of None means the row has no eolID.
EOL_FIXTURE_CHAINS = [
    [METAZOA, CHORDATA, ("Vertebrata", "subphylum"), ("Aves", "class"), ("Passeriformes", "order"),
     ("Corvidae", "family"), ("Pica", "genus"), ("Pica hudsonia", "species", 45511401)],
    [METAZOA, CHORDATA, ("Elasmobranchii", "class"), ("Myliobatiformes", "order"), ("Mobula", "genus"),
     ("Mobula birostris", "species", 49672921)],
    [("Archaeplastida", "kingdom"), ("Tracheophyta", "phylum"), ("Magnoliopsida", "class"), ("Fagales", "order"),
     ("Fagaceae", "family"), ("Quercus", "genus"), ("Quercus alba", "species", 1151323)],
    [METAZOA, ("Arthropoda", "phylum"), ("Collembola", "order"), ("Entomobryidae", "family"),
     ("Entomobrya", "genus"), ("Entomobrya nivalis", "species", 1000050)],
    [("Trametes", "genus", None), ("Trametes trogii", "species", 1000070)],
    [METAZOA, CHORDATA, ("Charina", "genus"), ("Charina umbratica", "species", 1000090)],
    [METAZOA, ("Hexapoda", ""), ("Leptogaster", "genus"), ("Leptogaster flavipes", "species", 1000100)],
    [METAZOA, CHORDATA, ("Mammalia", "class"), ("Lemuridae", "family"),
     ("Varecia variegata subcincta", "species", 1000110)],
    [METAZOA, CHORDATA, ("Amphibia", "class"), ("Anura", "order"), ("Nyctibatrachus", "genus")],
]
EOL_SCRAPED = [
    (333069, "Nyctibatrachus humayuni Bhaduri & Kripalani, 1955"),
    (1000200, "Xenopsylla cheopis (Rothschild, 1903)"),
    (1000201, "Ostrea"),
    (1000202, "<i>Geospiza fuliginosa fuliginosa</i>"),
]
EOL_FIXTURE_PAGES = [45511401, 49672921, 1151323, 1000050, 1000070, 1000090, 1000100, 1000110,
                     333069, 1000200, 1000201, 1000202]
ITIS_FIXTURES = [  # Kingdom … Genus, Species (binomial), terminal_vernacular, terminal_vernacular_lang
    ("Animalia", "Annelida", "Clitellata", "Haplotaxida", "Lumbricidae", "Lumbricus", "Lumbricus terrestris",
     "common earthworm, dew-worm", "English"),
    ("Animalia", "Chordata", "Aves", "Passeriformes", "Corvidae", "Pica", "Pica hudsonia",
     "Black-billed Magpie", "English"),
    ("Animalia", "Chordata", "Chondrichthyes", "Myliobatiformes", "Mobulidae", "Mobula", "Mobula birostris",
     "Giant Manta Ray, Manta gigante", "English, Spanish"),
    ("Plantae", "Tracheophyta", "Magnoliopsida", "Fagales", "Fagaceae", "Quercus", "Quercus alba",
     "white oak", "English"),
    ("Animalia", "Arthropoda", "Insecta", "Diptera", "Cecidomyiidae", "Contarinia", "Contarinia nasturtii",
     "swede midge", "English"),
    ("Animalia", "Arthropoda", "Insecta", "Diptera", "Asilidae", "Asilus", "Asilus crabroniformis",
     "hornet robberfly", "English"),
    ("Animalia", "Chordata", "Reptilia", "Squamata", "Boidae", "Charina", "Charina bottae",
     "northern rubber boa", "English"),
    ("Animalia", "Chordata", "Amphibia", "Anura", "Nyctibatrachidae", "Nyctibatrachus", "Nyctibatrachus major",
     "", ""),
    ("Animalia", "Arthropoda", "Insecta", "Hymenoptera", "Formicidae", "Camponotus", "Camponotus herculeanus",
     "Hercules Ant", "English"),
    ("Animalia", "Arthropoda", "Insecta", "Coleoptera", "Curculionidae", "Euplatypus", "Euplatypus parallelus",
     "", ""),
]
RESOLVER_FIXTURES = [
    ("Trametes trogii", ("Fungi", "Basidiomycota", "Agaricomycetes", "Polyporales", "Polyporaceae")),
    ("Charina umbratica", ("Metazoa", "Chordata", "Reptilia", "Squamata", "Charinidae")),
    ("Leptogaster flavipes", ("Animalia", "Arthropoda", "Insecta", "Diptera", "Leptogastridae")),
]
INAT_VERNACULAR_FIXTURES = [
    ("Lumbricus terrestris", "Animalia", "Annelida", "Clitellata", "Haplotaxida", "Lumbricidae", "Lumbricus",
     "terrestris", "Common Earthworm"),
    ("Cyanistes caeruleus", "Animalia", "Chordata", "Aves", "Passeriformes", "Paridae", "Cyanistes",
     "caeruleus", "Eurasian Blue Tit"),
    ("Papaver rhoeas", "Plantae", "Tracheophyta", "Magnoliopsida", "Ranunculales", "Papaveraceae", "Papaver",
     "rhoeas", "Common Poppy"),
    ("Atypoides riversi", "Animalia", "Arthropoda", "Arachnida", "Araneae", "Antrodiaetidae", "Atypoides",
     "riversi", "California Turret Spider"),
]
EOL_VERNACULAR_FIXTURES = [  # page_id, canonical_form, vernacular_string, language_code, preferred
    (1000050, "Entomobrya nivalis", "Cosmopolitan Springtail", "eng", True),
    (1000070, "<i>Trametes trogii</i>", "Trogi's Bracket (fungus)", "eng", True),
    (1000090, "Charina umbratica", "southern rubber boa", "eng", True),
    (333069, "Nyctibatrachus humayuni", "Humayun's Night Frog", "eng", True),
    (333069, "Nyctibatrachus humayuni", "grenouille de nuit de Humayun", "fre", True),
    (49672921, "<i>Mobula birostris</i>", "Giant manta", "eng", True),
    (1151323, "Quercus alba", "White Oak", "eng", False),
    (45511401, "Pica hudsonia", "American Magpie", "eng", False),
]

# ---------------------------------------------------------------------------------------------- synthetic

SYLLABLES = ["ba", "ca", "do", "fe", "ga", "hi", "lu", "ma", "ne", "po", "ra", "si", "ta", "vo", "xe", "zo",
             "mi", "ru", "pe", "lo"]
KINGDOMS = [("Animalia", "Metazoa"), ("Plantae", "Chloroplastida"), ("Fungi", "Fungi")]
COMMON_NOUNS = ["Moth", "Fern", "Newt", "Bracket", "Sedge", "Beetle", "Finch"]
INSECT_ORDERS = ["Diptera", "Hymenoptera", "Coleoptera", "Hemiptera", "Lepidoptera"]


@dataclass
class Species:
    """A synthetic species: its true seven ranks (display case; species = epithet) and where it appears."""

    ranks: tuple[str, str, str, str, str, str, str]
    in_inat: bool = False
    in_eol: bool = False
    in_bioscan: bool = False
    common: str = ""

    @property
    def binomial(self) -> str:
        return f"{self.ranks[5]} {self.ranks[6]}"


def _word(rng: random.Random, syllables: int, ending: str) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(syllables)) + ending


def synthetic_species(rng: random.Random, count: int) -> list[Species]:
    """`count` species in a tree with shared higher ranks; a quarter are insects (BIOSCAN-like)."""
    species: list[Species] = []
    seen: set[str] = set()

    def unique(syllables: int, ending: str) -> str:
        # Names grow a syllable after every 20 collisions: large collections need more names than two
        # syllables can make (20² × endings), and small ones draw exactly as before.
        attempts = 0
        while True:
            value = _word(rng, syllables + attempts // 20, ending).capitalize()
            if value not in seen:
                seen.add(value)
                return value
            attempts += 1

    branches: list[tuple[str, ...]] = []
    for kingdom, _ in KINGDOMS:
        for _ in range(2):
            phylum = unique(3, "phyta" if kingdom == "Plantae" else "ota")
            for _ in range(2):
                cls = unique(3, "opsida" if kingdom == "Plantae" else "ia")
                for _ in range(2):
                    branches.append((kingdom, phylum, cls, unique(3, "ales")))
    insect_branches = [("Animalia", "Arthropoda", "Insecta", order) for order in INSECT_ORDERS]
    while len(species) < count:
        insect = len(species) % 4 == 0
        branch = rng.choice(insect_branches if insect else branches)
        family = unique(3, "idae" if branch[0] == "Animalia" else "aceae")
        for _ in range(2):
            genus = unique(2, rng.choice(["us", "a", "ium"]))
            for _ in range(rng.randint(1, 3)):
                if len(species) >= count:
                    break
                epithet = _word(rng, 2, rng.choice(["ensis", "ata", "ii", "us", "alis"]))
                item = Species((*branch, family, genus, epithet))
                roll = rng.random()
                if insect:
                    item.in_bioscan = True
                    item.in_eol = roll < 0.3
                else:
                    item.in_inat = roll < 0.65
                    item.in_eol = roll > 0.35
                if rng.random() < 0.5:
                    item.common = f"{_word(rng, 2, '').capitalize()} {rng.choice(COMMON_NOUNS)}"
                species.append(item)
    return species


# ---------------------------------------------------------------------------------------------- images


_BACKGROUNDS: dict[tuple[int, int], list[Image.Image]] = {}
BACKGROUND_VARIANTS = 6


def _background(rng: random.Random, width: int, height: int) -> Image.Image:
    """A blurred coloured gradient with sensor noise; a few per size are made and then reused (they are slow)."""
    pool = _BACKGROUNDS.setdefault((width, height), [])
    if len(pool) < BACKGROUND_VARIANTS:
        gradient = Image.linear_gradient("L").rotate(rng.uniform(0, 360)).resize((width, height))
        colour = ImageOps.colorize(gradient, black=tuple(rng.randrange(0, 90) for _ in range(3)),
                                   white=tuple(rng.randrange(120, 256) for _ in range(3)))
        noise = Image.effect_noise((width, height), rng.uniform(10, 30)).convert("RGB")
        pool.append(Image.blend(colour, noise, 0.12))
        return pool[-1]
    return pool[rng.randrange(len(pool))]


def _photo(rng: random.Random, width: int, height: int) -> Image.Image:
    """A photograph-like picture: a noisy gradient background and an organism-like cluster of blobs."""
    picture = _background(rng, width, height).copy()
    draw = ImageDraw.Draw(picture)
    for _ in range(rng.randint(3, 7)):
        cx, cy = rng.uniform(0.2, 0.8) * width, rng.uniform(0.2, 0.8) * height
        rx, ry = rng.uniform(0.05, 0.3) * width, rng.uniform(0.05, 0.3) * height
        draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=tuple(rng.randrange(0, 256) for _ in range(3)))
    return picture


def _encode(image: Image.Image, fmt: str = "JPEG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _jpeg(rng: random.Random, size: tuple[int, int]) -> bytes:
    return _encode(_photo(rng, *size), quality=85)


def hostile_images(rng: random.Random) -> dict[str, tuple[bytes, str | None]]:
    """Files that break naive pipelines: name → (bytes, reason an ingest must reject it or None)."""
    photo = _photo(rng, 320, 240)
    good = _encode(photo, quality=85)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    palette = photo.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    palette.info["transparency"] = 0
    rgba = photo.convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(photo.size))
    return {
        "truncated": (good[: len(good) * 6 // 10], None),
        "zero-byte": (b"", "empty file"),
        "cmyk": (_encode(photo.convert("CMYK"), quality=85), None),
        "grayscale": (_encode(photo.convert("L"), quality=85), None),
        "16-bit": (_encode(photo.convert("L").convert("I;16"), "PNG"), None),
        "palette-transparency": (_encode(palette, "PNG"), None),
        "rgba": (_encode(rgba, "PNG"), None),
        "la": (_encode(photo.convert("LA"), "PNG"), None),
        "png-named-jpg": (_encode(photo, "PNG"), None),
        "exif-rotated": (_encode(photo, quality=85, exif=exif.tobytes()), None),
        "not-an-image": (b"<html>404 Not Found</html>\n", "not an image"),
    }


# ---------------------------------------------------------------------------------------------- writer


@dataclass
class Expected:
    """What an ingest of the collection must find, per source."""

    catalogued: dict[str, int] = field(default_factory=lambda: {"inat21": 0, "eol": 0, "bioscan": 0})
    rejected: dict[str, list[list[str]]] = field(default_factory=lambda: {"inat21": [], "eol": [], "bioscan": []})
    hostile: dict[str, list[str]] = field(default_factory=lambda: {"inat21": [], "eol": [], "bioscan": []})
    fixtures: dict[str, list] = field(default_factory=dict)


class _DynamicHierarchy:
    """Builds DH 2.1 taxon.tab rows, sharing nodes between chains with the same prefix."""

    def __init__(self, next_page: Callable[[], int]) -> None:
        self.rows: list[dict[str, str]] = []
        self.nodes: dict[tuple, tuple[str, str | None]] = {}
        self.next_page = next_page

    def add(self, chain: list[tuple]) -> str | None:
        parent_id = ""
        page: str | None = None
        path: tuple = ()
        for step in chain:
            name, rank = step[0], step[1]
            path = (*path, name)
            if path not in self.nodes:
                page_id = step[2] if len(step) > 2 else self.next_page()
                taxon_id = f"EOL-{len(self.rows) + 1:012d}"
                self.rows.append({
                    "taxonID": taxon_id, "source": "sample", "furtherInformationURL": "",
                    "acceptedNameUsageID": "", "parentNameUsageID": parent_id,
                    "scientificName": f"{name} Author, 1900" if rank == "species" else name,
                    "taxonRank": rank, "taxonomicStatus": "accepted", "datasetID": "sample",
                    "canonicalName": name, "authority": "", "eolID": "" if page_id is None else str(page_id),
                    "Landmark": "", "higherClassification": "|".join(path[:-1]),
                })
                self.nodes[path] = (taxon_id, None if page_id is None else str(page_id))
            parent_id, page = self.nodes[path]
        return page


def generate(out: str | Path, images: int = 5000, seed: int = 0) -> Expected:
    """Write a sample collection of about `images` images into `out` (which must be empty or absent)."""
    root = Path(out)
    if root.exists() and any(root.iterdir()):
        from etl.errors import TolError

        raise TolError(f"output folder is not empty: {root}")
    rng = random.Random(seed)
    expected = Expected()
    inat_root = root / "inat21" / "train"
    eol_root = root / "eol" / "media_cargo_archive"
    bioscan_root = root / "bioscan" / "cropped_256"
    for folder in (inat_root, eol_root, bioscan_root, root / "eol" / "dh21", root / "itis", root / "inat" / "dwca",
                   root / "resolver", root / "rarespecies"):
        folder.mkdir(parents=True, exist_ok=True)

    species = synthetic_species(rng, max(12, images // 15))
    targets = {source: max(1, int(images * share)) for source, share in SHARES.items()}

    # ---- iNat21: fixture classes first, then synthetic species, each with a class index of its own.
    inat_classes = list(INAT_FIXTURE_CLASSES)
    used_indices = {int(name[:5]) for name in inat_classes}
    index = 1
    inat_species = [s for s in species if s.in_inat]
    for item in inat_species:
        while index in used_indices:
            index += 1
        used_indices.add(index)
        inat_classes.append(f"{index:05d}_" + "_".join(item.ranks))
    per_class = max(1, targets["inat21"] // len(inat_classes))
    for class_name in inat_classes:
        folder = inat_root / class_name
        folder.mkdir()
        for _ in range(per_class):
            (folder / f"{uuid.UUID(int=rng.getrandbits(128), version=4)}.jpg").write_bytes(
                _jpeg(rng, rng.choice([(500, 375), (375, 500), (500, 333), (400, 400)])))
            expected.catalogued["inat21"] += 1
    expected.fixtures["inat21_classes"] = INAT_FIXTURE_CLASSES
    hostile = hostile_images(rng)
    hostile_folder = inat_root / inat_classes[-1]
    for kind, (data, fatal) in hostile.items():
        name = f"{uuid.UUID(int=rng.getrandbits(128), version=4)}.jpg"
        (hostile_folder / name).write_bytes(data)
        expected.hostile["inat21"].append(f"{inat_classes[-1]}/{name}:{kind}")
        if fatal:
            expected.rejected["inat21"].append([f"{inat_classes[-1]}/{name}", fatal])
        else:
            expected.catalogued["inat21"] += 1
    (hostile_folder / "notes.txt").write_text("field notes\n")
    expected.rejected["inat21"].append([f"{inat_classes[-1]}/notes.txt", "file name is not <uuid>.jpg"])
    (inat_root / "README.txt").write_text("iNat21 train\n")
    expected.rejected["inat21"].append(["README.txt", "not a class folder"])
    bad_folder = inat_root / "09999_Animalia_Chordata"
    bad_folder.mkdir()
    (bad_folder / f"{uuid.UUID(int=rng.getrandbits(128), version=4)}.jpg").write_bytes(_jpeg(rng, (200, 150)))
    expected.rejected["inat21"].append(["09999_Animalia_Chordata/", "expected 7 ranks"])

    # ---- BIOSCAN: parts of at most `part_size` images, metadata as a JSON array.
    records: list[dict[str, str]] = []
    insect_species = [s for s in species if s.in_bioscan]
    bioscan_files: list[tuple[str, tuple[str, str, str, str]]] = [
        (name, (order, family, genus, sp)) for name, order, family, genus, sp in BIOSCAN_FIXTURES]
    next_file = 3_000_000
    while len(bioscan_files) < targets["bioscan"]:
        item = rng.choice(insect_species)
        next_file += rng.randint(1, 50)
        depth = rng.random()
        genus = item.ranks[5] if depth > 0.6 else NC
        binomial = item.binomial if depth > 0.85 else NC
        family = item.ranks[4] if depth > 0.1 else NC
        if rng.random() < 0.8:
            name = f"{next_file}.jpg"
        else:
            name = f"BIOUG{rng.randint(10000, 99999)}-{rng.choice('ABCDEFGH')}{rng.randint(1, 12):02d}.jpg"
        if any(name == existing for existing, _ in bioscan_files):
            continue
        bioscan_files.append((name, (item.ranks[3], family, genus, binomial)))
    part_size = max(10, len(bioscan_files) // 3)
    for number, (name, (order, family, genus, sp)) in enumerate(bioscan_files):
        part = number // part_size + 1
        folder = bioscan_root / f"part{part}"
        folder.mkdir(exist_ok=True)
        (folder / name).write_bytes(_jpeg(rng, rng.choice([(341, 256), (256, 256), (256, 384), (300, 256)])))
        expected.catalogued["bioscan"] += 1
        records.append(_bioscan_record(rng, number, name, part, order, family, genus, sp))
    expected.fixtures["bioscan_files"] = [row[0] for row in BIOSCAN_FIXTURES]
    # Hostile BIOSCAN files: broken bytes, and one image with no metadata record (and one record with no image).
    for kind in ("truncated", "zero-byte", "cmyk"):
        data, fatal = hostile[kind]
        name = f"BIOUG{90000 + len(expected.hostile['bioscan'])}-H01.jpg"
        (bioscan_root / "part1" / name).write_bytes(data)
        expected.hostile["bioscan"].append(f"part1/{name}:{kind}")
        records.append(_bioscan_record(rng, len(records), name, 1, "Diptera", "Phoridae", "Megaselia", NC))
        if fatal:
            expected.rejected["bioscan"].append([f"part1/{name}", fatal])
        else:
            expected.catalogued["bioscan"] += 1
    (bioscan_root / "part2").mkdir(exist_ok=True)
    (bioscan_root / "part2" / "9999999.jpg").write_bytes(_jpeg(rng, (256, 256)))
    expected.rejected["bioscan"].append(["part2/9999999.jpg", "no record for this image_file"])
    records.append(_bioscan_record(rng, len(records), "8888888.jpg", 2, "Diptera", NC, NC, NC))
    expected.rejected["bioscan"].append(["BIOSCAN_Insect_Dataset_metadata.jsonld:8888888.jpg", "has no image file"])
    (bioscan_root / "notes").mkdir()
    expected.rejected["bioscan"].append(["notes/", "folder name is not part<N>"])
    metadata_path = root / "bioscan" / "BIOSCAN_Insect_Dataset_metadata.jsonld"
    with open(metadata_path, "w", encoding="utf-8") as handle:
        handle.write("[\n")
        handle.write(",\n".join(json.dumps(record, ensure_ascii=False) for record in records))
        handle.write("\n]\n")

    # ---- EOL: DH taxonomy, pages, archives of content-id/page-id members.
    page_counter = iter(range(2_000_001, 9_000_000))
    dh = _DynamicHierarchy(lambda: next(page_counter))
    for chain in EOL_FIXTURE_CHAINS:
        dh.add(chain)
    eol_pages: list[int] = list(EOL_FIXTURE_PAGES)
    page_species: dict[int, Species] = {}
    synonyms = dict(KINGDOMS)
    for item in species:
        if not item.in_eol:
            continue
        kingdom, phylum, cls, order, family, genus, epithet = item.ranks
        chain = [(synonyms[kingdom], "kingdom"), (phylum, "phylum"), (cls, "class"), (order, "order"),
                 (family, "family"), (genus, "genus"), (f"{genus} {epithet}", "species")]
        if rng.random() < 0.1:
            del chain[3]  # a gap in the hierarchy (no order), for the upgrade to fill
        page = int(dh.add(chain))
        eol_pages.append(page)
        page_species[page] = item
    per_page = max(1, targets["eol"] // len(eol_pages))
    # (name, size, seed): a member's JPEG is made from its own seed only when its archive is written, so a large
    # collection never holds its EOL images in memory.
    members: list[tuple[str, tuple[int, int], int]] = []
    content_id = 10_000_000
    eol_images: dict[int, list[str]] = {}
    for page in eol_pages:
        for _ in range(per_page if page not in (1000090, 49672921) else max(per_page, 4)):
            content_id += rng.randint(1, 999)
            name = f"{content_id}_{page}_eol-full-size-copy.jpg"
            members.append((name, rng.choice([(800, 600), (600, 800), (1024, 683), (640, 640)]),
                            rng.getrandbits(64)))
            eol_images.setdefault(page, []).append(name)
    rng.shuffle(members)
    archive_size = max(5, len(members) // 4)
    archives = [members[start:start + archive_size] for start in range(0, len(members), archive_size)]
    for number, archive in enumerate(archives, start=1):
        _write_archive(eol_root / f"media_{number:04d}.tar.gz",
                       ((name, _jpeg(random.Random(seed), size)) for name, size, seed in archive))
        expected.catalogued["eol"] += len(archive)
    hostile_members = []
    for kind in ("cmyk", "exif-rotated", "truncated", "palette-transparency", "zero-byte"):
        content_id += 1
        page = rng.choice(list(page_species))
        name = f"{content_id}_{page}_eol-full-size-copy.jpg"
        data, fatal = hostile[kind]
        hostile_members.append((name, data))
        expected.hostile["eol"].append(f"hostile.tar.gz:{name}:{kind}")
        if fatal:
            expected.rejected["eol"].append([f"hostile.tar.gz:{name}", fatal])
        else:
            expected.catalogued["eol"] += 1
    hostile_members.append(("readme.txt", b"not an image\n"))
    expected.rejected["eol"].append(["hostile.tar.gz:readme.txt", "member name is not"])
    hf_name = f"{uuid.UUID(int=rng.getrandbits(128), version=4)}.jpg"
    hostile_members.append((hf_name, hostile["cmyk"][0]))
    expected.rejected["eol"].append([f"hostile.tar.gz:{hf_name}", "Hugging Face release form"])
    _write_archive(eol_root / "hostile.tar.gz", hostile_members)
    # A truncated archive: members wholly inside the readable part are catalogued, the archive is rejected.
    cut_members = []
    for _ in range(6):
        content_id += 1
        page = rng.choice(list(page_species))
        cut_members.append((f"{content_id}_{page}_eol-full-size-copy.jpg", _jpeg(rng, (640, 480))))
    complete = _write_truncated_archive(eol_root / "media_9999.tar.gz", cut_members)
    expected.catalogued["eol"] += complete
    expected.rejected["eol"].append(["media_9999.tar.gz", "truncated or unreadable archive"])
    (eol_root / "notes.md").write_text("downloaded 2023\n")
    expected.rejected["eol"].append(["notes.md", "not a .tar.gz archive"])
    expected.fixtures["eol_pages"] = {str(page): eol_images.get(page, []) for page in EOL_FIXTURE_PAGES}

    # ---- reference files.
    _write_taxon_tab(root / "eol" / "dh21" / "taxon.tab", dh.rows)
    _write_csv(root / "eol" / "scraped_page_ids.csv", ["page_id", "scientific_name"],
               [[str(page), name] for page, name in EOL_SCRAPED])
    _write_vernaculars(rng, root / "eol" / "vernacularnames.csv", page_species)
    _write_itis(rng, root / "itis" / "species_level_taxonomy_chains.csv", species)
    _write_inat_dwca(rng, root / "inat" / "dwca", species)
    _write_resolver(root / "resolver" / "resolved.jsonl", page_species)
    _write_rare_species(rng, root / "rarespecies", eol_images, page_species, species)
    _write_config(root)
    (root / "expected.json").write_text(json.dumps({
        "catalogued": expected.catalogued, "rejected": expected.rejected, "hostile": expected.hostile,
        "fixtures": expected.fixtures, "seed": seed, "images": images,
    }, indent=1, sort_keys=True) + "\n")
    return expected


def _bioscan_record(rng: random.Random, number: int, name: str, part: int, order: str, family: str,
                    genus: str, species: str) -> dict[str, str]:
    return {
        "processid": f"BIOUG{number:07d}", "sampleid": f"S{number:07d}", "name": species if species != NC else genus,
        "phylum": "Arthropoda", "class": "Insecta", "order": order, "family": family,
        "subfamily": NC, "tribe": NC, "genus": genus, "species": species, "subspecies": NC,
        "uri": f"BOLD:A{rng.randrange(10**6):06d}", "nucraw": "ACGT" * 4, "image_file": name,
        "chunk_number": str(part), "large_diptera_family": NC, "medium_diptera_family": NC,
        "small_diptera_family": NC, "large_insect_order": order, "medium_insect_order": order,
        "small_insect_order": order,
    }


def _tar_info(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, FIXED_MTIME, 0o644
    info.uname = info.gname = "eol"
    return info


def _tar_bytes(members: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for name, data in members:
            archive.addfile(_tar_info(name, len(data)), io.BytesIO(data))
    return buffer.getvalue()


def _write_archive(path: Path, members: Iterable[tuple[str, bytes]]) -> None:
    """Write members into a .tar.gz as they come (streamed: one member in memory at a time)."""
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as compressed, \
            tarfile.open(fileobj=compressed, mode="w|", format=tarfile.USTAR_FORMAT) as archive:
        for name, data in members:
            archive.addfile(_tar_info(name, len(data)), io.BytesIO(data))


def _write_truncated_archive(path: Path, members: list[tuple[str, bytes]]) -> int:
    """Write a .tar.gz cut in half; return how many members lie wholly in what can still be decompressed."""
    tar = _tar_bytes(members)
    compressed = gzip.compress(tar, mtime=0)
    cut = compressed[: len(compressed) // 2]
    path.write_bytes(cut)
    readable = len(zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(cut))
    complete, offset = 0, 0
    for _, data in members:
        end = offset + 512 + len(data)
        if end <= readable:
            complete += 1
        offset = end + (-len(data)) % 512
    return complete


def _write_csv(path: Path, header: list[str], rows: list[list[str]], delimiter: str = ",") -> None:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _write_taxon_tab(path: Path, rows: list[dict[str, str]]) -> None:
    header = ["taxonID", "source", "furtherInformationURL", "acceptedNameUsageID", "parentNameUsageID",
              "scientificName", "taxonRank", "taxonomicStatus", "datasetID", "canonicalName", "authority", "eolID",
              "Landmark", "higherClassification"]
    # A synonym row without eolID (skipped by the reader) and a name with a quote (TSV, quoting off).
    rows = [*rows, {**rows[-1], "taxonID": "EOL-SYN-1", "eolID": "", "taxonomicStatus": "synonym",
                    "canonicalName": 'Pica "hudsonica"'}]
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write("\t".join(header) + "\n")
        for row in rows:
            handle.write("\t".join(row[column] for column in header) + "\n")


def _write_vernaculars(rng: random.Random, path: Path, page_species: dict[int, Species]) -> None:
    rows = [[str(page), canonical, name, language, "sample", "", "preferred" if preferred else ""]
            for page, canonical, name, language, preferred in EOL_VERNACULAR_FIXTURES]
    for page, item in sorted(page_species.items()):
        if item.common and rng.random() < 0.5:
            canonical = f"<i>{item.binomial}</i>" if rng.random() < 0.3 else item.binomial
            rows.append([str(page), canonical, item.common, "eng", "sample", "preferred",
                         "preferred" if rng.random() < 0.7 else ""])
    _write_csv(path, ["page_id", "canonical_form", "vernacular_string", "language_code", "resource_name",
                      "is_preferred_by_resource", "is_preferred_by_eol"], rows)


def _write_itis(rng: random.Random, path: Path, species: list[Species]) -> None:
    header = ["hierarchy_string_tsn", "hierarchy_string_names", "terminal_tsn", "terminal_scientific_name",
              "terminal_vernacular", "terminal_vernacular_lang", "hierarchy_string_ranks",
              "Kingdom", "Phylum", "Class", "Order", "Family", "Genus", "Species"]
    entries = [(*ranks, common, lang) for (*ranks, common, lang) in ITIS_FIXTURES]
    for item in species:
        if rng.random() < 0.4:
            entries.append((*item.ranks[:6], item.binomial,
                            item.common, "English" if item.common else ""))
    rows = []
    for number, (*ranks, common, lang) in enumerate(entries, start=1):
        tsns = "-".join(str(100000 + number * 10 + level) for level in range(7))
        rows.append([tsns, "->".join(ranks), str(100000 + number * 10 + 6), ranks[-1], common, lang,
                     "Kingdom->Phylum->Class->Order->Family->Genus->Species", *ranks])
    _write_csv(path, header, rows)


def _write_inat_dwca(rng: random.Random, folder: Path, species: list[Species]) -> None:
    taxa_rows, vernacular_rows = [], []
    entries = list(INAT_VERNACULAR_FIXTURES)
    for item in species:
        if item.in_inat:
            entries.append((item.binomial, *item.ranks, item.common))
    for number, (name, kingdom, phylum, cls, order, family, genus, epithet, common) in enumerate(entries, 1):
        taxa_rows.append([str(number), f"https://www.inaturalist.org/taxa/{number}", str(number), "",
                          kingdom, phylum, cls, order, family, genus, epithet, "", "2023-01-01",
                          name, "species", ""])
        if common:
            vernacular_rows.append([str(number), common, "en", "", "", "sample", "english", "", "2023-01-01"])
    _write_csv(folder / "taxa.csv", ["id", "taxonID", "identifier", "parentNameUsageID", "kingdom", "phylum",
                                     "class", "order", "family", "genus", "specificEpithet",
                                     "infraspecificEpithet", "modified", "scientificName", "taxonRank",
                                     "references"], taxa_rows)
    _write_csv(folder / "VernacularNames-english.csv", ["id", "vernacularName", "language", "locality",
                                                         "countryCode", "source", "lexicon", "contributor",
                                                         "created"], vernacular_rows)


def _write_resolver(path: Path, page_species: dict[int, Species]) -> None:
    lines = []
    for name, (kingdom, phylum, cls, order, family) in RESOLVER_FIXTURES:
        genus = name.split()[0]
        lines.append({name: {"Catalogue of Life": {"kingdom": kingdom, "phylum": phylum, "class": cls,
                                                  "order": order, "family": family, "genus": genus,
                                                  "species": name}}})
    with open(path, "w", encoding="utf-8") as handle:
        for line in lines:
            handle.write(json.dumps(line) + "\n")


def _write_rare_species(rng: random.Random, folder: Path, eol_images: dict[int, list[str]],
                        page_species: dict[int, Species], species: list[Species]) -> None:
    prefix = "/data/rare-species/2024-03-20/"
    seen = {"Mobula birostris": [prefix + name for name in eol_images.get(49672921, [])[:2]]
            + ["/data/rare-species/2024-03-20/1056352_EOL-media-269-1325222.jpg"]}
    unseen = {"Animalia-Chordata-Reptilia-Squamata-Boidae-Charina-umbratica":
              [prefix + name for name in eol_images.get(1000090, [])[:2]]}
    # An unseen species that lives in iNat21 (and maybe EOL) too: excluded everywhere by its taxon.
    shared = next((s for s in species if s.in_inat and s.in_eol), None)
    if shared is not None:
        page = next(p for p, s in page_species.items() if s is shared)
        unseen["-".join(shared.ranks)] = [prefix + name for name in eol_images.get(page, [])[:1]]
    (folder / "seen_in_training.json").write_text(json.dumps(seen, indent=1) + "\n")
    (folder / "unseen_in_training.json").write_text(json.dumps(unseen, indent=1) + "\n")


def _write_config(root: Path) -> None:
    (root / "tol.toml").write_text("""\
# Settings for this sample collection; relative paths are relative to this file.
database_url = "sqlite:///catalog.sqlite"
inat21_root = "inat21/train"
eol_root = "eol/media_cargo_archive"
bioscan_root = "bioscan/cropped_256"
bioscan_metadata = "bioscan/BIOSCAN_Insect_Dataset_metadata.jsonld"
eol_taxon_tab = "eol/dh21/taxon.tab"
eol_vernacular = "eol/vernacularnames.csv"
eol_scraped_page_ids = "eol/scraped_page_ids.csv"
itis_chains = "itis/species_level_taxonomy_chains.csv"
inat_taxa = "inat/dwca/taxa.csv"
inat_vernacular = "inat/dwca/VernacularNames-english.csv"
resolver_output = "resolver/resolved.jsonl"
rare_seen = "rarespecies/seen_in_training.json"
rare_unseen = "rarespecies/unseen_in_training.json"
output_dir = "shards"
cache_dir = ".tol-cache"
""")
