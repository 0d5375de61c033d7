"""``python -m customize …`` runs the customize CLI on its own (the bench scripts use it)."""

from customize.cli import main

main()
