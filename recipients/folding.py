"""Fold names, numbers and mobiles into the forms the directory search compares.

The folding happens in Python and is stored in columns, so that SQLite and
PostgreSQL match the same way and PostgreSQL can index the folded values.
"""

import re
import unicodedata

# Letters that NFKD does not decompose into a base letter and a mark.
_EXTRA = str.maketrans(
    {"ø": "o", "æ": "ae", "œ": "oe", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "ı": "i"}
)
_APOSTROPHES = re.compile(r"['’‘`´]")
_NOT_WORD = re.compile(r"[^0-9a-z]+")

# National trunk prefix "0" -> country codes tried for a mobile typed in national
# form; the countries of the product's languages (BE, NL, LU, FR, DE).
NATIONAL_COUNTRY_CODES = ("32", "31", "352", "33", "49")


def fold(value):
    """Return text lower-cased, without accents or punctuation, words single-spaced.

    "Noël" -> "noel", "Müller" -> "muller", "Jean-Pierre D'Hondt" ->
    "jean pierre dhondt".
    """
    if not value:
        return ""
    text = unicodedata.normalize("NFKD", value.casefold())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = _APOSTROPHES.sub("", text.translate(_EXTRA))
    return " ".join(_NOT_WORD.sub(" ", text).split())


# Particles of family names ("De Smet", "van Dijk", "van der Berg", "d'Hondt"):
# a person's name is folded with each particle joined to the word after it, so
# "desmet", "de smet" and "De Smet" all fold to "desmet".
NAME_PARTICLES = frozenset(
    (
        "d", "da", "das", "de", "del", "della", "den", "der", "des", "di", "do",
        "dos", "du", "la", "le", "les", "lo", "st", "te", "ten", "ter", "van",
        "vande", "vanden", "vander", "von", "zu",
    )
)  # fmt: skip


def fold_person_name(value):
    """Return fold(value) with name particles joined to the following word.

    "De Smet" -> "desmet", "van der Berg" -> "vanderberg", "Anne de Vos" ->
    "anne devos". A trailing particle stays as it is ("van" -> "van"), so a
    name typed letter by letter keeps matching as a prefix.
    """
    words = fold(value).split()
    joined = []
    pending = ""
    for word in words:
        if word in NAME_PARTICLES:
            pending += word
            continue
        joined.append(pending + word)
        pending = ""
    if pending:
        joined.append(pending)
    return " ".join(joined)


def fold_accents(value):
    """Return text without accents, keeping case and punctuation (SQL unaccent)."""
    if value is None:
        return None
    text = unicodedata.normalize("NFKD", value)
    return "".join(ch for ch in text if not unicodedata.combining(ch))


def normalize_mobile(value):
    """Return a mobile number as "+" and digits, or "" when it has no digits."""
    if not value:
        return ""
    digits = "".join(ch for ch in value if ch.isdigit())
    if not digits:
        return ""
    stripped = value.strip()
    if stripped.startswith("+"):
        return "+" + digits
    if digits.startswith("00"):
        return "+" + digits[2:]
    return digits


def mobile_candidates(query):
    """Return the E.164 numbers a typed mobile may mean, or () if it is not one.

    "+32 475 12 34 56" and "0032475123456" mean +32475123456; "0475 12 34 56"
    (national form) means that number in any of NATIONAL_COUNTRY_CODES.
    """
    stripped = query.strip()
    if not stripped or not re.fullmatch(r"\+?[0-9 ./()\-]+", stripped):
        return ()
    digits = "".join(ch for ch in stripped if ch.isdigit())
    if len(digits) < 8:
        return ()
    if stripped.startswith("+"):
        return ("+" + digits,)
    if digits.startswith("00"):
        return ("+" + digits[2:],)
    if digits.startswith("0"):
        return tuple("+" + code + digits[1:] for code in NATIONAL_COUNTRY_CODES)
    return ()
