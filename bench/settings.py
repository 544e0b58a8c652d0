"""Settings of the benchmarks: the product's settings, the bench-only URLconf (the
baseline views) and an overview and Status Forwarding of 50 rows a page."""

from pacsshare.settings import *  # noqa: F403
from pacsshare.settings import BASE_DIR, TEMPLATES

ROOT_URLCONF = "bench.bench_urls"
OVERVIEW_PAGE_SIZE = 50
STATUS_PAGE_SIZE = 50
TEMPLATES[0]["DIRS"] = [*TEMPLATES[0]["DIRS"], BASE_DIR / "bench" / "templates"]
