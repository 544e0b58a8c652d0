"""Install OHIF's prebuilt viewer (the npm package @ohif/app's dist/) into var/ohif/.

Run by `make ohif`. The package is fetched from the npm registry with `npm pack`
(its dependencies are not needed: dist/ is the built app, and some of them are
not published at its version, so `npm install` cannot resolve it), checked
against the pinned integrity below, and unpacked. The bundles are built for the
site root; PACSshare serves them under /ohif/, so webpack's public path is
rewritten from "/" to "/ohif/", and so are the stylesheets' font URLs
(index.html is rewritten per request by studies/ohif.py). A second run with
the same version does nothing.
"""

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PACKAGE = "@ohif/app"
VERSION = "3.13.2"
# `npm view @ohif/app@3.13.2 dist.integrity`
INTEGRITY = (
    "sha512-WZdxmpmG7rqFgW9ZJLcbgr3XCtLi1KDNPoMaeY5PPe6j4G4fjEjjkycZM6C6Zk2F87BKxFfpq+"
    "jd5xXZB9E8EA=="
)
PUBLIC_PATH_BUILT = b'__webpack_require__.p = "/"'
PUBLIC_PATH_SERVED = b'__webpack_require__.p = "/ohif/"'
# The stylesheets name their fonts from the root too.
CSS_URL_BUILT, CSS_URL_SERVED = b"url(/", b"url(/ohif/"
# What the stamp says: the version and how it was laid out here.
STAMP = f"{VERSION} served-at-/ohif/-2"


def _integrity(path):
    digest = hashlib.sha512(path.read_bytes()).digest()
    return "sha512-" + base64.b64encode(digest).decode()


def install(target):
    stamp = target / ".installed"
    if stamp.exists() and stamp.read_text().strip() == STAMP:
        print(f"OHIF {VERSION} already in {target}")
        return
    if shutil.which("npm") is None:
        # `make test` still runs without it: OHIF's Chromium story skips (and
        # fails under PACSSHARE_REQUIRE_SERVICES=1, as CI runs it).
        message = "npm is missing (apt-get install -y npm): OHIF not installed"
        if os.environ.get("PACSSHARE_REQUIRE_SERVICES"):
            sys.exit(message)
        print(f"warning: {message}", file=sys.stderr)
        return
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(  # noqa: S603 - fixed arguments
            [  # noqa: S607 - npm from PATH, as `make` finds it
                "npm",
                "pack",
                f"{PACKAGE}@{VERSION}",
                "--json",
                "--pack-destination",
                tmp,
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        tarball = Path(tmp, json.loads(out)[0]["filename"])
        if _integrity(tarball) != INTEGRITY:
            sys.exit(f"{tarball.name}: integrity does not match the pinned one")
        with tarfile.open(tarball) as archive:
            archive.extractall(tmp, filter="data")
        dist = Path(tmp, "package", "dist")
        rewritten = 0
        for bundle in dist.glob("*.js"):
            data = bundle.read_bytes()
            if PUBLIC_PATH_BUILT in data:
                bundle.write_bytes(data.replace(PUBLIC_PATH_BUILT, PUBLIC_PATH_SERVED))
                rewritten += 1
        for sheet in dist.glob("*.css"):
            data = sheet.read_bytes()
            sheet.write_bytes(data.replace(CSS_URL_BUILT, CSS_URL_SERVED))
        if not rewritten:
            sys.exit("no bundle sets webpack's public path: has the build changed?")
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(dist), str(target))
    stamp.write_text(STAMP + "\n")
    print(f"OHIF {VERSION} installed in {target} ({rewritten} bundles rewritten)")


if __name__ == "__main__":
    install(Path(sys.argv[1] if len(sys.argv) > 1 else "var/ohif").resolve())
