import re

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _

from .folding import fold, fold_person_name, normalize_mobile

SERVICE_DESK_GROUP = "service desk"


class Language(models.TextChoices):
    EN = "en", "English"
    NL = "nl", "Nederlands"
    FR = "fr", "Français"
    DE = "de", "Deutsch"


class FoldedNameModel(models.Model):
    """A model with a name the directory search finds through search_name."""

    # fold(name): what the directory search compares (see recipients.folding).
    search_name = models.CharField(max_length=200, editable=False, default="")

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        """Fold the name into search_name, also when update_fields names only name."""
        self.refresh_search_fields()
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "name" in update_fields:
            kwargs["update_fields"] = {*update_fields, "search_name"}
        super().save(*args, **kwargs)

    def refresh_search_fields(self):
        """Recompute the folded name the directory search compares."""
        self.search_name = fold(self.name)


class Department(FoldedNameModel):
    """A radiology department or any organisation unit that sends or receives."""

    name = models.CharField(_("name"), max_length=200)
    code = models.SlugField(_("code"), max_length=40, unique=True)
    city = models.CharField(_("city"), max_length=100, blank=True)
    postcode = models.CharField(_("postcode"), max_length=20, blank=True)
    time_zone = models.CharField(
        _("time zone"), max_length=64, default="Europe/Brussels"
    )
    default_validity_days = models.PositiveIntegerField(
        _("default validity (days)"),
        null=True,
        blank=True,
        help_text=_("Empty: one calendar month."),
    )
    max_validity_days = models.PositiveIntegerField(
        _("maximum validity (days)"),
        null=True,
        blank=True,
        help_text=_("Empty: no maximum."),
    )
    allow_unlimited = models.BooleanField(_("allow unlimited access"), default=True)
    max_recipients = models.PositiveSmallIntegerField(
        _("maximum recipients"), default=3
    )
    language = models.CharField(
        _("language"),
        max_length=2,
        choices=Language.choices,
        default=Language.EN,
        blank=True,
        help_text=_(
            "Counts for the mail language when the department is a recipient; "
            "empty: it does not count."
        ),
    )
    is_public = models.BooleanField(
        _("findable in search"),
        default=True,
        help_text=_("Shown to senders in search."),
    )

    class Meta:
        ordering = ["name"]
        verbose_name = _("department")
        verbose_name_plural = _("departments")

    def __str__(self):
        return self.name


def display_name_of(title, first_name, last_name, username):
    """Return how a person is named on a page (User.display_name, from values)."""
    name = " ".join(p for p in (title, first_name, last_name) if p)
    return name or username


class User(AbstractUser):
    """A person who uses PACSshare: sender, recipient or admin."""

    title = models.CharField(_("title"), max_length=40, blank=True)
    speciality = models.CharField(_("speciality"), max_length=100, blank=True)
    city = models.CharField(_("city"), max_length=100, blank=True)
    postcode = models.CharField(_("postcode"), max_length=20, blank=True)
    email_public = models.BooleanField(_("e-mail is public"), default=False)
    mobile = models.CharField(
        _("mobile"), max_length=20, blank=True, help_text=_("E.164, e.g. +32475123456")
    )
    mobile_public = models.BooleanField(_("mobile is public"), default=False)
    language = models.CharField(
        _("language"), max_length=2, choices=Language.choices, default=Language.EN
    )
    departments = models.ManyToManyField(
        Department,
        through="Membership",
        related_name="members",
        blank=True,
        verbose_name=_("departments"),
    )
    # Folded copies the directory search compares and indexes; kept up to date by
    # save(). Paths that bypass save() (bulk_create, update()) must call
    # refresh_search_fields() or `manage.py directory_reindex`.
    search_name = models.CharField(max_length=301, editable=False, default="")
    search_name_rev = models.CharField(max_length=301, editable=False, default="")
    search_mobile = models.CharField(max_length=20, editable=False, default="")

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        indexes = [
            # Name prefixes ("first last" and "last first") of active users. On
            # PostgreSQL these columns use the "C" collation (migration 0002), so
            # one btree serves LIKE 'prefix%' and ORDER BY; a trigram GIN index
            # on search_name serves the substring matches.
            # (name, id): the order the search asks for, so no sort is needed.
            models.Index(
                fields=["search_name", "id"],
                name="user_search_name_id_idx",
                condition=Q(is_active=True),
            ),
            models.Index(
                fields=["search_name_rev", "id"],
                name="user_search_name_rev_id_idx",
                condition=Q(is_active=True),
            ),
            # Exact matches, only over what the owner made public.
            models.Index(
                fields=["search_mobile"],
                name="user_public_mobile_idx",
                condition=Q(mobile_public=True),
            ),
            models.Index(
                Lower("email"),
                name="user_public_email_idx",
                condition=Q(email_public=True),
            ),
        ]

    def __str__(self):
        return self.display_name

    def save(self, *args, **kwargs):
        self.refresh_search_fields()
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and {"first_name", "last_name", "mobile"} & set(
            update_fields
        ):
            kwargs["update_fields"] = {*update_fields, *SEARCH_FIELDS}
        super().save(*args, **kwargs)

    def refresh_search_fields(self):
        """Recompute the folded columns the directory search compares."""
        first = fold_person_name(self.first_name)
        last = fold_person_name(self.last_name)
        self.search_name = " ".join(p for p in (first, last) if p)
        self.search_name_rev = " ".join(p for p in (last, first) if p)
        self.search_mobile = normalize_mobile(self.mobile)

    @property
    def display_name(self):
        return display_name_of(
            self.title, self.first_name, self.last_name, self.username
        )

    @property
    def is_service_desk(self):
        if self.is_superuser:
            return True
        if not hasattr(self, "_is_service_desk"):
            self._is_service_desk = self.groups.filter(name=SERVICE_DESK_GROUP).exists()
        return self._is_service_desk

    @property
    def department_ids(self):
        """Return the ids of the user's departments (one query, then remembered)."""
        if not hasattr(self, "_department_ids"):
            self._department_ids = list(
                self.memberships.values_list("department_id", flat=True)
            )
        return self._department_ids

    @property
    def is_department_member(self):
        """Return whether the user belongs to a department (and so may send)."""
        return bool(self.department_ids)

    @property
    def mobile_last_digits(self):
        return self.mobile[-2:] if self.mobile else ""


SEARCH_FIELDS = ("search_name", "search_name_rev", "search_mobile")


class Membership(models.Model):
    """A user's membership of a department; admins watch its outgoing shares."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    department = models.ForeignKey(
        Department, on_delete=models.CASCADE, related_name="memberships"
    )
    is_admin = models.BooleanField(_("department admin"), default=False)

    class Meta:
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        constraints = [
            models.UniqueConstraint(
                fields=["user", "department"], name="membership_unique_user_department"
            )
        ]

    def __str__(self):
        return f"{self.user} @ {self.department}"


class PhysicianNumber(models.Model):
    """A registration number of a physician in one national scheme."""

    class Scheme(models.TextChoices):
        RIZIV = "RIZIV", "RIZIV"
        BIG = "BIG", "BIG"
        INSEE = "INSEE", "INSEE"
        HIN = "HIN", "HIN"
        UCGN = "UCGN", "UCGN"
        PNB = "PNB", "PNB"
        OTHER = "OTHER", _("Other")

    user = models.ForeignKey(
        User, on_delete=models.CASCADE, related_name="physician_numbers"
    )
    scheme = models.CharField(_("scheme"), max_length=10, choices=Scheme.choices)
    number = models.CharField(_("number"), max_length=40)
    # The number without spaces, dots or dashes: what search compares against.
    number_digits = models.CharField(max_length=40, editable=False, db_index=True)

    class Meta:
        verbose_name = _("physician number")
        verbose_name_plural = _("physician numbers")
        constraints = [
            models.UniqueConstraint(
                fields=["scheme", "number_digits"], name="physician_number_unique"
            )
        ]

    def __str__(self):
        return f"{self.scheme} {self.display_number}"

    def save(self, *args, **kwargs):
        self.number_digits = scheme_number_digits(self.scheme, self.number)
        super().save(*args, **kwargs)

    @property
    def display_number(self):
        """The number as typed, without the scheme's name in front of it."""
        return strip_scheme_prefix(self.scheme, self.number)


# Names a number may carry in front of it ("UCGN 2019-0457", "PNB-448812");
# INAMI is RIZIV in French.
SCHEME_NAMES = {
    s: s for s in PhysicianNumber.Scheme.values if s != PhysicianNumber.Scheme.OTHER
} | {"INAMI": "RIZIV"}
_LEADING_SCHEME = re.compile(r"^\s*([A-Za-z]+)[\s:.#/-]*(?=[0-9])")


def strip_scheme_prefix(scheme, value):
    """Return value without a leading name of its own scheme ("PNB-4488" -> "4488")."""
    value = (value or "").strip()
    match = _LEADING_SCHEME.match(value)
    if match and SCHEME_NAMES.get(match.group(1).upper()) == scheme:
        return value[match.end() :]
    return value


def normalize_number(value):
    """Return a physician number without separators, upper-cased."""
    return "".join(ch for ch in value.upper() if ch.isalnum())


def scheme_number_digits(scheme, value):
    """Return what search compares for a number: no scheme prefix, no separators."""
    return normalize_number(strip_scheme_prefix(scheme, value))


class UserGroup(FoldedNameModel):
    """A named group of users, such as a practice or a team."""

    name = models.CharField(_("name"), max_length=200)
    description = models.CharField(_("description"), max_length=300, blank=True)
    city = models.CharField(_("city"), max_length=100, blank=True)
    is_public = models.BooleanField(_("findable in search"), default=False)
    members = models.ManyToManyField(
        User, related_name="user_groups", blank=True, verbose_name=_("members")
    )

    class Meta:
        ordering = ["name"]
        verbose_name = _("group")
        verbose_name_plural = _("groups")

    def __str__(self):
        return self.name


class Favorite(models.Model):
    """One of a sender's favorite recipients: a user, a group or a department."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="favorites"
    )
    user = models.ForeignKey(
        User, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    group = models.ForeignKey(
        UserGroup, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    department = models.ForeignKey(
        Department, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        verbose_name = _("favorite")
        verbose_name_plural = _("favorites")
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(user__isnull=False, group__isnull=True, department__isnull=True)
                    | Q(user__isnull=True, group__isnull=False, department__isnull=True)
                    | Q(user__isnull=True, group__isnull=True, department__isnull=False)
                ),
                name="favorite_exactly_one_target",
            ),
            models.UniqueConstraint(
                fields=["owner", "user"],
                name="favorite_unique_user",
                condition=Q(user__isnull=False),
            ),
            models.UniqueConstraint(
                fields=["owner", "group"],
                name="favorite_unique_group",
                condition=Q(group__isnull=False),
            ),
            models.UniqueConstraint(
                fields=["owner", "department"],
                name="favorite_unique_department",
                condition=Q(department__isnull=False),
            ),
        ]

    def __str__(self):
        return f"{self.owner} ★ {self.target}"

    @property
    def target(self):
        return self.user or self.group or self.department
