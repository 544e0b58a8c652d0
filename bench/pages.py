#!/usr/bin/env python
"""Serve the hot pages with gunicorn and load them with wrk, beside two baselines.

gunicorn (2 sync workers, production settings: DEBUG=0, manifest static files,
PostgreSQL and Redis) serves the hospital-scale database of bench/data.py
through bench/settings.py, whose URLconf adds two baseline views to the
product's URLs: a bare view rendering a 50-row template in the site's layout
(no query) and a view running one primary-key query. wrk loads each page on
loopback for a fixed time (after a short warm-up) with the benchmark sender's
session cookie, sent as a header (the production cookie is Secure, and wrk
speaks plain http); the baselines get the same cookie, so every request pays
the same session and user lookups and a ratio compares the views' own work.
The baselines are measured before and after the pages; their mean is used.

Pages: the overview (50 rows), the three wizard steps (a prepared wizard
session: 5 studies, 3 recipients), the directory search fragment (realistic
queries in turn), the SMS code page and an already rendered frame; Status
Forwarding (50 rows) for an admin of the sender's department, against a bare
template of its own 50 rows; and the recipient's pages for a user holding 200
shares (bench/data.py page_world): "Shared with me" (50 rows) and a received
study. A page may name its own session (the admin's, the recipient's).

    .venv/bin/python bench/pages.py [--seconds 10] [--json out.json]
"""

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import data  # noqa: E402  (bench/data.py)
import profiling  # noqa: E402  (bench/profiling.py)

PORT = 8130
WIZARD_STUDIES = 5
WIZARD_RECIPIENTS = 3
GOAL_RPS = 0.5  # page req/s >= 50% of its baseline's
GOAL_P99 = 2.0  # page p99 <= 2x the template baseline's p99
GOAL_P95 = 2.0  # search fragment p95 <= 2x the primary-key view's p95

LUA = """
local paths = {%(paths)s}
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format(nil, paths[(counter %% #paths) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK-JSON {\\"requests\\": %%d, \\"duration_us\\": %%d, \\"p50\\": %%d, "
    .. "\\"p95\\": %%d, \\"p99\\": %%d, \\"max\\": %%d, \\"errors\\": %%d, "
    .. "\\"status_errors\\": %%d}\\n",
    summary.requests, summary.duration, latency:percentile(50),
    latency:percentile(95), latency:percentile(99), latency.max,
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""


def production_env(port):
    """Return the environment of a production-like server on plain http."""
    env = dict(os.environ)
    env.update(
        DEBUG="0",
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="0",
        SECURE_HSTS_SECONDS="0",
        SITE_URL=f"http://127.0.0.1:{port}",
        CSRF_TRUSTED_ORIGINS=f"http://127.0.0.1:{port}",
        CONN_MAX_AGE="60",
    )
    return env


def collect_static():
    from django.core.management import call_command

    call_command("collectstatic", interactive=False, verbosity=0)


def sender_session(username=data.SENDER):
    """Return a logged-in session key of the benchmark's sender (or `username`)."""
    from django.test import Client

    from recipients.models import User

    client = Client()
    client.force_login(User.objects.get(username=username))
    return client, client.cookies["sessionid"].value


def session_of(pages, name, session):
    """Return the session a page is loaded with: its own, or the sender's."""
    return pages[name][2] if len(pages[name]) > 2 else session


def prepare_wizard(client):
    """Pass the studies and recipients steps; return the three step URLs."""
    from django.urls import reverse

    from recipients.models import Department, User
    from studies.models import Study

    studies = list(
        Study.objects.filter(department_id=data.SENDER_DEPARTMENT).order_by(
            "-study_date", "-id"
        )[:WIZARD_STUDIES]
    )
    query = "&".join(f"studies={s.pk}" for s in studies)
    response = client.get(f"{reverse('sharing:share_start')}?{query}")
    assert response.status_code == 302, response.status_code

    def step(name):
        return reverse("sharing:share_step", kwargs={"step": name})

    response = client.post(
        step("studies"),
        {
            "share_wizard-current_step": "studies",
            "studies-studies": [str(s.pk) for s in studies],
        },
    )
    assert response.status_code == 302, response.status_code
    assert Department.objects.filter(pk=data.SENDER_DEPARTMENT).exists()
    recipients = (
        User.objects.filter(is_active=True)
        .exclude(email="")
        .exclude(mobile="")[:WIZARD_RECIPIENTS]
    )
    payload = {
        "share_wizard-current_step": "recipients",
        "recipients-TOTAL_FORMS": str(WIZARD_RECIPIENTS),
        "recipients-INITIAL_FORMS": "0",
        "recipients-MIN_NUM_FORMS": "0",
        "recipients-MAX_NUM_FORMS": "1000",
    }
    for index, user in enumerate(recipients):
        payload[f"recipients-{index}-key"] = f"user:{user.pk}"
        payload[f"recipients-{index}-require_otp"] = "on"
        payload[f"recipients-{index}-send_mail"] = "on"
    response = client.post(step("recipients"), payload)
    assert response.status_code == 302, getattr(response, "context", None)
    return [step("studies"), step("recipients"), step("parameters")]


def search_paths(seed):
    """Return quick-search URLs for the directory benchmark's realistic queries."""
    from django.urls import reverse

    url = reverse("recipients:quick_search")
    try:
        import directory_search

        texts = [text for _kind, text in directory_search.build_queries(seed)]
    except Exception as error:  # the directory bench changed: plain names then
        print(f"pages: directory queries unavailable ({error})", file=sys.stderr)
        texts = ["peeters", "jan janssens", "mül", "dubois", "uller", "zzqx"]
    return [f"{url}?{urllib.parse.urlencode({'q': t})}" for t in texts]


def targets(seed):
    """Return {name: (paths, marker)} for every page and baseline."""
    from django.urls import reverse

    from sharing.models import Bucket
    from studies.models import Instance, Study

    client, session = sender_session()
    wizard = prepare_wizard(client)
    bucket = Bucket.objects.get(recipient_user__username=data.SENDER)
    code_url = reverse("sharing:bucket_code", kwargs={"bucket_id": bucket.pk})
    # Opening the code page sends the SMS code once; under load it is pending.
    assert client.get(code_url).status_code == 200
    study = (
        Study.objects.filter(department_id=data.SENDER_DEPARTMENT)
        .order_by("-study_date", "-id")
        .first()
    )
    instance = Instance.objects.filter(series__study=study).order_by("pk").first()
    frame = reverse("studies:frame", args=[study.pk, instance.pk, 0, "png"])
    pages = {
        "bare template (baseline)": (["/bench/baseline/template/"], "Baseline: 50"),
        "primary key (baseline)": ([f"/bench/baseline/pk/{study.pk}/"], None),
        "overview (50 rows)": ([reverse("studies:overview")], "studies-table"),
        "wizard: studies": ([wizard[0]], "study-choice"),
        "wizard: recipients": ([wizard[1]], "recipients-0-key"),
        "wizard: parameters": ([wizard[2]], "parameters-reason"),
        "directory search": (search_paths(seed), "directory-"),
        "SMS code page": ([code_url], 'name="code"'),
        "frame (rendered)": ([frame], None),
    }
    data.page_world()
    _admin, admin_session = sender_session(data.ADMIN)
    recipient, recipient_session = sender_session(data.RECIPIENT)
    received = data.received_study_url()
    # The first opening of the study, as a recipient's later visits find it.
    assert recipient.get(received).status_code == 200
    pages.update(
        {
            "bare status template (baseline)": (
                ["/bench/baseline/status/"],
                "Baseline: 50",
            ),
            "Status Forwarding (50 rows)": (
                [reverse("sharing:status_forwarding")],
                "status-table",
                admin_session,
            ),
            "Shared with me (200 shares)": (
                [reverse("sharing:shared_with_me")],
                "received-table",
                recipient_session,
            ),
            "received study (200 shares)": (
                [received],
                'id="viewer"',
                recipient_session,
            ),
        }
    )
    return session, pages


@contextlib.contextmanager
def gunicorn(env, port):
    command = [
        str(ROOT / ".venv" / "bin" / "gunicorn"),
        "pacsshare.wsgi:application",
        "--workers",
        "2",
        "--worker-class",
        "sync",
        "--bind",
        f"127.0.0.1:{port}",
        "--no-control-socket",
        "--chdir",
        str(ROOT),
        "--log-level",
        "warning",
    ]
    process = subprocess.Popen(command, env=env, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/login/", timeout=5
                ).read()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("gunicorn did not start") from None
                time.sleep(0.3)
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def fetch(port, path, session):
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", headers={"Cookie": f"sessionid={session}"}
    )
    opener = urllib.request.build_opener(NoRedirect)
    with opener.open(request, timeout=30) as response:
        return response.status, response.headers, response.read()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def preflight(port, session, pages):
    """Check every page answers 200 with what it should show (not a login page)."""
    for name, (paths, marker, *_own) in pages.items():
        for path in paths:
            status, headers, body = fetch(port, path, session_of(pages, name, session))
            if status != 200:
                raise RuntimeError(f"{name}: {path} answered {status}")
            if marker is not None and marker not in body.decode():
                raise RuntimeError(f"{name}: {path} lacks {marker!r}")
            if name.startswith("frame") and headers["Content-Type"] != "image/png":
                raise RuntimeError(f"{name}: not a PNG")
            if name.startswith("overview"):
                rows = body.decode().count('class="study-select"')
                if rows != 50:
                    raise RuntimeError(f"overview shows {rows} rows, not 50")
            if name.startswith(("Status Forwarding", "Shared with me")):
                rows = body.decode().count("<tr") - 1
                if rows != 50:
                    raise RuntimeError(f"{name} shows {rows} rows, not 50")


def wrk(port, session, paths, *, seconds, threads, connections):
    lua_paths = ", ".join(json.dumps(p) for p in paths)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(LUA % {"paths": lua_paths})
    try:
        result = subprocess.run(
            [
                "wrk",
                f"-t{threads}",
                f"-c{connections}",
                f"-d{seconds}s",
                "--timeout",
                "10s",
                "-s",
                script.name,
                "-H",
                f"Cookie: sessionid={session}",
                f"http://127.0.0.1:{port}{paths[0]}",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        os.unlink(script.name)
    line = next(x for x in result.stdout.splitlines() if x.startswith("WRK-JSON "))
    figures = json.loads(line.removeprefix("WRK-JSON "))
    figures["rps"] = figures["requests"] / (figures["duration_us"] / 1e6)
    for key in ("p50", "p95", "p99", "max"):
        figures[key] = figures[key] / 1000  # ms
    return figures


def measure(port, session, pages, args, log):
    names = list(pages)
    baselines = [name for name in names if name.endswith("(baseline)")]
    others = [name for name in names if name not in baselines]
    results = {name: [] for name in names}
    order = baselines + others + baselines
    for name in order:
        paths = pages[name][0]
        load = {
            "threads": args.threads,
            "connections": args.connections,
        }
        own = session_of(pages, name, session)
        wrk(port, own, paths, seconds=args.warmup, **load)
        figures = wrk(port, own, paths, seconds=args.seconds, **load)
        if figures["errors"] or figures["status_errors"]:
            raise RuntimeError(f"{name}: wrk saw errors {figures}")
        results[name].append(figures)
        log(
            f"  {name:<26} {figures['rps']:8.1f} req/s  p50 {figures['p50']:7.1f} ms"
            f"  p95 {figures['p95']:7.1f} ms  p99 {figures['p99']:7.1f} ms"
        )
    merged = {}
    for name, runs in results.items():
        merged[name] = {
            key: statistics.mean(run[key] for run in runs)
            for key in ("rps", "p50", "p95", "p99", "max", "requests")
        }
        merged[name]["runs"] = len(runs)
    return merged


def rows_of(results):
    """Return the table rows: each page's figures against its baseline."""
    template = results["bare template (baseline)"]
    pk = results["primary key (baseline)"]
    rows = []

    def row(measure, value, unit, baseline_name, baseline, goal, met):
        rows.append(
            {
                "bench": "pages",
                "measure": measure,
                "value": value,
                "unit": unit,
                "baseline": baseline_name,
                "baseline_value": baseline,
                "ratio": value / baseline if baseline else None,
                "goal": goal,
                "met": met,
            }
        )

    for name in (
        "bare template (baseline)",
        "primary key (baseline)",
        "bare status template (baseline)",
    ):
        r = results[name]
        row(f"{name} req/s", r["rps"], "req/s", "", None, "", None)
        row(f"{name} p50/p99", r["p99"], "ms", "", None, f"p50 {r['p50']:.1f}", None)
    status_template = results["bare status template (baseline)"]
    for name in (
        "overview (50 rows)",
        "wizard: studies",
        "wizard: recipients",
        "wizard: parameters",
        "SMS code page",
        "Status Forwarding (50 rows)",
        "Shared with me (200 shares)",
        "received study (200 shares)",
    ):
        if name not in results:  # --only left it out
            continue
        r = results[name]
        goals = name != "SMS code page"
        base_name, base = "bare template", template
        if name.startswith("Status Forwarding"):
            base_name, base = "bare status template", status_template
        ratio = r["rps"] / base["rps"]
        row(
            f"{name} req/s",
            r["rps"],
            "req/s",
            base_name,
            base["rps"],
            f">= {GOAL_RPS:.2f}" if goals else "(none)",
            ratio >= GOAL_RPS if goals else None,
        )
        row(f"{name} p50", r["p50"], "ms", base_name, base["p50"], "", None)
        p99 = r["p99"] / base["p99"]
        row(
            f"{name} p99",
            r["p99"],
            "ms",
            base_name,
            base["p99"],
            f"<= {GOAL_P99:.1f}" if goals else "(none)",
            p99 <= GOAL_P99 if goals else None,
        )
    for name in ("directory search", "frame (rendered)"):
        if name not in results:
            results = {**results, name: None}
    r = results["directory search"]
    if r is not None:
        directory_rows(row, r, pk)
    r = results["frame (rendered)"]
    if r is not None:
        frame_rows(row, r, pk)
    return rows


def directory_rows(row, r, pk):
    row("directory search req/s", r["rps"], "req/s", "primary key", pk["rps"], "", None)
    row("directory search p50", r["p50"], "ms", "primary key", pk["p50"], "", None)
    row(
        "directory search p95",
        r["p95"],
        "ms",
        "primary key",
        pk["p95"],
        f"<= {GOAL_P95:.1f}",
        r["p95"] / pk["p95"] <= GOAL_P95,
    )
    row("directory search p99", r["p99"], "ms", "primary key", pk["p99"], "", None)


def frame_rows(row, r, pk):
    row(
        "frame (rendered) req/s",
        r["rps"],
        "req/s",
        "primary key",
        pk["rps"],
        f">= {GOAL_RPS:.2f}",
        r["rps"] / pk["rps"] >= GOAL_RPS,
    )
    row("frame (rendered) p50", r["p50"], "ms", "primary key", pk["p50"], "", None)
    row("frame (rendered) p99", r["p99"], "ms", "primary key", pk["p99"], "", None)


def print_rows(rows):
    for r in rows:
        ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else ""
        base = (
            f"{r['baseline_value']:9.1f} {r['baseline']}"
            if r["baseline_value"] is not None
            else ""
        )
        met = {True: "met", False: "MISSED", None: ""}[r["met"]]
        print(
            f"{r['measure']:<36}{r['value']:9.1f} {r['unit']:<6}{base:<26}"
            f"{ratio:>6}  {r['goal']:<10}{met}"
        )


def purge_queue():
    """Drop the tasks the pages queued (the SMS code) from the broker."""
    from django.conf import settings

    if settings.REDIS_URL:
        from pacsshare.celery import app

        app.control.purge()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default=data.DATABASE)
    parser.add_argument("--port", type=int, default=PORT)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--seed", type=int, default=data.SEED)
    parser.add_argument("--json", help="write the table rows to this file")
    parser.add_argument(
        "--profile-missed",
        action="store_true",
        help="profile each page that misses a goal with py-spy (if installed)",
    )
    parser.add_argument("--profile-seconds", type=int, default=8)
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        help="measure only the pages whose name starts with this (repeatable); "
        "the baselines are always measured",
    )
    args = parser.parse_args()

    env = production_env(args.port)
    os.environ.update({k: v for k, v in env.items() if k not in ("ALLOWED_HOSTS",)})
    os.environ["ALLOWED_HOSTS"] = "127.0.0.1,testserver"
    data.setup_django(args.database)
    env["DATABASE_URL"] = os.environ["DATABASE_URL"]
    env.update(data.environment())

    def log(text):
        print(text, file=sys.stderr, flush=True)

    log("pages: collecting static files, preparing sessions")
    collect_static()
    session, pages = targets(args.seed)
    if args.only:
        pages = {
            name: target
            for name, target in pages.items()
            if name.endswith("(baseline)")
            or any(name.startswith(prefix) for prefix in args.only)
        }
    from django.db import connections

    connections.close_all()
    log(
        f"pages: gunicorn (2 sync workers) on 127.0.0.1:{args.port}; wrk "
        f"-t{args.threads} -c{args.connections}, {args.seconds} s each "
        f"after {args.warmup} s of warm-up"
    )
    profiles = {}
    try:
        with gunicorn(env, args.port) as server:
            preflight(args.port, session, pages)
            results = measure(args.port, session, pages, args, log)
            rows = rows_of(results)
            if args.profile_missed:
                profiles = profile_missed(server.pid, session, pages, rows, args, log)
    finally:
        purge_queue()
    print("pages under load (gunicorn, 2 sync workers; wrk on loopback)")
    print_rows(rows)
    for name, lines in profiles.items():
        print(f"profile of {name} under load (py-spy, both workers):")
        print("\n".join(f"  {line}" for line in lines))
    if args.json:
        Path(args.json).write_text(
            json.dumps({"rows": rows, "results": results, "profiles": profiles})
        )
    return 0


def profile_missed(pid, session, pages, rows, args, log):
    """Load each page that missed a goal once more while py-spy samples it."""
    if not profiling.available():
        log("pages: py-spy is not installed in .venv; no profiles")
        return {}
    missed = []
    for r in rows:
        name = r["measure"].rsplit(" ", 1)[0]
        if r["met"] is False and name in pages and name not in missed:
            missed.append(name)
    profiles = {}
    for name in missed:
        output = Path(tempfile.mkdtemp(prefix="bench-profile-")) / "raw.txt"
        spy = profiling.start(pid, args.profile_seconds, output)
        time.sleep(1)  # py-spy attaches to the workers
        wrk(
            args.port,
            session_of(pages, name, session),
            pages[name][0],
            seconds=args.profile_seconds,
            threads=args.threads,
            connections=args.connections,
        )
        spy.wait(timeout=60)
        try:
            profiles[name] = profiling.summarize(output)
        except (OSError, ValueError) as error:  # a profile never costs the table
            profiles[name] = [f"(no profile: {error})"]
        log(f"pages: profiled {name}")
    return profiles


if __name__ == "__main__":
    sys.exit(main())
