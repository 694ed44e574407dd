"""The conversation store: what the provider told us, and the log of how it told us."""

import uuid
from datetime import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone


class Direction(models.TextChoices):
    SENT = "SENT", "Sent"
    RECEIVED = "RECEIVED", "Received"


class Delivery(models.TextChoices):
    """A SENT message's way to the customer, in the order it moves (README, "Replies")."""

    PENDING = "PENDING", "Pending"
    SENT = "SENT", "Sent"
    DELIVERED = "DELIVERED", "Delivered"
    READ = "READ", "Read"
    FAILED = "FAILED", "Failed"


class Contact(models.Model):
    """Who a conversation is with (README, "Triage"): the provider's name for them, their phone.

    The phone is E.164 (`inbox.phones`), so one number written two ways is one contact; it
    is unique when known, and a later conversation from the same number reuses the contact.
    """

    name = models.CharField(max_length=200, blank=True)
    # NULL, not "", when unknown: unique leaves NULLs out.
    phone = models.CharField(max_length=16, null=True, blank=True, unique=True)
    # The name folded (case and accents) for the search box, as the message index folds.
    name_folded = models.CharField(max_length=200, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name or self.phone or f"contact {self.pk}"


class Conversation(models.Model):
    class Status(models.TextChoices):
        OPEN = "OPEN", "Open"
        CLOSED = "CLOSED", "Closed"

    # The provider's id: idempotency is an insert on the primary key.
    id = models.UUIDField(primary_key=True)
    status = models.CharField(max_length=6, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    # Which provider the conversation is on, and for WhatsApp whom replies go to: the
    # customer's `wa_id`, kept as WhatsApp gave it (it is not always the E.164 phone: a
    # Brazilian mobile's wa_id can lack the ninth digit), so a reply reaches the same chat.
    channel = models.CharField(max_length=16, default="generic", db_default="generic")
    wa_id = models.CharField(max_length=32, null=True, blank=True)  # noqa: DJ001
    # The customer's WhatsApp profile name as WhatsApp last gave it: a new one renames the
    # contact, the same one again does not (an agent's correction stands).
    wa_name = models.CharField(max_length=200, blank=True, default="", db_default="")
    contact = models.ForeignKey(
        Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="conversations"
    )

    # Whose it is (README, "Triage"); every change is also an Assignment row.
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    assigned_at = models.DateTimeField(null=True, blank=True)

    # Denormalised for the list, so it never has to aggregate messages: kept exact by the
    # services, which update them under the conversation's row lock.
    last_activity_at = models.DateTimeField()
    message_count = models.PositiveIntegerField(default=0)
    last_message = models.ForeignKey(
        "Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_message_at = models.DateTimeField(null=True, blank=True)
    # While the newest message is the customer's: the time of their first message since our
    # last one (README, "Triage"); None when we spoke last, or nobody spoke.
    waiting_since = models.DateTimeField(null=True, blank=True)

    # Who changed the state from the inbox, and when: a close by the provider leaves
    # closed_by empty; a reopen clears closed_at (the conversation is open again) but keeps
    # reopened_at/by, which also count as activity.
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reopened_at = models.DateTimeField(null=True, blank=True)
    reopened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    # Not stored: the newest matching message of a searched list's row (selectors), None
    # elsewhere. A default, because a template's lookup of a missing attribute costs a dir()
    # of the instance: 50 of them were a tenth of the list's rendering.
    search_hit: "Message | None" = None

    class Meta:
        indexes = [
            # The list: newest activity first, by status; id breaks ties for keyset paging.
            models.Index(
                fields=["status", "-last_activity_at", "-id"], name="conversation_status_activity"
            ),
            models.Index(fields=["-last_activity_at", "-id"], name="conversation_activity"),
            # A WhatsApp message finds its customer's open conversation.
            models.Index(
                fields=["wa_id", "status"],
                condition=models.Q(wa_id__isnull=False),
                name="conversation_wa_id",
            ),
            # Mine, Unassigned and `?assignee=`: one agent's (or nobody's) by activity.
            models.Index(
                fields=["assignee", "status", "-last_activity_at", "-id"],
                name="conversation_assignee",
            ),
            # `?sort=waiting`: the open, waiting ones, longest-waiting first, keyset by id.
            models.Index(
                fields=["waiting_since", "id"],
                condition=models.Q(status="OPEN", waiting_since__isnull=False),
                name="conversation_waiting",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.status})"


class ConversationRead(models.Model):
    """How much of a conversation one agent has seen (README, "Triage"): one row per agent
    and conversation, not one per message, so the list tells unread rows in its one query.

    `seen_count` is the conversation's `message_count` when the agent last looked: a count,
    not a time, so a late delivery of an old message is unread too. Unread while the
    conversation holds more messages than that; no row is nothing seen.
    """

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="+")
    agent = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    seen_count = models.PositiveIntegerField(default=0)
    seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "agent"], name="conversation_read_once_per_agent"
            )
        ]

    def __str__(self) -> str:
        return f"{self.conversation_id} seen by {self.agent_id} up to {self.seen_count}"


class Assignment(models.Model):
    """One change of a conversation's assignee: to whom (None: unassigned), by whom, when."""

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="assignments"
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["conversation", "at"], name="assignment_conversation")]

    def __str__(self) -> str:
        return (
            f"{self.conversation_id} to {self.assignee_id or 'nobody'} at {self.at:%Y-%m-%d %H:%M}"
        )


class Message(models.Model):
    id = models.UUIDField(primary_key=True)
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    direction = models.CharField(max_length=8, choices=Direction.choices)
    content = models.TextField()
    timestamp = models.DateTimeField()
    # What the customer sent (README, "Connect WhatsApp"): text, or a WhatsApp type
    # (image, audio, video, document, sticker, location, contacts, reaction, interactive,
    # template, unsupported). `content` is always the legible text of it (a caption, a
    # place's name, the chosen button), so the list, search and the API read it as text;
    # `attachment` keeps what the page needs beyond that (a media id, coordinates, ...).
    kind = models.CharField(max_length=16, default="text", db_default="text")
    attachment = models.JSONField(null=True, blank=True)
    # Which provider it came through, and that provider's id for it when the id is not our
    # UUID (WhatsApp's `wamid`s). The UUID stays the key the contract exposes; the generic
    # provider's ids are those UUIDs, so its messages leave provider_message_id empty. On
    # the message, not the conversation, so that one constraint covers it.
    # A default in the database too: bulk loads that do not name the column (seeding's
    # COPY) and raw inserts are the generic provider's.
    channel = models.CharField(max_length=16, default="generic", db_default="generic")
    # NULL, not "", when there is none: the constraint below leaves NULLs out.
    provider_message_id = models.CharField(max_length=128, null=True, blank=True)  # noqa: DJ001
    # A SENT message's delivery state; NULL for RECEIVED ones. A provider's own SENT message
    # stored before this column existed, or with no status since, is NULL too and reads as
    # SENT (the API says so): only replies written here start PENDING.
    delivery = models.CharField(  # noqa: DJ001
        max_length=9, choices=Delivery.choices, null=True, blank=True
    )
    # The provider's reason when delivery is FAILED (cut to 500 characters), else NULL.
    error = models.TextField(null=True, blank=True)  # noqa: DJ001
    # The agent who wrote a reply; NULL for what the provider told us.
    sent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        indexes = [
            # A thread in time order; id makes the order total when timestamps tie.
            models.Index(fields=["conversation", "timestamp", "id"], name="message_thread"),
        ]
        constraints = [
            # A provider's id names one message within its channel. Partial, so it is an
            # index of the messages that have one (none of the generic provider's).
            models.UniqueConstraint(
                fields=["channel", "provider_message_id"],
                condition=models.Q(provider_message_id__isnull=False),
                name="message_provider_id_once",
            ),
        ]

    is_note = False  # a thread's entries are messages and notes (README, "Triage")

    def __str__(self) -> str:
        return f"{self.direction} {self.id}"

    @property
    def delivery_state(self) -> str | None:
        """The state to show: None for RECEIVED; a provider's own SENT message without a
        status is SENT (README, "Replies")."""
        if self.direction != Direction.SENT:
            return None
        return self.delivery or Delivery.SENT


class Note(models.Model):
    """An internal note: agents writing to each other in a thread (README, "Triage"). Not a
    message: never sent to the provider, never counted, never a row's preview, never in
    the API's `messages`, and no part of waiting or unread."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="notes")
    # Kept when the author's account goes: the note still says what was decided.
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    content = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            # Read by a thread's window of time, like the messages' index.
            models.Index(fields=["conversation", "created_at"], name="note_thread"),
        ]

    is_note = True

    def __str__(self) -> str:
        return f"note {self.id} on {self.conversation_id}"

    @property
    def timestamp(self) -> datetime:
        """Its place in the thread's time order, read as a message's is."""
        return self.created_at


class WebhookDelivery(models.Model):
    """One authenticated webhook request, exactly as the provider sent it. Append-only.

    One row per request, not per event: the log answers "what did the provider send us,
    and what did we answer", and a batching provider (WhatsApp posts N events in one
    envelope) gets one answer per request. `item_count` says how many events the body
    carried (0 when it was refused before any could be read); `event_type`/`event_id` name
    the first, which for the generic provider's one event per request is all of them. The
    body keeps every item, so a per-item list here would only repeat it; per-item outcomes
    live where the items went (messages, held events).
    """

    received_at = models.DateTimeField(default=timezone.now)
    event_type = models.CharField(max_length=32, blank=True)
    event_id = models.UUIDField(null=True, blank=True, db_index=True)
    item_count = models.PositiveIntegerField(default=1)
    body = models.TextField()
    status_code = models.PositiveSmallIntegerField()
    outcome = models.CharField(max_length=32)
    detail = models.TextField(blank=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.received_at:%Y-%m-%d %H:%M:%S} {self.event_type or '?'} {self.status_code}"


class OutboundAttempt(models.Model):
    """One try at handing a reply to the provider (`inbox.tasks`). Append-only.

    The outbound twin of `WebhookDelivery`: what we sent, what the provider answered and how
    long it took, so an operator can see why a reply is late or FAILED.
    """

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="attempts")
    attempted_at = models.DateTimeField(default=timezone.now)
    # The provider's HTTP status; NULL when there was no answer (timeout, connection error).
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    # What the attempt led to: sent, retry, failed.
    outcome = models.CharField(max_length=16)
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField()

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.attempted_at:%Y-%m-%d %H:%M:%S} {self.message_id} {self.outcome}"


class HeldEvent(models.Model):
    """An event that arrived before its conversation (or, for a status, its message) did.

    Providers do not deliver in order: a message or a close can come before the
    NEW_CONVERSATION it belongs to. It is held here (the provider is answered 202) and
    applied, in timestamp order, the moment its conversation arrives. A held event is never
    deleted: once applied it keeps its outcome, so an operator can always see what happened.
    """

    # The conversation it waits for; NULL when it waits for a message instead.
    conversation_id = models.UUIDField(null=True, blank=True)
    # The message it waits for (a MESSAGE_STATUS for a message not stored yet); NULL when
    # it waits for a conversation.
    message_id = models.UUIDField(null=True, blank=True)
    event_type = models.CharField(max_length=32)
    event_id = models.UUIDField()
    timestamp = models.DateTimeField()
    # The validated event, so applying it later needs no second parse of the raw body.
    payload = models.JSONField()
    received_at = models.DateTimeField(default=timezone.now)
    applied_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=32, blank=True)
    # When the operator was warned that its conversation is overdue (WEBHOOK_REORDER_WINDOW).
    reported_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # One held row per event, however often the provider retries it.
            models.UniqueConstraint(fields=["event_type", "event_id"], name="held_event_once"),
            # It waits for exactly one thing: its conversation or its message.
            models.CheckConstraint(
                condition=models.Q(conversation_id__isnull=False, message_id__isnull=True)
                | models.Q(conversation_id__isnull=True, message_id__isnull=False),
                name="held_event_waits_for_one",
            ),
        ]
        indexes = [
            models.Index(fields=["conversation_id", "timestamp"], name="held_event_conversation"),
            models.Index(fields=["applied_at", "received_at"], name="held_event_waiting"),
            models.Index(fields=["message_id", "timestamp"], name="held_event_message"),
        ]

    def __str__(self) -> str:
        waits_for = self.conversation_id or f"message {self.message_id}"
        return f"{self.event_type} {self.event_id} for {waits_for}"


class WhatsAppTemplate(models.Model):
    """A message template the business had approved by Meta, offered in the composer once
    WhatsApp's 24-hour customer-service window has closed (README, "Connect WhatsApp").

    `name` and `language` are the template's as in WhatsApp Manager; `parameters` names the
    body's {{1}}, {{2}}, ... one per line, each a box the agent fills in; `body` is its text
    with those placeholders, so the thread shows what the customer got.
    """

    name = models.CharField(max_length=512)
    language = models.CharField(max_length=16, default="en_US")
    body = models.TextField(blank=True)
    parameters = models.TextField(
        blank=True, help_text="One label a line, for the body's {{1}}, {{2}}, ... in order."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["name", "language"], name="whatsapp_template_once"),
        ]
        ordering = ["name", "language"]

    def __str__(self) -> str:
        return f"{self.name} ({self.language})"

    @property
    def parameter_labels(self) -> list[str]:
        return [line.strip() for line in self.parameters.splitlines() if line.strip()]

    def rendered(self, values: list[str]) -> str:
        """The body as the customer reads it, each {{n}} replaced by its value."""
        text = self.body or self.name
        for n, value in enumerate(values, start=1):
            text = text.replace(f"{{{{{n}}}}}", value)
        return text
