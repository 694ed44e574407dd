"""Which package may import which, read from the source with `ast` (so an import inside a
function counts as well), so a stray import fails here.

- The one-way arrow: the services and the selectors never see a provider's wire format.
- inbox/ never imports devtools/: the domain runs without the simulator and the seeder.
- The agents' views read only through the selectors: no JSON API, no search plans.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
INBOX = ROOT / "inbox"
# What only the providers (and the webhook's door) may import: the wire schema and its
# parser, and the read API.
FORBIDDEN = ("pydantic", "inbox.api", "inbox.providers")


def imported_modules(source: str) -> set[str]:
    """Every module a source imports, `from a import b` counted as both `a` and `a.b`, and
    `importlib.import_module("x")` / `__import__("x")` with a literal name as `x`."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and node.args:
            name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
            first = node.args[0]
            if name in {"import_module", "__import__"} and isinstance(first, ast.Constant):
                found.add(str(first.value))
    return found


def forbidden_imports(source: str) -> set[str]:
    return {
        module
        for module in imported_modules(source)
        if any(module == name or module.startswith(name + ".") for name in FORBIDDEN)
    }


DOMAIN = sorted(
    [
        *(INBOX / "services").glob("*.py"),
        *(INBOX / "selectors").glob("*.py"),
        INBOX / "commands.py",
        INBOX / "db.py",
    ],
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
    from inbox.providers.generic import event_parse
"""
    assert forbidden_imports(source) == {
        "pydantic",
        "inbox.api",
        "inbox.providers.generic",
        "inbox.providers.generic.event_parse",
    }
    assert forbidden_imports("from inbox import db, live\nimport django") == set()


def offenders(folder: str, forbidden: tuple[str, ...]) -> dict[str, set[str]]:
    """The files under `folder` importing a forbidden module (or anything inside one)."""
    bad = {}
    for path in sorted((ROOT / folder).rglob("*.py")):
        hits = {
            module
            for module in imported_modules(path.read_text())
            if any(module == f or module.startswith(f + ".") for f in forbidden)
        }
        if hits:
            bad[str(path.relative_to(ROOT))] = hits
    return bad


@pytest.mark.parametrize(
    "source",
    [
        "import devtools",
        "from devtools.seeding import seed",
        "from devtools import simulator",
        "def f():\n    import devtools.simulator",
        "importlib.import_module('devtools.seeding')",
    ],
)
def test_the_check_sees_every_way_of_importing(source):
    modules = imported_modules(source)
    assert any(m == "devtools" or m.startswith("devtools.") for m in modules), modules


def test_inbox_never_imports_devtools():
    assert offenders("inbox", ("devtools",)) == {}


def test_devtools_is_where_the_simulator_and_the_seeder_live():
    # The boundary means something only while they are on the far side of it.
    assert not (ROOT / "inbox" / "simulator.py").exists()
    assert not (ROOT / "inbox" / "seeding.py").exists()
    assert "inbox.models" in imported_modules((ROOT / "devtools" / "seeding.py").read_text())


def test_the_wire_schema_has_one_home():
    # inbox/events.py re-exported the generic provider's schema; a second name for it would
    # let the domain reach the wire format past FORBIDDEN again.
    assert not (ROOT / "inbox" / "events.py").exists()
    assert offenders("tests", ("inbox.events",)) == {}


def test_the_views_read_only_through_the_selectors():
    assert offenders("inbox/views", ("inbox.api", "inbox.search", "inbox.selectors.search")) == {}
