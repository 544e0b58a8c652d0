"""OHIF on a bucket: the button, the guarded page and configuration, its CSP.

OHIF's dist/ is stood in for by a small folder with an index.html shaped like
the real one (the Chromium story, tests/e2e/test_story_ohif.py, runs the real
viewer installed by `make ohif`).
"""

import pytest
from django.urls import reverse

from sharing.access.guard import SESSION_VERIFIED_KEY
from tests.factories import UserFactory, viewer_bucket

pytestmark = pytest.mark.django_db

INDEX = (
    '<!doctype html><html><head><link rel="manifest" href="/manifest.json">'
    '<script>console.time("scriptToView"),window.PUBLIC_URL="/"</script>'
    '<link rel="icon" href="/assets/favicon.ico">'
    '<script rel="preload" as="script" src="/app-config.js"></script>'
    '<script rel="preload" as="script" type="module" '
    'src="/init-service-worker.js"></script>'
    "<script>function browserImportFunction(n){return import(n)}"
    'window.PUBLIC_URL="/"</script>'
    '<script defer src="/app.bundle.abc.js"></script>'
    '<link href="/app.bundle.css" rel="stylesheet"></head>'
    '<body><div id="root"></div></body></html>'
)


@pytest.fixture
def ohif_dist(tmp_path, settings):
    (tmp_path / "index.html").write_text(INDEX)
    (tmp_path / "app-config.js").write_text("window.config = {demo: true};")
    (tmp_path / "app.bundle.abc.js").write_text("console.log('ohif');")
    (tmp_path / "abc.wasm").write_bytes(b"\0asm")
    settings.OHIF_DIST = str(tmp_path)
    return tmp_path


def _directives(response):
    policy = response["Content-Security-Policy"]
    return {
        part.split()[0]: part.split()[1:]
        for part in (p.strip() for p in policy.split(";"))
        if part
    }


def _ohif_page(bucket):
    return reverse(
        "sharing:ohif_route", kwargs={"bucket_id": bucket.pk, "route": "viewer"}
    )


def test_the_received_study_opens_in_ohif(client, ohif_dist):
    bucket = viewer_bucket()
    study = bucket.share.studies.get()
    client.force_login(bucket.recipient_user)

    page = client.get(
        reverse(
            "sharing:received_study",
            kwargs={"bucket_id": bucket.pk, "study_id": study.pk},
        )
    )

    expected = (
        f"/received/{bucket.pk}/ohif/viewer?StudyInstanceUIDs="
        f"{study.study_instance_uid}"
    )
    assert f'href="{expected}"' in page.content.decode()
    assert "Open in OHIF" in page.content.decode()


def test_an_anonymized_study_opens_with_its_deidentified_uid(client, ohif_dist):
    bucket = viewer_bucket(anonymize=True)
    study = bucket.share.studies.get()
    client.force_login(bucket.recipient_user)

    page = client.get(
        reverse(
            "sharing:received_study",
            kwargs={"bucket_id": bucket.pk, "study_id": study.pk},
        )
    ).content.decode()

    assert "StudyInstanceUIDs=" in page
    assert study.study_instance_uid not in page


def test_no_button_without_ohif_installed(client, settings, tmp_path):
    settings.OHIF_DIST = str(tmp_path / "none")
    bucket = viewer_bucket()
    client.force_login(bucket.recipient_user)

    page = client.get(
        reverse(
            "sharing:received_study",
            kwargs={"bucket_id": bucket.pk, "study_id": bucket.share.studies.get().pk},
        )
    )

    assert page.status_code == 200
    assert b"open-in-ohif" not in page.content


def test_the_page_loads_the_buckets_config_under_ohifs_policy(client, ohif_dist):
    bucket = viewer_bucket()
    client.force_login(bucket.recipient_user)

    page = client.get(_ohif_page(bucket))
    config = client.get(
        reverse("sharing:ohif_config", kwargs={"bucket_id": bucket.pk})
    ).content.decode()

    html = page.content.decode()
    assert page.status_code == 200
    assert "<script>" not in html  # no inline script: the CSP would refuse it
    assert f'src="/received/{bucket.pk}/ohif/app-config.js"' in html
    assert 'src="/ohif/app.bundle.abc.js"' in html
    assert 'href="/ohif/assets/favicon.ico"' in html
    assert "init-service-worker" not in html
    policy = _directives(page)
    assert "'wasm-unsafe-eval'" in policy["script-src"]
    assert "'unsafe-eval'" not in policy["script-src"]
    assert "'unsafe-inline'" not in policy["script-src"]
    assert policy["worker-src"] == ["'self'", "blob:"]
    assert policy["connect-src"] == ["'self'", "data:", "blob:"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert f'"routerBasename": "/received/{bucket.pk}/ohif"' in config
    assert f'"qidoRoot": "http://testserver/received/{bucket.pk}/dicom-web"' in config
    assert "cloudfront" not in config


def test_the_site_keeps_its_own_policy(client, ohif_dist):
    bucket = viewer_bucket()
    client.force_login(bucket.recipient_user)

    page = client.get(reverse("sharing:shared_with_me"))

    policy = _directives(page)
    assert "'wasm-unsafe-eval'" not in policy["script-src"]
    assert "worker-src" not in policy


@pytest.mark.parametrize("case", ["another_user", "code_not_entered", "anonymous"])
def test_someone_who_cannot_open_the_bucket_gets_no_ohif(client, ohif_dist, case):
    bucket = viewer_bucket(require_otp=case == "code_not_entered")
    if case == "another_user":
        client.force_login(UserFactory())
    elif case == "code_not_entered":
        client.force_login(bucket.recipient_user)

    page = client.get(_ohif_page(bucket))
    config = client.get(reverse("sharing:ohif_config", kwargs={"bucket_id": bucket.pk}))

    assert page.status_code in (302, 404)
    assert config.status_code in (302, 404)
    assert b"dicom-web" not in page.content + config.content
    if case == "code_not_entered":
        assert page["Location"] == reverse(
            "sharing:bucket_code", kwargs={"bucket_id": bucket.pk}
        )


def test_the_code_entered_opens_ohif(client, ohif_dist):
    bucket = viewer_bucket(require_otp=True)
    client.force_login(bucket.recipient_user)
    session = client.session
    session[SESSION_VERIFIED_KEY] = [str(bucket.pk)]
    session.save()

    assert client.get(_ohif_page(bucket)).status_code == 200


def test_ohif_files_are_served_but_not_its_demo_config(client, ohif_dist):
    bundle = client.get("/ohif/app.bundle.abc.js")
    wasm = client.get("/ohif/abc.wasm")

    assert bundle.status_code == 200
    assert b"".join(bundle.streaming_content) == b"console.log('ohif');"
    assert "'wasm-unsafe-eval'" in _directives(bundle)["script-src"]
    assert wasm["Content-Type"] == "application/wasm"
    for path in ("index.html", "app-config.js", "../../pacsshare/settings.py", "nope"):
        assert client.get(f"/ohif/{path}").status_code == 404, path
