#!/usr/bin/env python
"""Benchmark the recipient directory's quick search against a plain ILIKE scan.

Loads N directory users (default 1,000,000) into a database of its own
(default "bench_directory" on the server of DATABASE_URL, created here; dev data
is never touched) with COPY, then runs 50+ realistic queries (names, prefixes,
physician numbers, public mobiles and e-mails, misses) through
recipients.selectors.directory_quick_search, and the same queries through a plain
`ILIKE '%term%'` over the same tables, and prints p50/p95/max of both and the
ratio.

    .venv/bin/python bench/directory_search.py --users 1000000
    .venv/bin/python bench/directory_search.py --users 10000 --explain

A database already loaded with the same --users and --seed is reused; pass
--reload to load it again.
"""

import argparse
import io
import os
import random
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FIRST_NAMES = [
    "Jan",
    "Piet",
    "Joris",
    "Korneel",
    "Noël",
    "Zoë",
    "Hélène",
    "Jérôme",
    "François",
    "Anaïs",
    "Maël",
    "Chloé",
    "Léa",
    "Émile",
    "Céline",
    "Søren",
    "Jürgen",
    "Björn",
    "Günther",
    "Käthe",
    "Marie",
    "Anne",
    "Sophie",
    "Elise",
    "Lotte",
    "Wouter",
    "Pieter",
    "Bart",
    "Koen",
    "Dirk",
    "Luc",
    "Marc",
    "Patrick",
    "Philippe",
    "Pierre",
    "Jean",
    "Jacques",
    "Michel",
    "Alain",
    "Nathalie",
    "Isabelle",
    "Véronique",
    "Brigitte",
    "Sabine",
    "Katrien",
    "Griet",
    "Inge",
    "Els",
    "An",
    "Sarah",
    "Laura",
    "Emma",
    "Olivia",
    "Louise",
    "Mila",
    "Lina",
    "Noah",
    "Lucas",
    "Liam",
    "Arthur",
    "Louis",
    "Adam",
    "Victor",
    "Jules",
    "Finn",
    "Thomas",
    "Nicolas",
    "Maxime",
    "Antoine",
    "Hugo",
    "Mathis",
    "Raphaël",
    "Mohamed",
    "Ahmed",
    "Fatima",
    "Yasmine",
    "Amira",
    "Youssef",
    "Karim",
    "Samir",
    "Nadia",
    "Leila",
    "Ibrahim",
    "Dimitri",
    "Nikolaos",
    "Giulia",
    "Marco",
    "Francesca",
    "Lorenzo",
    "Ana",
    "João",
    "Inês",
    "Tomás",
    "Zofia",
    "Jean-Pierre",
    "Marie-Claire",
    "Anne-Sophie",
]
LAST_NAMES = [
    "Peeters",
    "Janssens",
    "Maes",
    "Jacobs",
    "Mertens",
    "Willems",
    "Claes",
    "Goossens",
    "Wouters",
    "De_Smet",
    "Dubois",
    "Lambert",
    "Dupont",
    "Martin",
    "Simon",
    "Laurent",
    "Lejeune",
    "Renard",
    "Leclercq",
    "Mathieu",
    "Van_den_Berg",
    "Van_Damme",
    "Vandenbroucke",
    "De_Vos",
    "Verhoeven",
    "Van_de_Velde",
    "Desmet",
    "Müller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Schäfer",
    "Koch",
    "Lefèvre",
    "Lefebvre",
    "Moreau",
    "Girard",
    "André",
    "Mercier",
    "Bonnet",
    "Fontaine",
    "Rousseau",
    "Blanc",
    "Guérin",
    "Muller",
    "Faure",
    "Roux",
    "Chevalier",
    "Garnier",
    "Bélanger",
    "Côté",
    "Gagné",
    "Pelletier",
    "D'Hondt",
    "Dewaele",
    "Vermeulen",
    "Hermans",
    "Michiels",
    "Aerts",
    "Smets",
    "Pauwels",
    "Cools",
    "Hendrickx",
    "Van_Acker",
    "Vandamme",
    "Declercq",
    "Dierckx",
    "Stevens",
    "Coppens",
    "Verstraete",
    "Lemmens",
    "El_Amrani",
    "Benali",
    "Yilmaz",
    "Kaya",
    "Demir",
    "Öztürk",
    "Nowak",
    "Kowalski",
    "Wiśniewski",
    "Rossi",
    "Russo",
    "Ferrari",
    "Esposito",
    "Silva",
    "Santos",
    "Ferreira",
    "Costa",
    "Oliveira",
    "Papadopoulos",
]
SYLLABLES = [
    "ver",
    "van",
    "de",
    "la",
    "le",
    "ber",
    "man",
    "ken",
    "sen",
    "hoo",
    "gen",
    "dal",
    "bos",
    "kamp",
    "wijk",
    "mont",
    "val",
    "roch",
    "fleur",
    "brou",
    "cart",
    "ghem",
    "hout",
    "lin",
    "mar",
    "nel",
    "pen",
    "ros",
    "sta",
    "tor",
    "vin",
    "wal",
    "zee",
    "dor",
    "gar",
]
SPECIALITIES = (
    "General practice",
    "Cardiology",
    "Neurology",
    "Orthopaedics",
    "Oncology",
    "Paediatrics",
    "Radiology",
    "Pulmonology",
    "Gastroenterology",
    "Urology",
)
CITIES = (
    ("Brussel", "1000"),
    ("Antwerpen", "2000"),
    ("Gent", "9000"),
    ("Leuven", "3000"),
    ("Liège", "4000"),
    ("Namur", "5000"),
    ("Mons", "7000"),
    ("Brugge", "8000"),
    ("Hasselt", "3500"),
    ("Charleroi", "6000"),
    ("Mechelen", "2800"),
    ("Kortrijk", "8500"),
    ("Arlon", "6700"),
    ("Aalst", "9300"),
)
LANGUAGES = ("nl", "nl", "fr", "fr", "en", "de")
N_DEPARTMENTS = 200
N_GROUPS = 2000


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--database", default="bench_directory")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each query")
    parser.add_argument(
        "--baseline-repeat",
        type=int,
        default=1,
        help="runs of each baseline query (each is a scan of the whole table)",
    )
    parser.add_argument("--reload", action="store_true", help="load even if loaded")
    parser.add_argument(
        "--explain",
        action="store_true",
        help="EXPLAIN ANALYZE a name and a number query",
    )
    return parser.parse_args()


def bench_url(database):
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    parsed = urlparse(base)
    if not parsed.scheme.startswith("postgres"):
        sys.exit("DATABASE_URL must point at a PostgreSQL server.")
    if database == parsed.path.lstrip("/"):
        sys.exit("Refusing to run in the database of DATABASE_URL; pick --database.")
    return base, urlunparse(parsed._replace(path=f"/{database}"))


def ensure_database(base_url, database):
    import psycopg2
    from psycopg2 import sql

    admin = urlunparse(urlparse(base_url)._replace(path="/postgres"))
    connection = psycopg2.connect(admin)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database])
        if cursor.fetchone() is None:
            cursor.execute(
                sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database))
            )
            print(f"created database {database}", file=sys.stderr)
    connection.close()


def setup_django(url):
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pacsshare.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


class RowStream(io.TextIOBase):
    """A file-like object that COPY reads, producing rows on demand (bounded memory)."""

    def __init__(self, rows, total, label):
        self.rows, self.total, self.label = rows, total, label
        self.buffer, self.count, self.started = "", 0, time.monotonic()

    def readable(self):
        return True

    def read(self, size=-1):
        size = 1 << 16 if size is None or size < 0 else size
        parts = [self.buffer]
        length = len(self.buffer)
        while length < size:
            row = next(self.rows, None)
            if row is None:
                break
            line = "\t".join(row) + "\n"
            parts.append(line)
            length += len(line)
            self.count += 1
            if self.count % 100_000 == 0:
                self.progress()
        data = "".join(parts)
        self.buffer = data[size:]
        return data[:size]

    def progress(self):
        elapsed = time.monotonic() - self.started
        print(
            f"  {self.label}: {self.count:>9,}/{self.total:,} rows, {elapsed:5.1f} s",
            file=sys.stderr,
            flush=True,
        )


def make_last_name(rng):
    if rng.random() < 0.7:
        return rng.choice(LAST_NAMES).replace("_", " ")
    name = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3)))
    prefix = rng.choice(("", "", "", "Van ", "De ", "Le "))
    return prefix + name.capitalize()


def riziv_number(user_id):
    digits = f"1{user_id:07d}{(user_id * 37) % 1000:03d}"
    return f"{digits[0]}-{digits[1:6]}-{digits[6:8]}-{digits[8:]}", digits


def user_rows(n, seed):
    from recipients.folding import fold

    rng = random.Random(seed)
    for user_id in range(1, n + 1):
        first, last = rng.choice(FIRST_NAMES), make_last_name(rng)
        city, postcode = rng.choice(CITIES)
        mobile = f"+32{rng.choice('4789')}{rng.choice('5789')}{user_id:07d}"
        f, la = fold(first), fold(last)
        email = (
            f"{f.replace(' ', '-')}.{la.replace(' ', '')}.{user_id}@example-hospital.be"
        )
        yield (
            str(user_id),
            "!",
            "f",
            f"u{user_id}",
            first,
            last,
            email,
            "f",
            "f" if rng.random() < 0.03 else "t",
            "2024-01-01 00:00:00+00",
            rng.choice(("Dr.", "Dr.", "Prof.", "")),
            rng.choice(SPECIALITIES),
            city,
            postcode,
            "t" if rng.random() < 0.3 else "f",
            mobile,
            "t" if rng.random() < 0.3 else "f",
            rng.choice(LANGUAGES),
            f"{f} {la}",
            f"{la} {f}",
            mobile,
        )


USER_COLUMNS = (
    "id, password, is_superuser, username, first_name, last_name, email, is_staff, "
    "is_active, date_joined, title, speciality, city, postcode, email_public, mobile, "
    "mobile_public, language, search_name, search_name_rev, search_mobile"
)


def number_rows(n, seed):
    rng = random.Random(seed + 1)
    for user_id in range(1, n + 1):
        number, digits = riziv_number(user_id)
        yield str(user_id), "RIZIV", number, digits
        if rng.random() < 0.1:
            big = f"{user_id * 13:011d}"
            yield str(user_id), "BIG", big, big


def membership_rows(n, seed):
    rng = random.Random(seed + 2)
    for user_id in range(1, n + 1):
        if rng.random() < 0.3:
            yield str(user_id), str(rng.randint(1, N_DEPARTMENTS)), "f"


def load(n, seed):
    from django.db import connection

    from recipients.folding import fold

    started = time.monotonic()
    print(f"loading {n:,} users", file=sys.stderr, flush=True)
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE recipients_user, recipients_department, recipients_usergroup "
            "RESTART IDENTITY CASCADE"
        )
        # Drop the secondary indexes of the loaded tables; rebuilding after COPY
        # is much faster than maintaining them row by row. Their definitions are
        # kept in a table first, so a load interrupted before the rebuild leaves
        # them to the next load (which finds none left to drop).
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS bench_directory_dropped_indexes "
            "(indexname text PRIMARY KEY, indexdef text NOT NULL)"
        )
        cursor.execute(
            "INSERT INTO bench_directory_dropped_indexes "
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN "
            "('recipients_user', 'recipients_physiciannumber', 'recipients_membership')"
            " AND indexname NOT IN (SELECT conname FROM pg_constraint)"
            " ON CONFLICT (indexname) DO NOTHING"
        )
        cursor.execute(
            "SELECT indexname, indexdef FROM bench_directory_dropped_indexes "
            "ORDER BY indexname"
        )
        indexes = cursor.fetchall()
        for name, _definition in indexes:
            cursor.execute(f'DROP INDEX IF EXISTS "{name}"')
        departments = [
            (
                f"Radiology {fold(city).title()} {i}",
                f"rad-{i}",
                city,
                postcode,
                fold(f"Radiology {city} {i}"),
            )
            for i, (city, postcode) in (
                (i, CITIES[i % len(CITIES)]) for i in range(1, N_DEPARTMENTS + 1)
            )
        ]
        cursor.executemany(
            "INSERT INTO recipients_department (name, code, city, postcode, "
            "search_name, time_zone, allow_unlimited, max_recipients, is_public, "
            "language) VALUES (%s, %s, %s, %s, %s, 'Europe/Brussels', true, 3, true, "
            "'nl')",
            departments,
        )
        rng = random.Random(seed + 3)
        groups = []
        for i in range(1, N_GROUPS + 1):
            name = f"Praktijk {make_last_name(rng)} {i}"
            groups.append((name, rng.choice(CITIES)[0], rng.random() < 0.7, fold(name)))
        cursor.executemany(
            "INSERT INTO recipients_usergroup (name, description, city, is_public, "
            "search_name) VALUES (%s, '', %s, %s, %s)",
            groups,
        )
        raw = cursor.connection
        with raw.cursor() as copy:
            copy.copy_expert(
                f"COPY recipients_user ({USER_COLUMNS}) FROM STDIN",
                RowStream(user_rows(n, seed), n, "users"),
            )
            copy.copy_expert(
                "COPY recipients_physiciannumber (user_id, scheme, number, "
                "number_digits) FROM STDIN",
                RowStream(number_rows(n, seed), int(n * 1.1), "physician numbers"),
            )
            copy.copy_expert(
                "COPY recipients_membership (user_id, department_id, is_admin) "
                "FROM STDIN",
                RowStream(membership_rows(n, seed), int(n * 0.3), "memberships"),
            )
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('recipients_user', 'id'), %s)", [n]
        )
        print(
            f"  copied in {time.monotonic() - started:.1f} s; building indexes",
            file=sys.stderr,
            flush=True,
        )
        for name, definition in indexes:
            cursor.execute(definition)
            print(f"  index {name}", file=sys.stderr, flush=True)
        cursor.execute("DROP TABLE bench_directory_dropped_indexes")
        cursor.execute("ANALYZE recipients_user")
        cursor.execute("ANALYZE recipients_physiciannumber")
        cursor.execute("ANALYZE recipients_membership")
        cursor.execute("DROP TABLE IF EXISTS bench_directory_state")
        cursor.execute("CREATE TABLE bench_directory_state (users int, seed int)")
        cursor.execute("INSERT INTO bench_directory_state VALUES (%s, %s)", [n, seed])
    print(f"loaded in {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)


def loaded_state():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('bench_directory_state')")
        if cursor.fetchone()[0] is None:
            return None
        cursor.execute("SELECT users, seed FROM bench_directory_state")
        return cursor.fetchone()


def national(mobile):
    digits = "0" + mobile[3:]
    return f"{digits[:4]} {digits[4:6]} {digits[6:8]} {digits[8:]}"


def build_queries(seed):
    """Return (kind, text) pairs drawn from the loaded data: ≥ 50 queries."""
    from recipients.models import User

    rng = random.Random(seed + 4)
    users = list(User.objects.filter(is_active=True).order_by("?")[:400])
    rng.shuffle(users)
    public_mobile = [u for u in users if u.mobile_public][:6]
    public_email = [u for u in users if u.email_public][:6]
    queries = []
    for user in users[:8]:
        queries.append(("full name", f"{user.first_name} {user.last_name}"))
    for user in users[8:12]:
        queries.append(("name reversed", f"{user.last_name} {user.first_name}"))
    for user in users[12:18]:
        queries.append(("last name", user.last_name))
    for text in ("noel", "muller", "zoe", "helene", "jerome", "soren"):
        queries.append(("accents folded", text))
    for text in ("ja", "pe", "van d", "de", "lef", "jans", "mart", "wou"):
        queries.append(("prefix", text))
    for text in ("uller", "broucke", "straete", "ssens", "hendr"):
        queries.append(("substring", text))
    for i, user in enumerate(users[18:26]):
        number, digits = riziv_number(user.pk)
        forms = (
            f"RIZIV {number}",
            number,
            digits,
            number.replace("-", "."),
            f"INAMI {digits}",
            number.replace("-", " "),
            digits[:7],
            f"riziv:{digits}",
        )
        queries.append(("physician number", forms[i]))
    for i, user in enumerate(public_mobile):
        text = national(user.mobile) if i % 2 == 0 else user.mobile
        queries.append(("public mobile", text))
    for user in public_email:
        queries.append(
            ("public e-mail", user.email.upper() if rng.random() < 0.5 else user.email)
        )
    for text in (
        "zzqx",
        "xylophon",
        "qw",
        "0499 00 00 00",
        "nobody@nowhere.test",
        "RIZIV 9-99999-99-999",
        "Quetzalcoatl Zyx",
    ):
        queries.append(("miss", text))
    return queries


BASELINE_SQL = """
SELECT u.id FROM recipients_user u
WHERE u.is_active AND (
    u.first_name ILIKE %(term)s OR u.last_name ILIKE %(term)s
    OR (u.first_name || ' ' || u.last_name) ILIKE %(term)s
    OR (u.email_public AND u.email ILIKE %(term)s)
    OR (u.mobile_public AND u.mobile ILIKE %(term)s)
    OR EXISTS (SELECT 1 FROM recipients_physiciannumber p
               WHERE p.user_id = u.id AND p.number ILIKE %(term)s)
)
LIMIT 20
"""


def baseline(text):
    from django.db import connection

    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    with connection.cursor() as cursor:
        cursor.execute(BASELINE_SQL, {"term": f"%{escaped}%"})
        return cursor.fetchall()


def service(text):
    from recipients.selectors import directory_quick_search

    return directory_quick_search(query=text)


def measure(function, queries, repeat, *, warm_up=True):
    timings, counts = [], []
    for _kind, text in queries if warm_up else ():  # warm-up: plans, caches
        function(text)
    for _ in range(repeat):
        for _kind, text in queries:
            started = time.perf_counter()
            result = function(text)
            timings.append((time.perf_counter() - started) * 1000)
            counts.append(len(result))
    return timings, counts


def percentile(values, fraction):
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


def summary(label, timings):
    return (
        f"{label:<22} p50 {statistics.median(timings):8.2f} ms   "
        f"p95 {percentile(timings, 0.95):8.2f} ms   max {max(timings):8.2f} ms"
    )


def explain(text):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from recipients.selectors import directory_quick_search

    with CaptureQueriesContext(connection) as captured:
        directory_quick_search(query=text)
    print(f"\n== EXPLAIN ANALYZE of the service's queries for {text!r}")
    with connection.cursor() as cursor:
        for query in captured.captured_queries:
            print(f"-- {query['sql']}")
            cursor.execute("EXPLAIN (ANALYZE, COSTS OFF, TIMING ON) " + query["sql"])
            for (line,) in cursor.fetchall():
                print(f"   {line}")


def main():
    args = parse_args()
    base_url, url = bench_url(args.database)
    ensure_database(base_url, args.database)
    setup_django(url)
    if args.reload or loaded_state() != (args.users, args.seed):
        load(args.users, args.seed)
    else:
        print(
            f"reusing the {args.users:,} users loaded in {args.database}",
            file=sys.stderr,
        )
    queries = build_queries(args.seed)
    service_ms, service_counts = measure(service, queries, args.repeat)
    # One warm-up scan loads the table into the buffer cache for the baseline.
    baseline(queries[0][1])
    baseline_ms, baseline_counts = measure(
        baseline, queries, args.baseline_repeat, warm_up=False
    )

    print(
        f"directory quick search benchmark: {args.users:,} users, "
        f"database {args.database}"
    )
    kinds = {}
    for kind, _text in queries:
        kinds[kind] = kinds.get(kind, 0) + 1
    print(
        f"{len(queries)} queries; service x {args.repeat} runs, "
        f"baseline x {args.baseline_repeat}: "
        + ", ".join(f"{k} {v}" for k, v in kinds.items())
    )
    print(summary("service", service_ms))
    print(summary("baseline ILIKE '%term%'", baseline_ms))
    ratio = percentile(service_ms, 0.95) / percentile(baseline_ms, 0.95)
    print(f"p95 service / p95 baseline = {ratio:.4f} (1/{1 / ratio:.0f}); goal <= 1/20")
    print(
        f"results per query: service mean {statistics.mean(service_counts):.1f}, "
        f"baseline mean {statistics.mean(baseline_counts):.1f}"
    )
    slowest = sorted(
        zip(service_ms, [q for _ in range(args.repeat) for q in queries], strict=True),
        key=lambda pair: pair[0],
    )[-5:]
    print(
        "slowest service queries: "
        + "; ".join(f"{t:.1f} ms {q[1]!r}" for t, q in reversed(slowest))
    )
    if args.explain:
        explain("muller")
        explain("RIZIV " + riziv_number(4242 % args.users + 1)[0])


if __name__ == "__main__":
    main()
