"""Persistence: the database (SQLAlchemy + Alembic) and content-addressed code packages."""

from lambdad.store.code import CodeStore
from lambdad.store.database import Database

__all__ = ["CodeStore", "Database"]
