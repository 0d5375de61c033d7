"""The variant registry: named targets the gateway can route to as ``variant:NAME``.

``store`` (SQLite, no AWS imports) is what the gateway reads; ``lookup`` builds variants from
Bedrock jobs and imports.
"""
