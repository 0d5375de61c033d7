"""Serving a custom model: Provisioned Throughput, or an on-demand custom model deployment."""
