"""Keyset cursors: the position a page ends at, as an opaque string the client hands back.

A cursor is (a time, an id): the list's `last_activity_at` and a thread's `timestamp`, each
with the row's id to break ties, so every page starts exactly after the last row shown.
"""

import base64
import binascii
from datetime import UTC, datetime
from uuid import UUID


class InvalidCursor(ValueError):
    pass


def cursor_encode(when: datetime, ident: UUID) -> str:
    raw = f"{when.isoformat()}|{ident}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def cursor_decode(cursor: str) -> tuple[datetime, UUID]:
    """The keyset position a cursor names; InvalidCursor for anything we did not give out.

    A cursor is the client's to forge: its time is normalised to UTC here, so one at the
    calendar's edge (`9999-12-31T23:59:59-05:00`) is refused rather than overflowing in
    the query (a 500).
    """
    invalid = InvalidCursor(f"{cursor[:100]!r} is not a cursor this API gave out")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when, _, ident = raw.partition("|")
        decoded = datetime.fromisoformat(when), UUID(ident)
        if decoded[0].tzinfo is None:
            raise invalid
        return decoded[0].astimezone(UTC), decoded[1]
    except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError):
        raise invalid from None
