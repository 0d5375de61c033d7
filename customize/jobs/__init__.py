"""Bedrock fine-tuning jobs: hyper-parameters, request building, submission and following."""
