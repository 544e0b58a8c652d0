from tests.fixtures_services import (  # noqa: F401
    celery_worker,
    sms_outbox,
    smtp_server,
    twilio_http,
)
from tests.sharing.wizard_support import sender_client, world  # noqa: F401
