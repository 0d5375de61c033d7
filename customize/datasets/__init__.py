"""JSONL datasets for Bedrock customization: per-record rules, streaming validation, conversion."""
