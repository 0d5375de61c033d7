"""Experiments that decide: statistics over the ledger's per-variant records (``stats``),
outcomes from users (``feedback``) and the per-experiment report (``report``)."""
