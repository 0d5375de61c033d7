"""Typer commands; ``customize.cli`` assembles them into the ``customize`` and ``variants`` apps."""
