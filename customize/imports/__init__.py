"""Bedrock Custom Model Import: checking a Hugging Face folder, uploading it, importing it."""
