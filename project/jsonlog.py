"""Log records as JSON lines, for production's stdout.

One object per line, so a log collector (docker logs, journald, Loki, CloudWatch) needs no
parser of its own: `time`, `level`, `logger`, `message`, the traceback as `exc_info` when
there is one, and whatever a caller passed in `extra=`.
"""

import json
import logging
from datetime import UTC, datetime

# The attributes every LogRecord has; anything else on a record came from `extra=`.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRIBUTES and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        # default=str: extras such as Django's `request` are objects, and a log line must
        # never be lost because one of them does not serialise.
        return json.dumps(entry, default=str, ensure_ascii=False)
