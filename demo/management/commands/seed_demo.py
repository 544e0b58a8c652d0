"""Load the demo: departments, physicians, groups, labels and real DICOM studies.

Running it again changes nothing: every row is looked up by its natural key and
only written when it differs, and the studies are imported by UIDs that are
derived from fixed seeds.
"""

import tempfile
from pathlib import Path

import pydicom
from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from pydicom import dcmread
from pydicom.uid import generate_uid

from demo.data import (
    DEMO_PASSWORD,
    DEPARTMENTS,
    DICOM_CALLERS,
    FAVORITES,
    GROUPS,
    LABELS,
    PATIENTS,
    STUDIES,
    USERS,
)
from recipients.models import (
    SERVICE_DESK_GROUP,
    Department,
    Favorite,
    Membership,
    PhysicianNumber,
    User,
    UserGroup,
    scheme_number_digits,
)
from sharing.models import Label
from studies.dicom_import import import_dicom_paths
from studies.models import DicomCaller, Instance, Report, ReportRevision, Study

DEPARTMENT_ADMIN_GROUP = "department admins"
PYDICOM_SAMPLES = Path(pydicom.data.DATA_ROOT, "test_files")
UID_SEED = "pacsshare-demo"
PROFILE_FIELDS = (
    "first_name",
    "last_name",
    "title",
    "speciality",
    "city",
    "postcode",
    "language",
    "email",
    "email_public",
    "mobile",
    "mobile_public",
)
STAFF_ROLES = {"department admin", "service desk"}

# What Django admin needs: the service desk manages everything but the audit
# log (append-only); department admins watch and act on their shares.
DEPARTMENT_ADMIN_PERMISSIONS = [
    "recipients.view_user",
    "recipients.view_department",
    "recipients.view_membership",
    "recipients.view_usergroup",
    "recipients.view_physiciannumber",
    "studies.view_patient",
    "studies.view_study",
    "studies.view_series",
    "studies.view_instance",
    "studies.view_report",
    "sharing.view_share",
    "sharing.change_share",
    "sharing.view_bucket",
    "sharing.change_bucket",
    "sharing.view_bucketopening",
    "sharing.view_bucketunlock",
    "sharing.view_notification",
    "sharing.view_auditevent",
    "sharing.add_label",
    "sharing.change_label",
    "sharing.delete_label",
    "sharing.view_label",
]


def upsert(model, lookup, values):
    """Get or create a row by its natural key; write only the fields that differ."""
    obj, created = model.objects.get_or_create(**lookup, defaults=values)
    if not created:
        changed = [
            name for name, value in values.items() if getattr(obj, name) != value
        ]
        if changed:
            for name in changed:
                setattr(obj, name, values[name])
            obj.save(update_fields=changed)
    return obj


class Command(BaseCommand):
    help = (
        "Load demo departments, users, groups, labels and DICOM studies. "
        f"Every demo login has the password {DEMO_PASSWORD!r}. Safe to run twice."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--allow-without-debug",
            action="store_true",
            help="Seed even with DEBUG off (the demo logins have a public password).",
        )

    def handle(self, *args, allow_without_debug, **options):
        if not settings.DEBUG and not allow_without_debug:
            raise CommandError(
                "seed_demo creates logins whose password is published; it refuses to "
                "run with DEBUG off. Pass --allow-without-debug for a demo server."
            )
        self._password_checks = {}
        self._password_hash = None
        with transaction.atomic():
            departments = self._departments()
            self._labels(departments)
            self._dicom_callers(departments)
            users = self._users(departments)
            groups = self._groups(users)
            self._favorites(users, groups, departments)
            self._permissions(users)
        self._studies(departments, users)
        self._print_logins(users)

    def _departments(self):
        departments = {}
        for spec in DEPARTMENTS:
            values = {k: v for k, v in spec.items() if k != "code"}
            departments[spec["code"]] = upsert(
                Department, {"code": spec["code"]}, values
            )
        return departments

    def _labels(self, departments):
        for code, labels in LABELS.items():
            for name, color in labels:
                upsert(
                    Label,
                    {"department": departments[code], "name": name},
                    {"color": color},
                )

    def _dicom_callers(self, departments):
        for code, ae_titles in DICOM_CALLERS.items():
            for ae_title in ae_titles:
                upsert(
                    DicomCaller,
                    {"ae_title": ae_title, "host": ""},
                    {"department": departments[code]},
                )

    def _users(self, departments):
        users = {}
        admin = upsert(
            User,
            {"username": "admin"},
            {
                "first_name": "PACSshare",
                "last_name": "Administrator",
                "email": "admin@pacsshare.example",
                "language": "en",
                "is_staff": True,
                "is_superuser": True,
            },
        )
        self._set_demo_password(admin)
        users["admin"] = (admin, "superuser", [])
        for spec in USERS:
            values = {name: spec[name] for name in PROFILE_FIELDS}
            values["is_staff"] = spec["role"] in STAFF_ROLES
            user = upsert(User, {"username": spec["username"]}, values)
            self._set_demo_password(user)
            for code, is_admin in spec["departments"]:
                upsert(
                    Membership,
                    {"user": user, "department": departments[code]},
                    {"is_admin": is_admin},
                )
            for scheme, number in spec["numbers"]:
                upsert(
                    PhysicianNumber,
                    {
                        "scheme": scheme,
                        "number_digits": scheme_number_digits(scheme, number),
                    },
                    {"user": user, "number": number},
                )
            codes = [code for code, _ in spec["departments"]]
            users[spec["username"]] = (user, spec["role"], codes)
        return users

    def _set_demo_password(self, user):
        # PBKDF2 is slow on purpose; verify each distinct stored hash once and
        # give every new demo login the same hash of the one published password.
        if user.password and self._is_demo_hash(user.password):
            return
        if self._password_hash is None:
            self._password_hash = make_password(DEMO_PASSWORD)
            self._password_checks[self._password_hash] = True
        user.password = self._password_hash
        user.save(update_fields=["password"])

    def _is_demo_hash(self, encoded):
        if encoded not in self._password_checks:
            self._password_checks[encoded] = check_password(DEMO_PASSWORD, encoded)
        return self._password_checks[encoded]

    def _groups(self, users):
        groups = {}
        for spec in GROUPS:
            group = upsert(
                UserGroup,
                {"name": spec["name"]},
                {
                    "description": spec["description"],
                    "city": spec["city"],
                    "is_public": spec["is_public"],
                },
            )
            members = [users[username][0] for username in spec["members"]]
            missing = set(members) - set(group.members.all())
            if missing:
                group.members.add(*missing)
            groups[spec["name"]] = group
        return groups

    def _favorites(self, users, groups, departments):
        for owner_name, favorites in FAVORITES.items():
            owner = users[owner_name][0]
            for kind, key in favorites:
                target = {
                    "user": lambda k: users[k][0],
                    "group": groups.__getitem__,
                    "department": departments.__getitem__,
                }[kind](key)
                Favorite.objects.get_or_create(owner=owner, **{kind: target})

    def _permissions(self, users):
        service_desk, _ = Group.objects.get_or_create(name=SERVICE_DESK_GROUP)
        everything = Permission.objects.filter(
            content_type__app_label__in=["recipients", "studies", "sharing"]
        ).exclude(
            content_type__app_label="sharing",
            content_type__model="auditevent",
            codename__regex=r"^(add|change|delete)_",
        )
        service_desk.permissions.set(everything)
        department_admins, _ = Group.objects.get_or_create(name=DEPARTMENT_ADMIN_GROUP)
        department_admins.permissions.set(_permissions(DEPARTMENT_ADMIN_PERMISSIONS))
        for user, role, _codes in users.values():
            if role == "service desk":
                user.groups.add(service_desk)
            elif role == "department admin":
                user.groups.add(department_admins)

    def _studies(self, departments, users):
        with tempfile.TemporaryDirectory(prefix="pacsshare-demo-") as tmp:
            folders = {}
            for study in STUDIES:
                written = self._write_study(Path(tmp), study, departments)
                if written:
                    folders.setdefault(study["department"], []).append(written)
            for code, paths in folders.items():
                summary = import_dicom_paths(paths=paths, department=departments[code])
                for outcome in summary.skipped:
                    self.stderr.write(
                        f"  skipped {outcome.path.name}: {outcome.reason}"
                    )
                self.stdout.write(
                    f"Imported {len(summary.imported)} DICOM files into {code}."
                )
        for study in STUDIES:
            if study["report"]:
                self._report(study, users)

    def _write_study(self, tmp, study, departments):
        """Write the study's missing instances as DICOM files; return their folder."""
        key = study["key"]
        folder = tmp / key
        instances = [
            (series_number, instance_number, source, description)
            for series_number, (description, sources) in enumerate(study["series"], 1)
            for instance_number, source in enumerate(sources, 1)
        ]
        uids = {
            (s, i): generate_uid(entropy_srcs=[UID_SEED, key, str(s), str(i)])
            for s, i, _, _ in instances
        }
        present = set(
            Instance.objects.filter(sop_instance_uid__in=uids.values()).values_list(
                "sop_instance_uid", flat=True
            )
        )
        missing = [row for row in instances if uids[row[:2]] not in present]
        if not missing:
            return None
        patient_id, patient_name, birth_date, sex = PATIENTS[study["patient"]]
        department = departments[study["department"]]
        study_date = study["date"].strftime("%Y%m%d")
        for series_number, instance_number, source, description in missing:
            dataset = dcmread(PYDICOM_SAMPLES / source)
            dataset.SpecificCharacterSet = "ISO_IR 192"
            for keyword in (
                "OtherPatientIDs",
                "OtherPatientNames",
                "PatientAge",
                "PatientAddress",
                "PatientComments",
            ):
                if keyword in dataset:
                    delattr(dataset, keyword)
            dataset.PatientName = patient_name
            dataset.PatientID = patient_id
            dataset.PatientBirthDate = birth_date
            dataset.PatientSex = sex
            dataset.StudyInstanceUID = generate_uid(entropy_srcs=[UID_SEED, key])
            dataset.SeriesInstanceUID = generate_uid(
                entropy_srcs=[UID_SEED, key, str(series_number)]
            )
            dataset.SOPInstanceUID = uids[(series_number, instance_number)]
            dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
            if "FrameOfReferenceUID" in dataset:
                dataset.FrameOfReferenceUID = generate_uid(
                    entropy_srcs=[UID_SEED, key, str(series_number), "frame"]
                )
            dataset.StudyDate = study_date
            dataset.StudyTime = study["time"]
            for keyword in ("SeriesDate", "AcquisitionDate", "ContentDate"):
                if keyword in dataset:
                    setattr(dataset, keyword, study_date)
            dataset.StudyID = study["accession"][-16:]
            dataset.AccessionNumber = study["accession"]
            dataset.StudyDescription = study["description"]
            dataset.SeriesDescription = description
            dataset.SeriesNumber = series_number
            dataset.InstanceNumber = instance_number
            dataset.ReferringPhysicianName = study["referring"]
            dataset.InstitutionName = department.name[:64]
            target = folder / f"s{series_number}" / f"{instance_number}.dcm"
            target.parent.mkdir(parents=True, exist_ok=True)
            dataset.save_as(target)
        return folder

    def _report(self, study, users):
        uid = generate_uid(entropy_srcs=[UID_SEED, study["key"]])
        target = Study.objects.filter(study_instance_uid=uid).first()
        if target is None:
            return
        author = users[study["report_author"]][0] if study["report_author"] else None
        report, created = Report.objects.get_or_create(
            study=target, defaults={"text": study["report"], "updated_by": author}
        )
        if created:
            ReportRevision.objects.create(
                report=report, text=study["report"], author=author
            )

    def _print_logins(self, users):
        rows = [("username", "role", "department")]
        for user, role, codes in users.values():
            rows.append((user.username, role, ", ".join(codes) or "-"))
        widths = [max(len(row[n]) for row in rows) for n in range(3)]
        self.stdout.write("")
        self.stdout.write(f"Demo logins (the password of every one: {DEMO_PASSWORD})")
        for number, row in enumerate(rows):
            line = "  ".join(
                cell.ljust(width) for cell, width in zip(row, widths, strict=True)
            )
            self.stdout.write(line.rstrip())
            if number == 0:
                self.stdout.write("  ".join("-" * width for width in widths))


def _permissions(names):
    """Return the Permission rows for "app_label.codename" names."""
    wanted = {tuple(name.split(".", 1)) for name in names}
    return [
        permission
        for permission in Permission.objects.filter(
            content_type__app_label__in={app for app, _ in wanted},
            codename__in={codename for _, codename in wanted},
        ).select_related("content_type")
        if (permission.content_type.app_label, permission.codename) in wanted
    ]
