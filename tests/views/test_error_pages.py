"""The product's own 404 and 500 pages, under `make run` (DEBUG=true) as in production."""

import uuid

import pytest
from django.urls import include, path

pytestmark = pytest.mark.django_db


def failing_view(request):
    raise RuntimeError("a bug in a view")


urlpatterns = [path("fails/", failing_view), path("", include("project.urls"))]


@pytest.fixture(params=[True, False], ids=["debug", "production"])
def debug(request, settings) -> bool:
    settings.DEBUG = request.param
    return request.param


@pytest.mark.parametrize("address", ["/conversations/{}/", "/no/such/page/"])
def test_an_unknown_address_shows_the_products_404(agent_client, debug, address):
    response = agent_client.get(address.format(uuid.uuid4()))
    assert response.status_code == 404
    text = response.content.decode()
    assert "Nothing here" in text
    assert "Back to the inbox" in text
    # Not Django's technical page, which lists the URL patterns.
    assert "URLconf" not in text


def test_an_unknown_conversation_in_json_stays_json(agent_client, debug):
    response = agent_client.get(f"/api/conversations/{uuid.uuid4()}/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")


def test_a_failing_view_shows_the_products_500_and_logs_it(agent_client, settings, caplog):
    settings.DEBUG = True
    settings.ROOT_URLCONF = __name__
    agent_client.raise_request_exception = False
    response = agent_client.get("/fails/")
    assert response.status_code == 500
    text = response.content.decode()
    assert "Something went wrong" in text
    assert "Traceback" not in text and "a bug in a view" not in text
    assert any(r.exc_info and "a bug in a view" in str(r.exc_info[1]) for r in caplog.records)
