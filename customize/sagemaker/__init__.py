"""SageMaker training jobs running the project's own trainer (torchrun / DDP), HPO and registry.

Nothing here imports boto3 at import time; the CLI commands load it when they talk to AWS.
"""
