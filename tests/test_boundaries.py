"""The one-way arrow, checked: the services never see a provider's wire format.

Read from the source with `ast`, so an import inside a function counts as well.
"""

import ast
from pathlib import Path

import pytest

INBOX = Path(__file__).resolve().parent.parent / "inbox"
# What only the providers (and the webhook's door) may import: the wire schema and its
# parser, and the read API.
FORBIDDEN = ("pydantic", "inbox.events", "inbox.api", "inbox.providers")


def imported_modules(source: str) -> set[str]:
    """Every module the source imports; `from inbox import api` counts as `inbox.api`."""
    modules: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
            modules.update(f"{node.module}.{alias.name}" for alias in node.names)
    return modules


def forbidden_imports(source: str) -> set[str]:
    return {
        module
        for module in imported_modules(source)
        if any(module == name or module.startswith(name + ".") for name in FORBIDDEN)
    }


DOMAIN = sorted(
    [*(INBOX / "services").glob("*.py"), INBOX / "commands.py", INBOX / "db.py"],
    key=str,
)


@pytest.mark.parametrize("path", DOMAIN, ids=lambda p: str(p.relative_to(INBOX)))
def test_the_services_import_no_wire_format(path):
    assert forbidden_imports(path.read_text()) == set()


def test_the_check_sees_every_form_of_import():
    source = """
import pydantic
from inbox import api
def later():
    from inbox.events import NewMessage
    from inbox.providers.generic import event_parse
"""
    assert forbidden_imports(source) == {
        "pydantic",
        "inbox.api",
        "inbox.events",
        "inbox.events.NewMessage",
        "inbox.providers.generic",
        "inbox.providers.generic.event_parse",
    }
    assert forbidden_imports("from inbox import db, live\nimport django") == set()
