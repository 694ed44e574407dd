"""Reading a page as an agent sees it: an element's text and attributes, by id."""

from html.parser import HTMLParser

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}


class _Element(HTMLParser):
    def __init__(self, element_id: str) -> None:
        super().__init__()
        self.element_id = element_id
        self.depth = 0
        self.found: dict[str, str | None] | None = None
        self.parts: list[str] = []
        self.children: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.depth:
            self.children.append((tag, dict(attrs)))
            if tag not in VOID:
                self.depth += 1
        elif self.found is None and dict(attrs).get("id") == self.element_id:
            self.found = dict(attrs)
            self.depth = 1

    def handle_endtag(self, tag: str) -> None:
        if self.depth:
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if self.depth:
            self.parts.append(data)


def element(html: str | bytes, element_id: str) -> tuple[dict[str, str | None], str] | None:
    """The attributes and the whitespace-collapsed text of the element with that id."""
    parser = _Element(element_id)
    parser.feed(html.decode() if isinstance(html, bytes) else html)
    if parser.found is None:
        return None
    return parser.found, " ".join("".join(parser.parts).split())


def text(html: str | bytes, element_id: str) -> str:
    found = element(html, element_id)
    assert found is not None, f"no #{element_id}"
    return found[1]
