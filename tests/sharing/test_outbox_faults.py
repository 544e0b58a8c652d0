"""The outbox never loses a message: 200 mails through faults of every real part.

Each test pushes 200 share mails through a real Celery worker process and beat
(subprocesses), a Redis server and an aiosmtpd server of its own, breaks one of
them mid-batch, and then waits, with no human action, for every mail to arrive:
0 lost, and at most one duplicate per kill (a worker that dies between the SMTP
server's accept and the row's update). Healing must take no longer than the
relay's period plus the lease (and the relay's minimum age, plus a margin to
send what is left); the short values are in tests/sharing/outbox_faults.py.
"""

import time

import pytest
from django.db import connection

from tests.sharing.outbox_faults import (
    HEAL_SECONDS,
    fault_world,
    outcome,
    queue_mails,
    wait_for_sent,
    wait_until_all_sent,
)

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]

MAILS = 200


@pytest.fixture
def world(tmp_path):
    with fault_world(tmp_path / "services") as world:
        yield world


def assert_none_lost(world, result, *, kills):
    logs = world.worker.logs()[-3000:]
    assert result.healed_in is not None, f"not healed in {HEAL_SECONDS} s: {logs}"
    assert result.lost == 0, result.line()
    assert result.delivered == MAILS, result.line()
    assert result.statuses == {"sent": MAILS}, result.line()
    assert result.duplicates <= kills, result.line()


def terminate_worker_connections(timeout=5.0):
    """Terminate every other connection to the test database; return how many.

    Waits for at least one: the worker may be between connections.
    """
    deadline = time.monotonic() + timeout
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            count = cursor.fetchone()[0]
        if count or time.monotonic() > deadline:
            return count
        time.sleep(0.01)


def test_a_worker_sigkilled_mid_batch_loses_nothing(world):
    world.ids = queue_mails(MAILS)
    kills = 0
    for target in (40, 120):
        assert wait_for_sent(world, target, timeout=60), world.worker.logs()
        world.worker.kill()
        kills += 1
        time.sleep(0.5)
        world.worker.start()

    healed = wait_until_all_sent(world, timeout=HEAL_SECONDS)

    result = outcome(
        world, fault="worker SIGKILLed twice", kills=kills, healed_in=healed
    )
    assert_none_lost(world, result, kills=kills)


def test_a_broker_killed_mid_batch_and_restarted_loses_nothing(world):
    world.ids = queue_mails(MAILS)
    assert wait_for_sent(world, 50, timeout=60), world.worker.logs()
    world.redis.kill()  # every queued task is gone: no persistence
    time.sleep(3.0)
    world.redis.start()

    healed = wait_until_all_sent(world, timeout=HEAL_SECONDS)

    result = outcome(world, fault="broker killed for 3 s", kills=1, healed_in=healed)
    assert_none_lost(world, result, kills=1)


def test_database_connections_terminated_mid_batch_lose_nothing(world):
    world.ids = queue_mails(MAILS)
    terminated = 0
    for target in (40, 80, 120):
        assert wait_for_sent(world, target, timeout=60), world.worker.logs()
        terminated += terminate_worker_connections()
    assert terminated >= 3

    healed = wait_until_all_sent(world, timeout=HEAL_SECONDS)

    result = outcome(
        world,
        fault="database connections terminated 3 times",
        kills=terminated,
        healed_in=healed,
    )
    assert_none_lost(world, result, kills=terminated)


def test_an_smtp_server_stopped_and_started_loses_nothing(world):
    world.ids = queue_mails(MAILS)
    assert wait_for_sent(world, 50, timeout=60), world.worker.logs()
    world.smtp.stop()
    time.sleep(3.0)
    world.smtp.start()
    world.smtp.fail_next(*["421 Busy, try later"] * 10)

    healed = wait_until_all_sent(world, timeout=HEAL_SECONDS)

    result = outcome(
        world, fault="SMTP stopped for 3 s, then 10 x 421", kills=0, healed_in=healed
    )
    assert_none_lost(world, result, kills=0)
