"""The wizard writes the session only when a run changed, not on every page view.

formtools' storage marked the session modified on each read, so every GET of a
step rewrote the session row. Now a GET of a step already shown writes nothing,
and whatever a request changes (a step posted, a draft kept by "Previous", the
current step moved) is still saved and seen by the next request.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.sharing.wizard_support import (
    MANAGEMENT,
    key,
    parameters_data,
    run_until_parameters,
    step_url,
    world,  # noqa: F401 - fixture
)

pytestmark = pytest.mark.django_db


def session_writes(client, method, url, data=None):
    with CaptureQueriesContext(connection) as captured:
        response = getattr(client, method)(url, data or {})
    writes = [
        q["sql"]
        for q in captured.captured_queries
        if "django_session" in q["sql"]
        and q["sql"].lstrip().upper().startswith(("UPDATE", "INSERT"))
    ]
    return response, writes


def test_viewing_a_step_again_writes_no_session(client, world):  # noqa: F811
    client.force_login(world.sender)
    run_until_parameters(client, world.studies, [(key(world.en), True, True)])
    client.get(step_url("parameters"))  # shown once: the current step is stored

    for step in ("parameters", "parameters"):
        response, writes = session_writes(client, "get", step_url(step))
        assert response.status_code == 200
        assert writes == []

    # Moving to another step is a change: it is saved...
    response, writes = session_writes(client, "get", step_url("recipients"))
    assert response.status_code == 200
    assert len(writes) == 1
    # ...and viewing it again is not.
    response, writes = session_writes(client, "get", step_url("recipients"))
    assert writes == []
    assert world.en.display_name in response.content.decode()


def test_a_draft_kept_by_previous_is_saved_and_shown_again(client, world):  # noqa: F811
    client.force_login(world.sender)
    run_until_parameters(client, world.studies, [(key(world.en), True, True)])
    typed = parameters_data(reason="Typed before going back")
    payload = {f"parameters-{name}": value for name, value in typed.items()}
    payload[MANAGEMENT] = "parameters"
    payload["wizard_goto_step"] = "recipients"

    response, writes = session_writes(client, "post", step_url("parameters"), payload)

    assert response.status_code == 302
    assert len(writes) == 1
    page = client.get(step_url("parameters"))
    assert "Typed before going back" in page.content.decode()
