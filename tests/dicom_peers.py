"""Independent DICOM software as test peers: Orthanc (with DICOMweb) and dcmtk.

Mark such tests ``@pytest.mark.dicom_peers``: they are skipped when the Debian
packages are absent, and fail instead when PACSSHARE_REQUIRE_SERVICES=1 (CI).

``running_orthanc(tmp_path, modalities={"PACSSHARE": ("PACSSHARE", "127.0.0.1",
port)})`` starts Orthanc on free loopback ports with its DICOMweb plugin and
yields an ``Orthanc`` whose ``rest`` base URL, ``dicomweb`` root, ``dicom_port``
and ``aet`` the test uses; it is stopped by its PID afterwards. ``orthanc`` is the
same as a pytest fixture, with no modalities.
"""

import contextlib
import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures_services import free_port

ORTHANC = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
DCMTK_TOOLS = ("echoscu", "storescu", "dcmdump")


def missing_dicom_peers():
    """Say what is missing to run the DICOM peer tests, or None."""
    missing = [tool for tool in DCMTK_TOOLS if shutil.which(tool) is None]
    if not Path(ORTHANC).exists():
        missing.append("Orthanc")
    if not Path(DICOMWEB_PLUGIN).exists():
        missing.append("orthanc-dicomweb")
    if missing:
        return "missing DICOM peers: " + ", ".join(missing) + " (apt-get install"
        " -y dcmtk orthanc orthanc-dicomweb)"
    return None


@dataclass
class Orthanc:
    rest: str
    dicom_port: int
    aet: str
    process: subprocess.Popen

    @property
    def dicomweb(self):
        return f"{self.rest}/dicom-web"

    def get(self, path):
        with urllib.request.urlopen(self.rest + path, timeout=30) as response:  # noqa: S310
            return json.loads(response.read())

    def post(self, path, body, content_type="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 (loopback test peer)
            self.rest + path, data=data, headers={"Content-Type": content_type}
        )
        with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310
            raw = response.read()
        return json.loads(raw) if raw.strip() else None

    def upload(self, path):
        """Store one DICOM file through Orthanc's REST API."""
        return self.post("/instances", Path(path).read_bytes(), "application/dicom")

    def instance_uids(self):
        """Return the SOP Instance UIDs Orthanc holds."""
        return {
            self.get(f"/instances/{orthanc_id}")["MainDicomTags"]["SOPInstanceUID"]
            for orthanc_id in self.get("/instances")
        }


@contextlib.contextmanager
def running_orthanc(folder, *, modalities=None, aet="ORTHANC", config=None):
    """Start Orthanc in ``folder`` on free loopback ports; stop it afterwards.

    ``config`` adds or overrides Orthanc configuration options.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    http_port, dicom_port = free_port(), free_port()
    base_config = {
        "Name": "PACSshare test peer",
        "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "index"),
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "DicomAet": aet,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomAlwaysAllowStore": True,
        "DicomCheckCalledAet": False,
        "HttpsCACertificates": "",
        "Plugins": [DICOMWEB_PLUGIN],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
        "DicomModalities": {
            name: list(peer) for name, peer in (modalities or {}).items()
        },
    }
    config = {**base_config, **(config or {})}
    config_path = folder / "orthanc.json"
    config_path.write_text(json.dumps(config))
    log = (folder / "orthanc.log").open("wb")
    process = subprocess.Popen(
        [ORTHANC, str(config_path)], stdout=log, stderr=subprocess.STDOUT
    )
    server = Orthanc(
        rest=f"http://127.0.0.1:{http_port}",
        dicom_port=dicom_port,
        aet=aet,
        process=process,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    "Orthanc exited: " + (folder / "orthanc.log").read_text()[-2000:]
                )
            try:
                server.get("/system")
                break
            except urllib.error.HTTPError:
                break  # it answers (401 when its authentication is on)
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture
def orthanc(tmp_path):
    with running_orthanc(tmp_path / "orthanc") as server:
        yield server
