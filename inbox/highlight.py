"""The words a search found, marked in a message's text: by the rules of the text index
(inbox/selectors/search.py), so what is marked is what matched.

Both indexes fold case and accents (SQLite's unicode61 `remove_diacritics 2`, PostgreSQL's
`unaccent`) and take a word of three letters or more as a prefix; the folding here is
Unicode's decomposition without its combining marks, which agrees with both on the
languages the inbox serves.
"""

import re
import unicodedata

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from inbox.selectors.search import MIN_PREFIX_LENGTH, search_terms

_WORD = re.compile(r"[^\W_]+")
# A row's snippet: this much text before the first marked word, and this much in all.
SNIPPET_BEFORE = 40
SNIPPET_LENGTH = 140


def fold(text: str) -> str:
    """Text as the index compares it: accents dropped, case folded."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _matches(word: str, terms: list[str]) -> bool:
    folded = fold(word)
    return any(
        folded.startswith(term) if len(term) >= MIN_PREFIX_LENGTH else folded == term
        for term in terms
    )


def _spans(text: str, q: str) -> list[tuple[int, int]]:
    terms = [fold(term) for term in search_terms(q)]
    if not terms:
        return []
    return [m.span() for m in _WORD.finditer(text) if _matches(m.group(), terms)]


def _marked(text: str, spans: list[tuple[int, int]], start: int, end: int) -> str:
    parts, position = [], start
    for left, right in spans:
        if right <= start or left >= end:
            continue
        left, right = max(left, start), min(right, end)
        parts.append(escape(text[position:left]))
        parts.append(f"<mark>{escape(text[left:right])}</mark>")
        position = right
    parts.append(escape(text[position:end]))
    return "".join(parts)


def marked(text: str, q: str) -> SafeString:
    """The whole text, escaped, with every word the search `q` matches in <mark>."""
    return mark_safe(_marked(text, _spans(text, q), 0, len(text)))  # noqa: S308 (escaped above)


def snippet(text: str, q: str) -> SafeString:
    """A row's line of a matching message: from a little before its first matched word,
    escaped, the matched words in <mark>, cut with an ellipsis where the text goes on."""
    spans = _spans(text, q)
    first = spans[0][0] if spans else 0
    start = 0 if first <= SNIPPET_BEFORE else first - SNIPPET_BEFORE
    if start:
        # From the start of a word, not the middle of one.
        boundary = text.find(" ", start, first)
        start = boundary + 1 if boundary != -1 else start
    end = min(len(text), start + SNIPPET_LENGTH)
    html = _marked(text, spans, start, end)
    return mark_safe(("…" if start else "") + html + ("…" if end < len(text) else ""))  # noqa: S308
