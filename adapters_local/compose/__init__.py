"""Adapter composition, one module per concern (as peft keeps one folder per method).

- ``spec``: compositions written as strings (``weighted:``, ``stack:``, ``parallel:``,
  ``route:``), parsed without torch so the gateway can check its config before loading a model.
- ``routers``: per-request adapter selection (keyword rules, n-gram or hidden-state classifiers).
- ``parallel``: combining the lanes of a parallel composition into one row's next-token logits.

Serving (``serving.lanes``, ``serving.batch_runner``) turns a request for a composition into
lanes of the running batch; training and export never import this package's serving side.
"""
