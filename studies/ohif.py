"""Serve OHIF's prebuilt viewer (npm @ohif/app, installed by `make ohif`).

The dist/ lives in ``settings.OHIF_DIST`` (var/ohif/ by default), never in git.
Its bundles, wasm codecs and assets are served here at /ohif/ (tools/ohif/
install.py rewrote webpack's public path to it). Its index.html is never served
as it is: a caller that has authorized a DICOMweb root (a bucket, see
sharing/access/ohif.py) renders it through ``ohif_index_response`` with its own
app-config.js, which sets the router's base, the one DICOMweb data source, and
the globals index.html's inline scripts used to set (inline script is refused by
the CSP).

The CSP of these responses (``OHIF_CSP``) adds to the site's policy only what
OHIF needs: 'wasm-unsafe-eval' for its wasm image codecs, workers from blob:
URLs, inline styles (its components set them), and data:/blob: for fonts,
images and fetches of its own workers. Worker scripts get the policy of their
own response, so the bundles carry it too.
"""

import json
import mimetypes
from pathlib import Path

from csp.decorators import csp
from django.conf import settings
from django.http import FileResponse, Http404, HttpResponse
from django.views.decorators.http import require_safe

OHIF_URL = "/ohif/"
OHIF_CSP = {
    "default-src": ["'self'"],
    "script-src": ["'self'", "'wasm-unsafe-eval'"],
    "worker-src": ["'self'", "blob:"],
    "style-src": ["'self'", "'unsafe-inline'"],
    "img-src": ["'self'", "data:", "blob:"],
    "font-src": ["'self'", "data:"],
    "connect-src": ["'self'", "data:", "blob:"],
    "object-src": ["'none'"],
    "frame-ancestors": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
}
# Files of dist/ that are never served: the page and its demo configuration
# (a caller renders its own), and the service worker (nothing offline here).
NOT_SERVED = {"index.html", "app-config.js", "sw.js", "init-service-worker.js"}
HASHED_SUFFIXES = (".wasm", ".woff2")
mimetypes.add_type("application/wasm", ".wasm")
mimetypes.add_type("text/javascript", ".mjs")


def ohif_dist():
    """Return the folder of OHIF's dist/ (raises Http404 when not installed)."""
    dist = Path(settings.OHIF_DIST)
    if not (dist / "index.html").is_file():
        raise Http404("OHIF is not installed (make ohif).")
    return dist


def ohif_installed():
    return (Path(settings.OHIF_DIST) / "index.html").is_file()


@require_safe
@csp(OHIF_CSP)
def ohif_asset(request, path):
    """Serve one file of OHIF's dist/ (bundles, wasm, assets)."""
    dist = ohif_dist().resolve()
    target = (dist / path).resolve()
    if (
        not target.is_relative_to(dist)
        or not target.is_file()
        or target.relative_to(dist).as_posix() in NOT_SERVED
    ):
        raise Http404("No such OHIF file.")
    content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    response = FileResponse(target.open("rb"), content_type=content_type)
    hashed = ".bundle." in target.name or target.name.endswith(HASHED_SUFFIXES)
    response["Cache-Control"] = (
        "public, max-age=31536000, immutable" if hashed else "public, max-age=3600"
    )
    return response


def _index_template():
    html = (ohif_dist() / "index.html").read_text(encoding="utf-8")
    # The inline scripts set window.PUBLIC_URL and browserImportFunction: the
    # app-config.js a caller serves sets them instead (see ohif_config_js).
    for inline in (
        '<script>console.time("scriptToView"),window.PUBLIC_URL="/"</script>',
        "<script>function browserImportFunction(n){return import(n)}"
        'window.PUBLIC_URL="/"</script>',
        '<script rel="preload" as="script" type="module" '
        'src="/init-service-worker.js"></script>',
    ):
        if inline not in html:
            raise RuntimeError(f"OHIF's index.html has changed: {inline[:40]}…")
        html = html.replace(inline, "")
    html = html.replace('src="/app-config.js"', 'src="{config_url}"')
    html = html.replace('href="/', f'href="{OHIF_URL}').replace(
        'src="/', f'src="{OHIF_URL}'
    )
    return html


@csp(OHIF_CSP)
def ohif_index_response(request, *, config_url):
    """Return OHIF's page loading its configuration from ``config_url``."""
    html = _index_template().replace("{config_url}", config_url)
    response = HttpResponse(html, content_type="text/html; charset=utf-8")
    response["Cache-Control"] = "private, no-store"
    return response


def ohif_config_js(*, router_basename, dicomweb_root, name):
    """Return the text of an app-config.js for one DICOMweb root."""
    config = {
        "routerBasename": router_basename,
        "extensions": [],
        "modes": [],
        # No first-visit tour over the image the recipient came to see.
        "customizationService": {"ohif.tours": {"$set": []}},
        "showStudyList": True,
        "maxNumberOfWebWorkers": 2,
        "showWarningMessageForCrossOrigin": False,
        "showCPUFallbackMessage": True,
        "showLoadingIndicator": True,
        "strictZSpacingForVolumeViewport": True,
        "investigationalUseDialog": {"option": "never"},
        "maxNumRequests": {"interaction": 100, "thumbnail": 5, "prefetch": 10},
        "defaultDataSourceName": "pacsshare",
        "dataSources": [
            {
                "namespace": "@ohif/extension-default.dataSourcesModule.dicomweb",
                "sourceName": "pacsshare",
                "configuration": {
                    "friendlyName": name,
                    "name": "pacsshare",
                    "wadoUriRoot": dicomweb_root,
                    "qidoRoot": dicomweb_root,
                    "wadoRoot": dicomweb_root,
                    "qidoSupportsIncludeField": False,
                    "imageRendering": "wadors",
                    "thumbnailRendering": "wadors",
                    "enableStudyLazyLoad": True,
                    "supportsFuzzyMatching": False,
                    "supportsWildcard": True,
                    "staticWado": False,
                    "singlepart": "bulkdata,video",
                    "bulkDataURI": {"enabled": True, "relativeResolution": "studies"},
                    "omitQuotationForMultipartRequest": True,
                },
            }
        ],
    }
    return (
        f"window.PUBLIC_URL = {json.dumps(OHIF_URL)};\n"
        "function browserImportFunction(n) { return import(n); }\n"
        f"window.config = {json.dumps(config, indent=1)};\n"
    )


def ohif_config_response(**kwargs):
    response = HttpResponse(
        ohif_config_js(**kwargs), content_type="text/javascript; charset=utf-8"
    )
    response["Cache-Control"] = "private, no-store"
    return response
