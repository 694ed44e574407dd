"""The bench's own databases: created fresh (or reused when already seeded), counted directly."""

import sqlite3
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def is_postgres(url: str) -> bool:
    return url.startswith(("postgres://", "postgresql://"))


def postgres_with_name(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _admin_connection(url: str) -> psycopg.Connection:
    return psycopg.connect(postgres_with_name(url, "postgres"), autocommit=True)


def postgres_reachable(url: str) -> bool:
    try:
        with _admin_connection(url):
            return True
    except psycopg.Error:
        return False


def recreate(url: str) -> None:
    """An empty database at `url` (a SQLite file is deleted, a PostgreSQL one dropped)."""
    if is_postgres(url):
        name = urlsplit(url).path.lstrip("/")
        with _admin_connection(url) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{name}"')
        return
    path = Path(url.removeprefix("sqlite:///"))
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def ensure_exists(url: str) -> None:
    if is_postgres(url):
        name = urlsplit(url).path.lstrip("/")
        with _admin_connection(url) as admin:
            found = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            if not found:
                admin.execute(f'CREATE DATABASE "{name}"')
    else:
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)


def scalar(url: str, sql: str) -> int:
    """One number from the database, read directly (not through the server under test)."""
    if is_postgres(url):
        with psycopg.connect(url) as connection:
            return connection.execute(sql).fetchone()[0]
    with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
        return connection.execute(sql).fetchone()[0]
