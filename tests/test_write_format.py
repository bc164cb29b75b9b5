"""The sample format and the small helpers of the write stage, with no catalog: tar members, `.idx` offsets,
named queries, atomic writes."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from etl.atomic import atomic_write
from etl.named_sql import parse
from etl.write.queue import QUERIES
from etl.write.tar import (
    FIXED_MTIME,
    MEMBER_MODE,
    TAR_USER,
    HashingFile,
    SampleLayout,
    SampleRecord,
    SampleTarWriter,
    idx_line,
    idx_text,
    member_header,
    sample_members,
)

RECORD = SampleRecord(
    position=0, image_id="0b5e7d2c-0000-5000-8000-000000000001", source="inat21", path="c/x.jpg",
    member_offset=None, byte_size=10, eol_content_id=None, eol_page_id=None, inat21_filename="x.jpg",
    inat21_cls_name="A_B_C_D_E_F_g", inat21_cls_num=3, bioscan_part=None, bioscan_filename=None,
    kingdom="animalia", phylum="chordata", class_="aves", order="passeriformes", family="corvidae",
    genus="corvus", species="corax", scientific_name="Corvus corax", taxonomic_name="Animalia Chordata Aves",
    tagged_name="a photo of Corvus corax.", common_name="Common Raven", class_index_kingdom=0,
    class_index_phylum=1, class_index_class=2, class_index_order=3, class_index_family=4, class_index_genus=5,
    class_index_species=6)


def test_a_sample_is_thirteen_members_at_the_offsets_its_idx_line_gives():
    members = sample_members(RECORD, "taxonTag_com", b"\xff\xd8jpeg")
    assert len(members) == 13 and members["txt"] == members["taxonTag_com.txt"]
    record = json.loads(members["json"])
    assert record["class"] == "Aves" and record["class_index"] == [0, 1, 2, 3, 4, 5, 6]
    buffer = io.BytesIO()
    hashing = HashingFile(buffer)
    writer = SampleTarWriter(hashing)
    line = idx_line(RECORD.image_id, writer.write(RECORD.image_id, members))
    writer.close()
    data = buffer.getvalue()
    assert hashing.size == len(data) and len(data) % tarfile.RECORDSIZE == 0
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        infos = archive.getmembers()
    assert [i.name.split(".", 1)[1] for i in infos] == sorted(members)
    assert {(i.mtime, i.mode, i.uname) for i in infos} == {(FIXED_MTIME, 0o444, "tol")}
    fields = line.split()
    for extension, offset, size, name in zip(fields[::4], fields[1::4], fields[2::4], fields[3::4], strict=True):
        assert data[int(offset):int(offset) + int(size)] == members[extension]
        assert name == f"{RECORD.image_id}.{extension}"
    assert idx_text([line]) == f"v1.2 1\n{line}\n"


def test_json_member_has_the_same_keys_and_types_in_every_source():
    eol = RECORD._replace(source="eol", eol_content_id=12784812, eol_page_id=51655800, inat21_filename=None,
                          inat21_cls_name=None, inat21_cls_num=None, license_key="cc-by-nc-sa",
                          license_name="cc-by-nc-sa-3.0", rights_holder="Jane Doe",
                          source_url="https://example.org/m.jpg")
    bioscan = RECORD._replace(source="bioscan", bioscan_part=7, bioscan_filename="BIOUG68114-B02.jpg",
                              inat21_filename=None, inat21_cls_name=None, inat21_cls_num=None)
    records = [json.loads(sample_members(r, "taxonTag_com", b"")["json"]) for r in (RECORD, eol, bioscan)]
    types = [{key: type(value).__name__ for key, value in record.items()} for record in records]
    assert types[0] == types[1] == types[2]
    assert set(types[0].values()) == {"str", "list"} and len(types[0]) == 25
    # Provenance: an image of unknown license says so; the texts are "" when the collection gave none.
    assert (records[0]["license"], records[0]["license_name"], records[0]["rights_holder"]) == ("unknown", "", "")
    assert (records[1]["license"], records[1]["license_name"], records[1]["license_link"], records[1]["rights_holder"],
            records[1]["source_url"]) == ("cc-by-nc-sa", "cc-by-nc-sa-3.0", "", "Jane Doe", "https://example.org/m.jpg")
    assert (records[0]["inat21_cls_num"], records[0]["eol_content_id"]) == ("3", "")
    assert (records[1]["eol_content_id"], records[1]["eol_page_id"], records[1]["inat21_cls_num"]) == (
        "12784812", "51655800", "")
    assert (records[2]["bioscan_part"], records[2]["bioscan_filename"]) == ("7", "BIOUG68114-B02.jpg")


def test_lower_case_captions_rename_only_the_caption_members():
    original = sample_members(RECORD, "taxonTag_com", b"j")
    lower = sample_members(RECORD, "taxonTag_com", b"j", "lower")
    assert "taxonTag_com.txt" in original and "taxontag_com.txt" not in original
    assert sorted(lower) == sorted(name.lower() for name in original)
    assert {name: lower[name.lower()] for name in original} == original


def test_named_queries():
    assert parse("-- about\n-- name: a\nSELECT 1\n-- why\n-- name: b\nSELECT 2\n") == {
        "a": "SELECT 1\n-- why", "b": "SELECT 2"}
    with pytest.raises(ValueError, match="twice"):
        parse("-- name: a\nSELECT 1\n-- name: a\nSELECT 2\n")
    with pytest.raises(ValueError, match="empty"):
        parse("-- name: a\n\n-- name: b\nSELECT 2\n")
    assert {"claim_next", "lock_own_claim", "record_manifest", "reset"} <= set(QUERIES)


def test_atomic_write_leaves_the_old_file_or_the_new_one(tmp_path: Path):
    target = tmp_path / "sub" / "f.txt"
    with atomic_write(target, "w", encoding="utf-8") as handle:
        handle.write("one")
    with pytest.raises(RuntimeError), atomic_write(target, "w", encoding="utf-8") as handle:
        handle.write("two")
        raise RuntimeError("interrupted")
    assert target.read_text() == "one" and sorted(p.name for p in target.parent.iterdir()) == ["f.txt"]


@pytest.mark.parametrize(("name", "size"), [
    ("0b5e7d2c-0000-5000-8000-000000000001.jpg", 21_345), ("k.json", 0), ("k.taxonTag_com.txt", 511),
    ("x" * 100, 1), ("d" * 50 + "/" + "y" * 60, 2),  # the longest name field; a longer name: tarfile
    ("big.jpg", 8**11 - 1), ("k.txt", 1_000_000_000),
])
def test_member_headers_are_those_tarfile_writes(name: str, size: int):
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, FIXED_MTIME, MEMBER_MODE
    info.uname = info.gname = TAR_USER
    assert member_header(name.encode(), size) == info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "strict")


def _general(records, txt_field: str, caption_case: str, jpegs) -> tuple[bytes, list[str]]:
    buffer = io.BytesIO()
    writer = SampleTarWriter(HashingFile(buffer))
    lines = [idx_line(r.image_id, writer.write(r.image_id, sample_members(r, txt_field, j, caption_case)))
             for r, j in zip(records, jpegs, strict=True)]
    writer.close()
    return buffer.getvalue(), lines


@pytest.mark.parametrize(("txt_field", "caption_case"), [("taxonTag_com", "original"), ("com", "lower")])
def test_the_writers_layout_gives_the_general_paths_bytes(txt_field: str, caption_case: str):
    raven = RECORD
    # Another taxon, provenance given and missing (None), non-ASCII names and JSON escapes, a key of another
    # length, a non-ASCII key and one too long for a ustar name (both take the general path).
    owl = RECORD._replace(image_id="owl-1", species="alba", genus="tyto", family="tytonidae",
                          scientific_name="Tyto alba", common_name='Chouette "effraie" \\ é\u2028',
                          tagged_name="a photo of Tyto alba.", class_index_species=9, license_key="cc0",
                          license_name=None, rights_holder="Zoë", source="eol", eol_content_id=5, eol_page_id=0)
    records = [raven, owl, raven._replace(image_id="0b5e7d2c-0000-5000-8000-000000000002"),
               owl._replace(image_id="é-clé"), raven._replace(image_id="d/" + "k" * 80), owl._replace(image_id="owl-2")]
    jpegs = [b"\xff\xd8" + bytes([n]) * (n * 301) for n in range(len(records))]
    expected, expected_lines = _general(records, txt_field, caption_case, jpegs)
    buffer = io.BytesIO()
    stream = HashingFile(buffer)
    layout = SampleLayout(txt_field, caption_case)
    lines = [layout.write(stream, r, j) for r, j in zip(records, jpegs, strict=True)]
    SampleTarWriter(stream).close()
    assert buffer.getvalue() == expected and lines == expected_lines
    with tarfile.open(fileobj=io.BytesIO(buffer.getvalue())) as archive:
        owl_json = json.loads(archive.extractfile("owl-1.json").read())  # type: ignore[union-attr]
        assert archive.extractfile("owl-1.jpg").read() == jpegs[1]  # type: ignore[union-attr]
    assert (owl_json["common"], owl_json["license"], owl_json["license_name"], owl_json["rights_holder"],
            owl_json["eol_page_id"], owl_json["species"], owl_json["class_index"]) == (
        'Chouette "effraie" \\ é\u2028', "cc0", None, "Zoë", "0", "alba", [0, 1, 2, 3, 4, 5, 9])


def test_layouts_kept_are_bounded_and_a_taxon_laid_out_again_gives_the_same_bytes(monkeypatch):
    import etl.write.tar as tar

    monkeypatch.setattr(tar, "_MAX_TAXA", 2)
    taxa = [RECORD._replace(image_id=f"k-{n}", species=f"corax{n}", scientific_name=f"Corvus corax{n}",
                            class_index_species=10 + n) for n in range(4)]
    records = [*taxa, taxa[0]._replace(image_id="k-again"), taxa[3]._replace(image_id="k-last")]
    jpegs = [bytes([n]) * (200 + 97 * n) for n in range(len(records))]
    expected, expected_lines = _general(records, "taxonTag_com", "original", jpegs)
    buffer = io.BytesIO()
    stream = HashingFile(buffer)
    layout = SampleLayout("taxonTag_com", "original")
    lines = [layout.write(stream, r, j) for r, j in zip(records, jpegs, strict=True)]
    SampleTarWriter(stream).close()
    assert buffer.getvalue() == expected and lines == expected_lines
    assert len(layout._taxa) == 2  # the two laid out last: taxa[0] again, then taxa[3]
