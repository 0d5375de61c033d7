"""The response cache: a pipeline stage between admit and attempt (stage.py), its key (keys.py),
single-flight (flight.py) and its storage behind one Protocol (backends.py)."""
