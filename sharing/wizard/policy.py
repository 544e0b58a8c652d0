"""Sharing rules that are plain computations: validity (rule 8), language (rule 7)."""

import calendar
import datetime
import zoneinfo
from collections import Counter
from collections.abc import Sequence

from django.utils import timezone
from django.utils.translation import gettext


def _now():
    """Return the current time; tests replace this hook to move the clock."""
    return timezone.now()


def department_today(department) -> datetime.date:
    """Return today's date in the department's time zone."""
    return timezone.localtime(_now(), zoneinfo.ZoneInfo(department.time_zone)).date()


def add_calendar_month(day: datetime.date) -> datetime.date:
    """Return the same day a month later, clamped to the month's end (31/01 → 28/02)."""
    year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    last_day = calendar.monthrange(year, month)[1]
    return day.replace(year=year, month=month, day=min(day.day, last_day))


def max_valid_until(department) -> datetime.date | None:
    """Return the latest date the department allows, or None when it sets no maximum."""
    if department.max_validity_days is None:
        return None
    return department_today(department) + datetime.timedelta(
        days=department.max_validity_days
    )


def default_valid_until(department) -> datetime.date:
    """Return today plus the department's default validity (else one calendar month)."""
    today = department_today(department)
    if department.default_validity_days is None:
        default = add_calendar_month(today)
    else:
        default = today + datetime.timedelta(days=department.default_validity_days)
    latest = max_valid_until(department)
    return min(default, latest) if latest is not None else default


def mail_language(languages: Sequence[str]) -> str:
    """Return the language of a strict majority of the recipients, else the first's."""
    return mail_language_choice(languages)[0]


def mail_language_choice(languages: Sequence[str]) -> tuple[str, str]:
    """Return the mail language of the recipients' languages and why (rule 7).

    Every recipient counts once, in order: a user with their language, a group
    with its members' majority, a department with its own; one without a
    language (a group with no active member) does not count. A strict majority
    wins, else the first recipient's language. ("", "") when none counts.
    """
    languages = [language for language in languages if language]
    if not languages:
        return "", ""
    if len(languages) == 1:
        return languages[0], gettext("Language of the recipient.")
    language, count = Counter(languages).most_common(1)[0]
    if count * 2 > len(languages):
        return language, gettext(
            "Language of most recipients, %(count)d of %(total)d."
        ) % {"count": count, "total": len(languages)}
    return languages[0], gettext("Language of the first recipient.")
