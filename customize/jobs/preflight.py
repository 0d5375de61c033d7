"""Everything checked about a job's data and models before anything is uploaded or created.

Local files and S3 objects are validated the same way (streamed, bounded memory); record counts
are held to the family's limits with training and validation counted together, as AWS's
"Sum of training and validation records" quotas are; a distillation teacher must be one AWS pairs
with the student.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from customize.catalog import Family, distillation, model_id_of
from customize.datasets.formats import DatasetSpec, Role
from customize.datasets.remote import object_size, s3_opener
from customize.datasets.validate import DatasetScan
from customize.errors import DatasetError, UsageError
from customize.s3 import S3Location

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

DataSource = Path | S3Location


@dataclass(frozen=True)
class DataSummary:
    which: str
    records: int
    estimated_tokens: int
    warnings: tuple[str, ...]


def check_dataset(
    source: DataSource,
    which: str,
    role: Role,
    spec: DatasetSpec,
    *,
    media_bucket: str | None,
    s3: Callable[[], S3Client],
) -> DataSummary:
    """Scan one dataset; raises ``DatasetError`` with its first problems."""
    bound = spec.for_role(role).in_bucket(media_bucket)
    if isinstance(source, Path):
        scan = DatasetScan(source, bound)
        label = source.name
    else:
        object_size(s3(), source, which)
        scan = DatasetScan(s3_opener(s3(), source), bound, name=source.uri)
        label = source.uri
    first: list[str] = []
    warnings: list[str] = []
    for problem in scan:
        if problem.warning:
            if len(warnings) < 3:
                warnings.append(str(problem))
        elif len(first) < 3:
            first.append(str(problem))
    if first:
        more = scan.stats.problems - len(first)
        raise DatasetError(
            f"{which} data {label} is not valid: {'; '.join(first)}"
            + (f" (+{more} more)" if more > 0 else "")
            + "; see `strata customize validate`"
        )
    return DataSummary(which, scan.stats.records, scan.stats.estimated_tokens, tuple(warnings))


def check_record_total(spec: DatasetSpec, summaries: list[DataSummary]) -> None:
    """AWS's record quotas are for training and validation records together."""
    limit = spec.max_records
    total = sum(s.records for s in summaries)
    if limit is not None and len(summaries) > 1 and total > limit:
        parts = " + ".join(f"{s.records} {s.which}" for s in summaries)
        raise DatasetError(
            f"{parts} = {total} records, more than the maximum of {limit} for training and "
            "validation together"
        )


def check_teacher(family: Family, teacher: str) -> None:
    rules = distillation()
    teacher_id = model_id_of(teacher)
    for prefix, students in rules.teachers.items():
        if teacher_id.startswith(prefix):
            if family.name not in students:
                raise UsageError(
                    f"teacher {teacher_id} cannot distill into {family.display} (it teaches "
                    f"{', '.join(students)}; {rules.teachers_note})"
                )
            return
    known = ", ".join(sorted({p.removeprefix("us.") for p in rules.teachers}))
    raise UsageError(
        f"{teacher_id} is not a distillation teacher Strata knows (known: {known}; "
        f"{rules.teachers_note})"
    )


def check_log_source(s3: S3Client, location: S3Location) -> None:
    listed = s3.list_objects_v2(Bucket=location.bucket, Prefix=location.key, MaxKeys=1)
    if not listed.get("KeyCount"):
        raise DatasetError(f"no invocation logs under {location.uri}")
