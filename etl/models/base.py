"""What every catalog table shares: the declarative base, constraint naming and column types."""

from __future__ import annotations

from sqlalchemy import MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Byte-wise ("C") collation on PostgreSQL for ids and file names: they are compared, sorted and indexed millions
# of times, locale-aware comparison costs several times more, and byte order is what SQLite uses too.
IMAGE_ID = String(36).with_variant(String(36, collation="C"), "postgresql")
KEY_TEXT = Text().with_variant(Text(collation="C"), "postgresql")


class Base(DeclarativeBase):
    """The declarative base of every catalog table; constraints are named by NAMING_CONVENTION."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
