"""Observability: one record per call (built by one settle hook) feeds the metrics core, the
access log and the tracer; exporters (Prometheus ``/metrics``, CloudWatch EMF) read the core."""
