"""The variant registry: one SQLite file, ``$STRATA_HOME/variants.sqlite``.

The gateway reads it while the CLI writes it, in separate processes. WAL journaling lets readers
proceed during a write; every call opens its own short-lived connection, so a ``VariantStore`` is
safe to share between threads. Reading a registry that does not exist yet is not an error: it is
empty. This module imports nothing from AWS.
"""

from __future__ import annotations

import builtins
import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from customize.errors import UsageError
from customize.variants.targets import check_variant_name, parse_target

_SCHEMA = """
CREATE TABLE IF NOT EXISTS variants (
    name TEXT PRIMARY KEY,
    target TEXT NOT NULL,
    base_model TEXT,
    method TEXT,
    dataset_hash TEXT,
    hyperparameters TEXT NOT NULL DEFAULT '{}',
    job_arn TEXT,
    import_job_arn TEXT,
    model_arn TEXT,
    notes TEXT,
    created_at TEXT NOT NULL,
    lineage TEXT NOT NULL DEFAULT '{}'
)
"""
_COLUMNS = (
    "name", "target", "base_model", "method", "dataset_hash", "hyperparameters",
    "job_arn", "import_job_arn", "model_arn", "notes", "created_at", "lineage",
)  # fmt: skip


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Variant:
    """What a variant is. ``target`` is a ``bedrock:`` or ``local:`` target, never ``variant:``."""

    name: str
    target: str
    base_model: str | None = None
    method: str | None = None  # fine_tuning, continued_pre_training, distillation, import, lora, …
    dataset_hash: str | None = None
    hyperparameters: dict[str, str] = field(default_factory=dict, hash=False)
    job_arn: str | None = None
    import_job_arn: str | None = None
    model_arn: str | None = (
        None  # the custom/imported model behind a provisioned or deployed target
    )
    notes: str | None = None
    created_at: str = field(default_factory=_now)
    # Where it came from, stage by stage: dataset, training_job, tuning_job, model_package,
    # import_job, imported_model (ARNs or hashes), as the SageMaker hand-off records them.
    lineage: dict[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        check_variant_name(self.name)
        parse_target(self.target)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class VariantExists(UsageError):
    pass


def default_store_path() -> Path:
    return Path(os.environ.get("STRATA_HOME") or ".strata") / "variants.sqlite"


def _row_to_variant(row: sqlite3.Row) -> Variant:
    data = dict(row)
    data["hyperparameters"] = json.loads(data["hyperparameters"] or "{}")
    data["lineage"] = json.loads(data.get("lineage") or "{}")
    return Variant(**data)


class VariantStore:
    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def default(cls) -> VariantStore:
        return cls(default_store_path())

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection | None]:
        if not self.path.exists():
            yield None
            return
        with closing(sqlite3.connect(self.path, timeout=5.0)) as connection:
            connection.row_factory = sqlite3.Row
            yield connection

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(self.path, timeout=5.0, isolation_level=None)) as connection:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(_SCHEMA)
            columns = {row[1] for row in connection.execute("PRAGMA table_info(variants)")}
            if "lineage" not in columns:  # a registry written before lineage was recorded
                connection.execute(
                    "ALTER TABLE variants ADD COLUMN lineage TEXT NOT NULL DEFAULT '{}'"
                )
            # IMMEDIATE takes the write lock up front, so check-then-insert cannot interleave.
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    def _select(self, where: str = "", params: tuple[str, ...] = ()) -> builtins.list[Variant]:
        with self._reading() as connection:
            if connection is None:
                return []
            try:
                rows = connection.execute(
                    f"SELECT * FROM variants {where} ORDER BY name", params
                ).fetchall()
            except sqlite3.OperationalError as error:
                if "no such table" in str(error):  # created by a writer that has not committed yet
                    return []
                raise
        return [_row_to_variant(row) for row in rows]

    def get(self, name: str) -> Variant | None:
        found = self._select("WHERE name = ?", (name,))
        return found[0] if found else None

    def add(self, variant: Variant, *, replace: bool = False) -> None:
        values = variant.as_dict()
        values["hyperparameters"] = json.dumps(variant.hyperparameters, sort_keys=True)
        values["lineage"] = json.dumps(variant.lineage, sort_keys=True)
        placeholders = ", ".join("?" for _ in _COLUMNS)
        with self._writing() as connection:
            exists = connection.execute(
                "SELECT 1 FROM variants WHERE name = ?", (variant.name,)
            ).fetchone()
            if exists and not replace:
                raise VariantExists(
                    f"variant {variant.name!r} already exists (use --replace to overwrite it)"
                )
            verb = "INSERT OR REPLACE" if replace else "INSERT"
            connection.execute(
                f"{verb} INTO variants ({', '.join(_COLUMNS)}) VALUES ({placeholders})",
                tuple(values[column] for column in _COLUMNS),
            )

    def remove(self, name: str) -> bool:
        if not self.path.exists():
            return False
        with self._writing() as connection:
            return connection.execute("DELETE FROM variants WHERE name = ?", (name,)).rowcount > 0

    def list(self) -> builtins.list[Variant]:
        return self._select()

    def retarget(self, model_arn: str, target: str) -> builtins.list[str]:
        """Point every variant still on the bare ``model_arn`` at ``target`` (the serving ARN
        that now exists for it); returns the variant names changed."""
        if not self.path.exists():
            return []
        parse_target(target)
        bare = f"bedrock:{model_arn}"
        with self._writing() as connection:
            names = [
                row[0]
                for row in connection.execute(
                    "SELECT name FROM variants WHERE model_arn = ? AND target = ?",
                    (model_arn, bare),
                )
            ]
            connection.execute(
                "UPDATE variants SET target = ? WHERE model_arn = ? AND target = ?",
                (target, model_arn, bare),
            )
        return names

    def link(self, name: str, entries: dict[str, str]) -> bool:
        """Add ``entries`` to a variant's lineage (replacing those keys); False when there is no
        such variant. The gateway links experiment decisions here: … → variant → experiment →
        promotion."""
        if not self.path.exists():
            return False
        with self._writing() as connection:
            row = connection.execute(
                "SELECT lineage FROM variants WHERE name = ?", (name,)
            ).fetchone()
            if row is None:
                return False
            lineage = json.loads(row[0] or "{}") | entries
            connection.execute(
                "UPDATE variants SET lineage = ? WHERE name = ?",
                (json.dumps(lineage, sort_keys=True), name),
            )
        return True

    def routing_to(self, target: str) -> builtins.list[str]:
        return [variant.name for variant in self._select("WHERE target = ?", (target,))]
