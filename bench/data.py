#!/usr/bin/env python
"""Load a hospital-scale database for the page benchmarks, with COPY.

In a database of its own (default "bench_pages" on the PostgreSQL server of
DATABASE_URL; dev data is never touched), after `migrate`: 1,000,000 directory
users (the directory benchmark's loader, bench/directory_search.py), 100,000
studies with 200,000 series, 600,000 instances and 60,000 reports, 5,000 shares
with 10,000 buckets, their mails and audit events, and the benchmark's own
sender: a member of the department that holds half of the studies, with labels
and favorites, and a bucket with two-factor that was shared with them.

A database already loaded with the same sizes and seed is reused; --reload
loads it again. Progress goes to stderr.

    .venv/bin/python bench/data.py [--users 1000000 --studies 100000 --buckets 10000]
"""

import argparse
import datetime
import io
import json
import os
import random
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from directory_search import bench_url, ensure_database  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATABASE = "bench_pages"
SEED = 20240601
SENDER = "bench-sender"
SENDER_DEPARTMENT = 1  # the directory loader's first department
ADMIN = "bench-admin"  # a department admin of the sender's department
RECIPIENT = "bench-recipient"  # holds RECIPIENT_SHARES buckets
RECIPIENT_SHARES = 200
SERIES_PER_STUDY = 2
INSTANCES_PER_SERIES = 3
SHARE_SIZE = 2  # buckets per share
FRAME_FILE = "dicom/bench-ct-small.dcm"
BENCH_VAR = ROOT / "var" / "bench"
UID_ROOT = "1.2.826.0.1.3680043.10.5"
DESCRIPTIONS = (
    "CT thorax",
    "CT abdomen with contrast",
    "MR knee left",
    "MR brain",
    "US abdomen",
    "CR chest PA",
    "MG screening",
    "PET-CT whole body",
)
MODALITIES = ("CT", "CT", "MR", "MR", "US", "CR", "MG", "CT,PT")
FAMILY = ("Peeters", "Janssens", "Maes", "Dubois", "Lambert", "Müller", "Nowak")
GIVEN = ("Marie", "Jan", "Anne", "Luc", "Sophie", "Ahmed", "Léa", "Noah")
OUR_TABLES = (
    "sharing_auditevent",
    "sharing_notification",
    "sharing_otpdevice",
    "sharing_bucketopening",
    "sharing_bucketunlock",
    "sharing_pseudonym",
    "sharing_bucket",
    "sharing_share_studies",
    "sharing_share",
    "sharing_label",
    "sharing_senderpreferences",
    "recipients_favorite",
    "studies_reportrevision",
    "studies_report",
    "studies_instance",
    "studies_series",
    "studies_study",
    "studies_patient",
    "django_session",
)


def environment(**overrides):
    """Set the environment every benchmark process shares; return it."""
    values = {
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "LOG_LEVEL": "WARNING",
        "MEDIA_ROOT": str(BENCH_VAR / "media"),
        "RENDER_CACHE_DIR": str(BENCH_VAR / "render-cache"),
        "OUTBOX_DIR": str(BENCH_VAR / "outbox"),
        "STATIC_ROOT": str(BENCH_VAR / "static"),
        # One key for the loader, the session maker and gunicorn (session hashes).
        "SECRET_KEY": "bench-only-3f9c2a7e5d1b4c8a9e6f0d2b7a5c3e1f-not-for-production",
    }
    values.update(overrides)
    for name, value in values.items():
        os.environ.setdefault(name, value)
    return {name: os.environ[name] for name in values}


def setup_django(database=DATABASE, *, migrate=True):
    """Point Django at the benchmark database (created if needed) and set it up."""
    base_url, url = bench_url(database)
    ensure_database(base_url, database)
    os.environ["DATABASE_URL"] = url
    environment()
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)
    return url


class Progress(io.TextIOBase):
    """A file COPY reads, producing rows on demand, drawing a bar on stderr."""

    def __init__(self, rows, total, label):
        self.rows, self.total, self.label = iter(rows), max(total, 1), label
        self.buffer, self.count, self.started = "", 0, time.monotonic()
        self.step = max(self.total // 40, 1)
        self.finished = False

    def readable(self):
        return True

    def read(self, size=-1):
        size = 1 << 16 if size is None or size < 0 else size
        parts, length = [self.buffer], len(self.buffer)
        while length < size:
            row = next(self.rows, None)
            if row is None:
                if not self.finished:
                    self.finished = True
                    self.draw(final=True)
                break
            line = "\t".join("\\N" if v is None else str(v) for v in row) + "\n"
            parts.append(line)
            length += len(line)
            self.count += 1
            if self.count % self.step == 0:
                self.draw()
        data = "".join(parts)
        self.buffer = data[size:]
        return data[:size]

    def draw(self, final=False):
        done = min(self.count / self.total, 1.0)
        bar = "#" * int(done * 30)
        end = "\n" if final else "\r"
        print(
            f"  {self.label:<16} [{bar:<30}] {self.count:>9,}/{self.total:,} "
            f"{time.monotonic() - self.started:6.1f} s",
            end=end,
            file=sys.stderr,
            flush=True,
        )


def copy(cursor, table, columns, rows, total):
    cursor.copy_expert(
        f"COPY {table} ({', '.join(columns)}) FROM STDIN",
        Progress(rows, total, table.split("_", 1)[1]),
    )


def state(cursor):
    cursor.execute("SELECT to_regclass('bench_pages_state')")
    if cursor.fetchone()[0] is None:
        return None
    cursor.execute("SELECT params::text FROM bench_pages_state")
    row = cursor.fetchone()
    return json.loads(row[0]) if row else None


def _department_of_patient(p):
    # Half of everything belongs to the sender's department; the rest to 19 more.
    return SENDER_DEPARTMENT if p % 2 == 0 else 2 + p % 19


def load_hospital(*, users, studies, buckets, seed):
    """Load studies, shares and buckets (users must be loaded already)."""
    from django.db import connection, transaction
    from django.utils import timezone

    from recipients.models import User
    from sharing.models import Bucket

    rng = random.Random(seed + 10)
    started = time.monotonic()
    now = timezone.now()
    patients = max(studies * 2 // 5, 1)
    n_series = studies * SERIES_PER_STUDY
    n_instances = n_series * INSTANCES_PER_SERIES
    n_shares = max(buckets // SHARE_SIZE, 1)
    print(
        f"loading {studies:,} studies ({n_series:,} series, {n_instances:,} "
        f"instances), {buckets:,} buckets",
        file=sys.stderr,
        flush=True,
    )
    # One transaction: a load that fails half-way leaves the indexes it dropped.
    with transaction.atomic(), connection.cursor() as cursor:
        # Check foreign keys row by row: CREATE INDEX refuses pending checks.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f"TRUNCATE {', '.join(OUR_TABLES)} RESTART IDENTITY CASCADE")
        # The benchmark's own users (the sender), with what hangs on them.
        User.objects.filter(username__startswith="bench-").delete()
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s) "
            "AND indexname NOT IN (SELECT conname FROM pg_constraint)",
            [list(OUR_TABLES)],
        )
        indexes = cursor.fetchall()
        for name, _definition in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        raw = cursor.connection.cursor()

        copy(
            raw,
            "studies_patient",
            ("id", "patient_id", "family_name", "given_name", "birth_date", "sex")
            + ("department_id",),
            (
                (
                    p,
                    f"PAT{p:08d}",
                    f"{FAMILY[p % len(FAMILY)]}{p}",
                    GIVEN[p % len(GIVEN)],
                    datetime.date(1930 + p % 80, 1 + p % 12, 1 + p % 28),
                    "FM"[p % 2],
                    _department_of_patient(p),
                )
                for p in range(1, patients + 1)
            ),
            patients,
        )
        today = datetime.date.today()

        def study_rows():
            for s in range(1, studies + 1):
                p = 1 + s % patients
                k = s % len(DESCRIPTIONS)
                yield (
                    s,
                    f"{UID_ROOT}.1.{s}",
                    f"ACC{s:09d}",
                    today - datetime.timedelta(days=rng.randrange(5 * 365)),
                    datetime.time(rng.randrange(7, 19), rng.randrange(60)),
                    DESCRIPTIONS[k],
                    MODALITIES[k],
                    "Dr. Referring",
                    "Bench Hospital",
                    now.isoformat(),
                    _department_of_patient(p),
                    p,
                    SERIES_PER_STUDY,
                    SERIES_PER_STUDY * INSTANCES_PER_SERIES,
                )

        copy(
            raw,
            "studies_study",
            (
                "id",
                "study_instance_uid",
                "accession_number",
                "study_date",
                "study_time",
                "description",
                "modalities",
                "referring_physician",
                "institution_name",
                "created_at",
                "department_id",
                "patient_id",
                "series_count",
                "instance_count",
            ),
            study_rows(),
            studies,
        )
        copy(
            raw,
            "studies_series",
            ("id", "series_instance_uid", "modality", "series_number")
            + ("description", "study_id"),
            (
                (
                    r,
                    f"{UID_ROOT}.2.{r}",
                    MODALITIES[(1 + (r - 1) // SERIES_PER_STUDY) % len(MODALITIES)][:2],
                    1 + (r - 1) % SERIES_PER_STUDY,
                    "Axial" if r % 2 else "Coronal",
                    1 + (r - 1) // SERIES_PER_STUDY,
                )
                for r in range(1, n_series + 1)
            ),
            n_series,
        )
        copy(
            raw,
            "studies_instance",
            ("id", "sop_instance_uid", "sop_class_uid", "instance_number")
            + ("number_of_frames", "rows", "columns", "has_pixels", "file")
            + ("series_id", "burned_in_annotation"),
            (
                (
                    i,
                    f"{UID_ROOT}.3.{i}",
                    "1.2.840.10008.5.1.4.1.1.2",
                    1 + (i - 1) % INSTANCES_PER_SERIES,
                    1,
                    128,
                    128,
                    "t",
                    FRAME_FILE,
                    1 + (i - 1) // INSTANCES_PER_SERIES,
                    "NO",
                )
                for i in range(1, n_instances + 1)
            ),
            n_instances,
        )
        n_reports = studies * 3 // 5
        copy(
            raw,
            "studies_report",
            ("id", "text", "updated_at", "study_id"),
            (
                (
                    r,
                    "Findings: no focal lesion. Conclusion: normal study.",
                    now.isoformat(),
                    r * 5 // 3,
                )
                for r in range(1, n_reports + 1)
            ),
            n_reports,
        )

        def share_rows():
            for s in range(1, n_shares + 1):
                study = 1 + (s * 7919) % studies
                yield (
                    s,
                    "read" if s % 3 else "write",
                    "Second opinion",
                    "nl" if s % 2 else "fr",
                    today + datetime.timedelta(days=30 - s % 60),
                    now.isoformat(),
                    "",
                    "f",
                    "f",
                    "f",
                    "Please have a look." if s % 4 == 0 else "",
                    now.isoformat(),
                    1 + (s * 104729) % users,
                    _department_of_patient(1 + study % patients),
                    f"bench{s}",
                )

        copy(
            raw,
            "sharing_share",
            ("id", "access", "reason", "language", "valid_until")
            + ("patient_agreed_at", "label_scope", "urgent", "anonymize")
            + ("allow_further_sharing", "message", "created_at", "sender_id")
            + ("source_department_id", "wizard_run"),
            share_rows(),
            n_shares,
        )
        copy(
            raw,
            "sharing_share_studies",
            ("share_id", "study_id"),
            ((s, 1 + (s * 7919) % studies) for s in range(1, n_shares + 1)),
            n_shares,
        )

        def bucket_rows():
            bucket = Bucket()
            for b in range(1, buckets + 1):
                bucket.set_link_secret()
                yield (
                    b,
                    bucket.link_secret,
                    bucket.token_hash,
                    "t" if b % 3 == 0 else "f",
                    "t",
                    0,
                    now.isoformat(),
                    1 + (b * 15485863) % users,
                    1 + (b - 1) // SHARE_SIZE,
                )

        copy(
            raw,
            "sharing_bucket",
            ("id", "link_secret", "token_hash", "require_otp", "send_mail")
            + ("failed_otp_attempts", "created_at", "recipient_user_id", "share_id"),
            bucket_rows(),
            buckets,
        )
        copy(
            raw,
            "sharing_notification",
            ("channel", "kind", "to_address", "language", "subject", "status")
            + ("attempts", "provider_id", "error", "created_at", "sent_at")
            + ("bucket_id",),
            (
                (
                    "email",
                    "share",
                    f"recipient{b}@example-hospital.be",
                    "nl",
                    "A study was shared with you",
                    "sent",
                    1,
                    "",
                    "",
                    now.isoformat(),
                    now.isoformat(),
                    b,
                )
                for b in range(1, buckets + 1)
            ),
            buckets,
        )
        n_audit = n_shares + buckets * 2
        copy(
            raw,
            "sharing_auditevent",
            ("created_at", "action", "study_uids", "ip_address", "user_agent")
            + ("details", "bucket_id", "share_id"),
            (
                (
                    now.isoformat(),
                    "share_created" if a <= n_shares else "bucket_opened",
                    "[]",
                    "10.0.0.1",
                    "bench",
                    json.dumps({"bench": True}),
                    None if a <= n_shares else 1 + a % buckets,
                    a if a <= n_shares else 1 + (a % buckets) // SHARE_SIZE,
                )
                for a in range(1, n_audit + 1)
            ),
            n_audit,
        )
        raw.close()
        for table in OUR_TABLES[:-1]:  # django_session has no id
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
            )
        print(
            f"  copied in {time.monotonic() - started:.1f} s; building indexes",
            file=sys.stderr,
            flush=True,
        )
        for _name, definition in indexes:
            cursor.execute(definition)
        for table in OUR_TABLES:
            cursor.execute(f"ANALYZE {table}")
    sender_world(seed=seed, users=users)
    print(
        f"loaded the hospital in {time.monotonic() - started:.1f} s",
        file=sys.stderr,
        flush=True,
    )


def sender_world(*, seed, users):
    """Create the benchmark's sender and what they see (through the ORM)."""
    from django.utils import timezone

    from recipients.models import Department, Favorite, Membership, User
    from sharing.models import Bucket, Label, SenderPreferences, Share
    from studies.models import Study

    department = Department.objects.get(pk=SENDER_DEPARTMENT)
    # The wizard's absolute maximum: share_create is measured at this size.
    department.max_recipients = 50
    department.save(update_fields=["max_recipients"])
    sender = User.objects.create_user(
        username=SENDER,
        first_name="Bench",
        last_name="Sender",
        email="bench-sender@example-hospital.be",
        mobile="+32470000000",
        language="en",
        password=None,
    )
    Membership.objects.create(user=sender, department=department)
    for name in ("Second opinion", "Tumour board", "Follow-up", "Research"):
        Label.objects.create(department=department, name=name)
    SenderPreferences.objects.create(user=sender, require_otp=True, send_mail=True)
    rng = random.Random(seed + 20)
    favorites = User.objects.filter(
        pk__in=[rng.randrange(1, users + 1) for _ in range(30)], is_active=True
    )
    Favorite.objects.bulk_create(Favorite(owner=sender, user=u) for u in favorites)
    # A bucket with two-factor shared with the sender (the SMS code page).
    other = Department.objects.get(pk=SENDER_DEPARTMENT + 1)
    share = Share.objects.create(
        sender=User.objects.filter(is_active=True).order_by("pk").first(),
        source_department=other,
        access="read",
        reason="benchmark",
        language="en",
        patient_agreed_at=timezone.now(),
    )
    share.studies.set(Study.objects.filter(department=other).order_by("pk")[:1])
    bucket = Bucket(share=share, recipient_user=sender, require_otp=True)
    bucket.set_link_secret()
    bucket.save()
    copy_frame_file()


def copy_frame_file():
    """Put the frame every instance points at under this checkout's MEDIA_ROOT."""
    media = Path(os.environ["MEDIA_ROOT"]) / FRAME_FILE
    if not media.exists():
        media.parent.mkdir(parents=True, exist_ok=True)
        import pydicom.data

        shutil.copy(Path(pydicom.data.DATA_ROOT, "test_files", "CT_small.dcm"), media)


def page_world(*, seed=SEED):
    """Add, where missing, the recipient's and the department admin's pages' data.

    A department admin of the sender's department (Status Forwarding over what it
    sent: half of the buckets) and a recipient holding RECIPIENT_SHARES buckets,
    one share each, from every department: one study each, every fourth with two;
    some with a message, a label, urgent, anonymized or asking for the SMS code.
    Idempotent, and run on a database already loaded: no reload is needed.
    """
    from django.db import connection, transaction
    from django.utils import timezone

    from recipients.models import Department, Membership, User
    from sharing.models import Bucket, BucketOpening, Label, Notification, Share
    from studies.models import Study

    with transaction.atomic():
        with connection.cursor() as cursor:
            # Two benchmarks starting at once add the data once.
            cursor.execute("SELECT pg_advisory_xact_lock(20240601)")
        department = Department.objects.get(pk=SENDER_DEPARTMENT)
        if not User.objects.filter(username=ADMIN).exists():
            admin = User.objects.create_user(
                username=ADMIN,
                first_name="Bench",
                last_name="Admin",
                email="bench-admin@example-hospital.be",
                language="en",
                password=None,
            )
            Membership.objects.create(user=admin, department=department, is_admin=True)
        recipient = User.objects.filter(username=RECIPIENT).first()
        if recipient is not None and recipient.buckets.count() == RECIPIENT_SHARES:
            return
        if recipient is not None:
            Share.objects.filter(buckets__recipient_user=recipient).delete()
            recipient.delete()
        recipient = User.objects.create_user(
            username=RECIPIENT,
            first_name="Bench",
            last_name="Recipient",
            email="bench-recipient@example-hospital.be",
            mobile="+32470000001",
            language="en",
            password=None,
        )
        rng = random.Random(seed + 30)
        departments = list(Department.objects.order_by("pk")[:20])
        labels = {label.department_id: label for label in Label.objects.all()}
        senders = list(
            User.objects.filter(is_active=True, pk__lte=50_000)
            .exclude(username__startswith="bench-")
            .order_by("pk")[:500]
        )
        today = timezone.localdate()
        shares = Share.objects.bulk_create(
            Share(
                sender=senders[rng.randrange(len(senders))],
                source_department=departments[s % len(departments)],
                access="read" if s % 3 else "write",
                reason="Second opinion",
                language="en",
                valid_until=None if s % 5 == 0 else today + datetime.timedelta(30 + s),
                patient_agreed_at=timezone.now(),
                label=labels.get(departments[s % len(departments)].pk),
                urgent=s % 7 == 0,
                anonymize=s % 10 == 9,
                message="Please have a look." if s % 4 == 0 else "",
                wizard_run=f"bench-recipient-{s}",
            )
            for s in range(RECIPIENT_SHARES)
        )
        study_ids = {}
        for share in shares:
            picked = study_ids.setdefault(share.source_department_id, [])
            if not picked:
                picked.extend(
                    Study.objects.filter(department_id=share.source_department_id)
                    .order_by("-study_date", "-id")
                    .values_list("pk", flat=True)[: 3 * RECIPIENT_SHARES]
                )
        through = []
        for s, share in enumerate(shares):
            pool = study_ids[share.source_department_id]
            for k in range(2 if s % 4 == 3 else 1):
                through.append(
                    Share.studies.through(share=share, study_id=pool[(2 * s + k)])
                )
        Share.studies.through.objects.bulk_create(through)
        buckets = []
        for s, share in enumerate(shares):
            bucket = Bucket(
                share=share, recipient_user=recipient, require_otp=s % 5 == 4
            )
            bucket.set_link_secret()
            buckets.append(bucket)
        buckets = Bucket.objects.bulk_create(buckets)
        Notification.objects.bulk_create(
            Notification(
                channel="email",
                kind="share",
                bucket=bucket,
                to_address=recipient.email,
                language="en",
                subject="A study was shared with you",
                status="sent",
                sent_at=timezone.now(),
            )
            for bucket in buckets
        )
        BucketOpening.objects.bulk_create(
            BucketOpening(bucket=bucket, user=recipient)
            for s, bucket in enumerate(buckets)
            if s % 2 == 0
        )
    print(
        f"added {RECIPIENT} with {RECIPIENT_SHARES} shares and {ADMIN}",
        file=sys.stderr,
        flush=True,
    )


def received_study_url():
    """Return the URL of the recipient's newest plain one-study bucket's study."""
    from django.urls import reverse

    from sharing.models import Bucket

    bucket = (
        Bucket.objects.filter(
            recipient_user__username=RECIPIENT,
            require_otp=False,
            share__anonymize=False,
        )
        .order_by("-share__created_at", "-pk")
        .first()
    )
    study = bucket.share.studies.order_by("pk").first()
    return reverse(
        "sharing:received_study", kwargs={"bucket_id": bucket.pk, "study_id": study.pk}
    )


def ensure_loaded(*, users, studies, buckets, seed, reload=False):
    """Load whatever part of the database is missing or was loaded differently."""
    from django.db import connection

    sys.path.insert(0, str(ROOT / "bench"))
    import directory_search

    params = {"users": users, "studies": studies, "buckets": buckets, "seed": seed}
    started = time.monotonic()
    users_loaded = directory_search.loaded_state() == (users, seed)
    if reload or not users_loaded:
        directory_search.load(users, seed)
        users_loaded = False
    else:
        print(f"reusing the {users:,} directory users", file=sys.stderr)
    with connection.cursor() as cursor:
        current = state(cursor)
    if reload or not users_loaded or current != params:
        load_hospital(users=users, studies=studies, buckets=buckets, seed=seed)
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS bench_pages_state")
            cursor.execute("CREATE TABLE bench_pages_state (params jsonb)")
            cursor.execute(
                "INSERT INTO bench_pages_state VALUES (%s)", [json.dumps(params)]
            )
    else:
        print(f"reusing {studies:,} studies and {buckets:,} buckets", file=sys.stderr)
    # Another checkout reusing the database has its own MEDIA_ROOT.
    copy_frame_file()
    page_world(seed=seed)
    return time.monotonic() - started


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default=DATABASE)
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--studies", type=int, default=100_000)
    parser.add_argument("--buckets", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--reload", action="store_true")
    parser.add_argument("--json", help="write the figures to this file")
    return parser.parse_args(argv)


def main():
    args = parse_args()
    setup_django(args.database)
    elapsed = ensure_loaded(
        users=args.users,
        studies=args.studies,
        buckets=args.buckets,
        seed=args.seed,
        reload=args.reload,
    )
    from django.db import connection

    with connection.cursor() as cursor:
        counts = {}
        for table in (
            "recipients_user",
            "studies_study",
            "studies_instance",
            "sharing_bucket",
        ):
            cursor.execute(f"SELECT count(*) FROM {table}")
            counts[table] = cursor.fetchone()[0]
    print(
        f"data: {args.database}: "
        + ", ".join(f"{t.split('_', 1)[1]} {n:,}" for t, n in counts.items())
        + f"; ready in {elapsed:.0f} s"
    )
    if args.json:
        Path(args.json).write_text(
            json.dumps({"seconds": elapsed, "counts": counts, **vars(args)})
        )


if __name__ == "__main__":
    main()
