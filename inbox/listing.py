"""What an agent's conversation list shows: its filter tab and search, defined once.

The same state arrives from a page's query string (`?status=closed&q=boleto`), from the
socket's URL and from the socket's `view` messages (static/inbox/live.js); all three are
parsed here, with the same defaults and limits, so a row is pushed to a page by the very
rules that listed it. The page renders the state back (`query`, and `data-live-status` /
`data-live-q` on #list-results for live.js), never re-parsing the address bar.
"""

from collections.abc import Mapping
from dataclasses import dataclass, replace

from django.utils.http import urlencode

from inbox.models import Conversation

# The list's filter tabs, as they appear in the URL (`?status=`), and the state each selects.
STATUS_FILTERS: dict[str, str | None] = {
    "open": Conversation.Status.OPEN,
    "closed": Conversation.Status.CLOSED,
    "all": None,
}
DEFAULT_STATUS = "open"
# The list's orders (`?sort=`): newest activity first, or the open conversations whose
# customer waits for us, longest-waiting first (README, "Triage").
SORTS = ("activity", "waiting")
DEFAULT_SORT = "activity"
# `?assignee=`: "me" (the agent looking), "none" (nobody's), or an agent's username; empty
# for everyone's. Mine and Unassigned are the tabs of the first two, over open conversations.
ASSIGNEE_TABS = {"mine": "me", "unassigned": "none"}
MAX_USERNAME_LENGTH = 150
# The search box's maxlength: a longer query is cut, not refused.
MAX_QUERY_LENGTH = 200


@dataclass(frozen=True)
class ListState:
    """A list's filter and search, always valid: build one with `parse`."""

    status: str = DEFAULT_STATUS
    q: str = ""
    sort: str = DEFAULT_SORT
    assignee: str = ""

    @classmethod
    def parse(cls, params: Mapping[str, object]) -> "ListState":
        """From a query string's parameters or a socket's `view` message: an unknown filter
        is the default one, the search is trimmed and cut at MAX_QUERY_LENGTH."""
        status = str(params.get("status") or DEFAULT_STATUS)
        if status not in STATUS_FILTERS:
            status = DEFAULT_STATUS
        q = str(params.get("q") or "").strip()[:MAX_QUERY_LENGTH]
        sort = str(params.get("sort") or DEFAULT_SORT)
        if sort not in SORTS:
            sort = DEFAULT_SORT
        assignee = str(params.get("assignee") or "").strip()[:MAX_USERNAME_LENGTH]
        return cls(status=status, q=q, sort=sort, assignee=assignee)

    @property
    def conversation_status(self) -> str | None:
        """The conversation state this list selects, or None for every state. Only open
        conversations wait for an answer, so the waiting order lists those."""
        if self.sort == "waiting":
            return Conversation.Status.OPEN
        return STATUS_FILTERS[self.status]

    @property
    def tab(self) -> str:
        """The tab this list is: a state's, or Mine / Unassigned."""
        for tab, assignee in ASSIGNEE_TABS.items():
            if self.assignee == assignee and self.status == DEFAULT_STATUS:
                return tab
        return self.status

    def assignee_username(self, me: str) -> str | None:
        """The username whose conversations this list shows ("" for nobody's), or None for
        everyone's; `me` is the agent looking."""
        if not self.assignee:
            return None
        if self.assignee == "none":
            return ""
        return me if self.assignee == "me" else self.assignee

    def lists(
        self,
        conversation_status: str,
        *,
        waiting: bool = False,
        assignee: str = "",
        me: str = "",
    ) -> bool:
        """Whether a conversation in this state (waiting or not, assigned to `assignee`, ""
        for nobody) belongs in the list of agent `me`, search aside."""
        if self.sort == "waiting" and not waiting:
            return False
        wanted_assignee = self.assignee_username(me)
        if wanted_assignee is not None and assignee != wanted_assignee:
            return False
        wanted = self.conversation_status
        return wanted is None or conversation_status == wanted

    def with_status(self, status: str) -> "ListState":
        return replace(
            self, status=status if status in STATUS_FILTERS else DEFAULT_STATUS, assignee=""
        )

    def with_tab(self, tab: str) -> "ListState":
        """This list's search and order on another tab (a state's, or Mine / Unassigned)."""
        if tab in ASSIGNEE_TABS:
            return replace(self, status=DEFAULT_STATUS, assignee=ASSIGNEE_TABS[tab])
        return self.with_status(tab)

    @property
    def query(self) -> str:
        """The canonical query string: defaults left out, so equal states share one URL."""
        params = {}
        if self.status != DEFAULT_STATUS:
            params["status"] = self.status
        if self.q:
            params["q"] = self.q
        if self.sort != DEFAULT_SORT:
            params["sort"] = self.sort
        if self.assignee:
            params["assignee"] = self.assignee
        return urlencode(params)

    def url(self, path: str) -> str:
        """`path` showing this list."""
        return f"{path}?{self.query}" if self.query else path
