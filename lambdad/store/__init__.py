"""Persistence: the database (SQLAlchemy + Alembic) and content-addressed code packages."""

from lambdad.store.code import CodeStore
from lambdad.store.database import Database
from lambdad.store.holds import CodeHolds

__all__ = ["CodeHolds", "CodeStore", "Database"]
