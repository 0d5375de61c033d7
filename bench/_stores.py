"""The shared PostgreSQL and Redis a benchmark run uses: a schema and a key prefix of its own."""

from __future__ import annotations

import secrets

PG_BASE = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/0"


def make_run_stores(tag: str) -> tuple[str, str, str]:
    """A PostgreSQL schema and a Redis key prefix for one run: (schema, prefix, database URL)."""
    import psycopg

    schema = tag + secrets.token_hex(4)
    prefix = f"strata-bench:{secrets.token_hex(4)}:"
    with psycopg.connect(PG_BASE, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return schema, prefix, f"{PG_BASE}?options=-csearch_path%3D{schema}"


def drop_run_stores(schema: str, prefix: str) -> None:
    """Drop the run's PostgreSQL schema and its Redis keys."""
    import psycopg
    import redis

    with psycopg.connect(PG_BASE, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")
    client = redis.Redis.from_url(REDIS_URL)
    for k in client.scan_iter(prefix + "*"):
        client.delete(k)
    client.close()
