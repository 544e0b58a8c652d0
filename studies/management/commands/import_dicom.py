from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from recipients.models import Department
from studies.dicom_import import FileOutcome, Outcome, import_dicom_paths


class Command(BaseCommand):
    help = (
        "Import DICOM files and folders (recursively) into a department's studies. "
        "Files already imported (same SOP Instance UID) are left as they are."
    )

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", type=Path, metavar="PATH")
        parser.add_argument(
            "--department",
            required=True,
            metavar="CODE",
            help="Code of the department the studies belong to.",
        )

    def handle(self, *args, paths, department, verbosity, **options):
        try:
            target = Department.objects.get(code=department)
        except Department.DoesNotExist:
            codes = ", ".join(Department.objects.values_list("code", flat=True))
            raise CommandError(
                f'Unknown department "{department}". '
                f"Known department codes: {codes or 'none yet'}."
            ) from None
        show_progress = verbosity >= 1 and (
            len(paths) > 1 or any(path.is_dir() for path in paths)
        )
        summary = import_dicom_paths(
            paths=paths,
            department=target,
            progress=self._progress if show_progress else None,
        )
        imported = len(summary.imported)
        present = len(summary.already_present)
        skipped = summary.skipped
        self.stdout.write(
            f"Imported {imported}, already present {present}, "
            f"skipped {len(skipped)} (department {target.code})."
        )
        for outcome in skipped:
            self.stdout.write(f"  skipped {outcome.path}: {outcome.reason}")
        if imported:
            self.stdout.write(self.style.SUCCESS(f"Imported {imported} file(s)."))

    def _progress(self, done: int, total: int, outcome: FileOutcome) -> None:
        width = len(str(total))
        label = outcome.outcome.value
        if outcome.outcome is Outcome.SKIPPED:
            label = f"skipped: {outcome.reason}"
        self.stderr.write(f"[{done:>{width}}/{total}] {outcome.path} - {label}")
