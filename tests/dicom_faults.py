"""Real services for the lease tests of "Bring in" and "Send to my PACS".

``dicom_task_world(folder)`` starts a Redis server, a Celery worker and beat of
the test's own (subprocesses, tests/sharing/outbox_faults.py), pointed at the
test's database and media folder, with a short lease and relay period, so a
test can SIGKILL the worker midway and start it again. ``slow_orthanc(folder)``
starts an Orthanc whose Lua filter takes ``DELAY`` seconds per stored object and
per DICOMweb instance retrieval, and records each of them, so a test can kill
the worker mid-transfer or mid-bring-in and count what went twice.
"""

import contextlib
import time
import types
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.test.utils import override_settings

from tests.dicom_peers import running_orthanc
from tests.fixtures_services import free_port
from tests.sharing.outbox_faults import (
    CeleryProcess,
    RedisServer,
    in_process_broker,
    service_env,
)

LEASE = 3.0
RELAY_PERIOD = 1.0
MAX_ATTEMPTS = 3
DELAY = 0.15
DICOM_ENV = {
    "DICOM_TASK_LEASE": str(LEASE),
    "DICOM_RELAY_PERIOD": str(RELAY_PERIOD),
    "DICOM_TASK_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
}
DICOM_SETTINGS = {
    "DICOM_TASK_LEASE": LEASE,
    "DICOM_RELAY_PERIOD": RELAY_PERIOD,
    "DICOM_TASK_MAX_ATTEMPTS": MAX_ATTEMPTS,
}

LUA = """
function ReceivedInstanceFilter(dicom, origin, info)
  local f = io.open("{stored}", "a")
  f:write(dicom.SOPInstanceUID .. "\\n")
  f:close()
  os.execute("sleep {store_delay}")
  return true
end

function IncomingHttpRequestFilter(method, uri, ip, username, headers)
  if method == "GET" and string.find(uri, "/instances/", 1, true) then
    local f = io.open("{retrieved}", "a")
    f:write(uri .. "\\n")
    f:close()
    os.execute("sleep {retrieve_delay}")
  end
  return true
end
"""


@dataclass
class DicomTaskWorld:
    redis: RedisServer
    worker: CeleryProcess
    beat: CeleryProcess

    def stop_all(self):
        self.worker.kill()
        self.beat.kill()
        self.redis.kill()


@contextlib.contextmanager
def dicom_task_world(folder):
    """Start Redis, a worker and beat of the test's own; stop them after."""
    folder = Path(folder)
    (folder / "outbox").mkdir(parents=True, exist_ok=True)
    redis = RedisServer(folder)
    redis.start()
    env = service_env(
        redis=redis, smtp=types.SimpleNamespace(port=free_port()), folder=folder
    )
    env.update(DICOM_ENV)
    env["MEDIA_ROOT"] = str(settings.MEDIA_ROOT)
    world = DicomTaskWorld(
        redis=redis,
        worker=CeleryProcess("worker", env, folder),
        beat=CeleryProcess("beat", env, folder),
    )
    try:
        with in_process_broker(redis.url), override_settings(**DICOM_SETTINGS):
            world.worker.start()
            yield world
    finally:
        world.stop_all()


@contextlib.contextmanager
def slow_orthanc(folder, *, store_delay=DELAY, retrieve_delay=DELAY, **kwargs):
    """An Orthanc that takes DELAY s per stored object and per instance retrieved."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stored, retrieved = folder / "stored.txt", folder / "retrieved.txt"
    stored.touch()
    retrieved.touch()
    script = folder / "slow.lua"
    script.write_text(
        LUA.replace("{stored}", str(stored))
        .replace("{retrieved}", str(retrieved))
        .replace("{store_delay}", str(store_delay))
        .replace("{retrieve_delay}", str(retrieve_delay))
    )
    config = {**kwargs.pop("config", {}), "LuaScripts": [str(script)]}
    with running_orthanc(folder / "orthanc", config=config, **kwargs) as server:
        server.stored = lambda: stored.read_text().split()
        server.retrieved = lambda: retrieved.read_text().split()
        yield server


def wait_until(predicate, timeout, interval=0.05):
    """Poll ``predicate`` until it returns something true; return it or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    return None
