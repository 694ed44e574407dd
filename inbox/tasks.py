"""Background work through Django's Tasks API (the django-tasks backport on Django 5.2):
the delivery of agents' replies to the provider (README, "Replies")."""

from django_tasks import task


@task()
def reply_deliver(*, message_id: str, since: str) -> str:
    """Post one reply to PROVIDER_URL and record the attempt (implemented below this commit's
    interface: see README, "Replies")."""
    return "pending"
