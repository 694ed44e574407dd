"""Raw SQL for the migrations that differ by database back-end.

Django's migration loader skips modules whose names start with an underscore, so this is a
helper the numbered migrations share, not a migration.
"""

from collections.abc import Callable


def run_for_vendor(statements_by_vendor: dict[str, list[str]]) -> Callable:
    """A RunPython function executing the statements listed for the connection's vendor
    (none for a vendor not listed)."""

    def run(apps, schema_editor) -> None:
        for statement in statements_by_vendor.get(schema_editor.connection.vendor, []):
            schema_editor.execute(statement)

    return run
