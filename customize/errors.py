"""The customize package's errors: each carries one line fit to show a user.

CustomizeError
 ├── UsageError          bad input caught before any AWS call (unknown model, bad hyper-parameter)
 ├── DatasetError        a dataset that Bedrock would reject, or a conversion that cannot be done
 ├── ImportFolderError   a model folder that Bedrock Custom Model Import would reject
 ├── AwsError            an AWS failure, already translated to one line (see aws_errors.py)
 └── OperationFailed     a job, import or deployment that ended badly (carries AWS's failureMessage)
"""

from __future__ import annotations


class CustomizeError(Exception):
    """Base class; ``str(error)`` is the single line the CLI prints."""


class UsageError(CustomizeError):
    pass


class DatasetError(CustomizeError):
    pass


class ImportFolderError(CustomizeError):
    pass


class AwsError(CustomizeError):
    pass


class OperationFailed(CustomizeError):
    pass
