"""HTML read as a document, the way the browser and htmx read it: by element, id and
attribute, never by substrings that break when a class or an attribute's place changes."""

from bs4 import BeautifulSoup, Tag
from django.http import HttpResponse


def parse(html: str | bytes | HttpResponse) -> BeautifulSoup:
    """A page, a fragment or a pushed frame as a tree."""
    if isinstance(html, HttpResponse):
        html = html.content
    if isinstance(html, bytes):
        html = html.decode()
    return BeautifulSoup(html, "html.parser")


def by_id(html: str | bytes | HttpResponse | BeautifulSoup, ident: str) -> Tag | None:
    """The element with this id, or None."""
    tree = html if isinstance(html, BeautifulSoup) else parse(html)
    found = tree.find(id=ident)
    return found if isinstance(found, Tag) else None


def has_id(html: str | bytes | HttpResponse | BeautifulSoup, ident: str) -> bool:
    return by_id(html, ident) is not None


def ids(html: str | bytes | HttpResponse, prefix: str) -> list[str]:
    """The ids after `prefix` of the list items whose id starts with it, in document order
    (`ids(page, "conversation-")` -> the rows' conversation ids)."""
    return [li["id"].removeprefix(prefix) for li in parse(html).select(f'li[id^="{prefix}"]')]


def attr(html: str | bytes | HttpResponse | BeautifulSoup, ident: str, name: str) -> str | None:
    """An attribute of the element with this id (None if either is missing)."""
    element = by_id(html, ident)
    return None if element is None else element.get(name)


def swaps(html: str | bytes) -> list[tuple[str, str]]:
    """A push's out-of-band swaps, in order: (element id, hx-swap-oob)."""
    return [(el.get("id", ""), el["hx-swap-oob"]) for el in parse(html).select("[hx-swap-oob]")]


def swapped(html: str | bytes) -> list[str]:
    """Just the hx-swap-oob values of a push, in order."""
    return [swap for _, swap in swaps(html)]


def inside(html: str | bytes, swap: str, ident: str) -> Tag | None:
    """The element with this id inside the out-of-band element swapped as `swap` (a row
    inserted by `afterbegin:#conversation-list`, say, not the `delete` before it)."""
    for wrapper in parse(html).select("[hx-swap-oob]"):
        if wrapper["hx-swap-oob"] == swap:
            found = wrapper if wrapper.get("id") == ident else wrapper.find(id=ident)
            if isinstance(found, Tag):
                return found
    return None


def text(html: str | bytes | HttpResponse | BeautifulSoup, ident: str) -> str:
    """The whitespace-collapsed text of the element with this id, as an agent reads it."""
    element = by_id(html, ident)
    assert element is not None, f"no #{ident}"
    return " ".join(element.get_text().split())
