"""Graders: score answers (live traffic, sampled, off the hot path; or a replayed dataset) and
store each score as an outcome beside the ledger record, as feedback is."""
