"""What an anonymized share leaves out: the Python rule and its query agree."""

import pytest

from studies.models import Instance, Study
from studies.selectors import studies_with_left_out_count
from tests.factories import SeriesFactory, StudyFactory

pytestmark = pytest.mark.django_db

CASES = [
    ("1.2.840.10008.5.1.4.1.1.2", "CT", "", True),  # CT image
    ("1.2.840.10008.5.1.4.1.1.2", "CT", "YES", False),  # burned-in text
    ("1.2.840.10008.5.1.4.1.1.104.1", "DOC", "NO", False),  # a PDF report
    ("1.2.840.10008.5.1.4.1.1.6.1", "US", "", False),  # ultrasound, no flag
    ("1.2.840.10008.5.1.4.1.1.6.1", "US", "NO", True),  # ultrasound, clean
    ("1.2.840.10008.5.1.4.1.1.7", "OT", "", False),  # secondary capture
    ("1.2.840.10008.5.1.4.1.1.77.1.4", "XC", "", False),  # photograph
]


def test_the_query_counts_what_the_rule_leaves_out():
    study = StudyFactory()
    for number, (sop_class, modality, flag, _) in enumerate(CASES, start=1):
        series = SeriesFactory(study=study, modality=modality, series_number=number)
        Instance.objects.create(
            series=series,
            sop_instance_uid=f"1.2.3.{number}",
            sop_class_uid=sop_class,
            burned_in_annotation=flag,
            has_pixels=True,
        )

    shown = [i.is_cleanable for i in Instance.objects.order_by("sop_instance_uid")]
    counted = studies_with_left_out_count(Study.objects.filter(pk=study.pk)).get()

    assert shown == [case[3] for case in CASES]
    assert counted.anonymize_left_out == shown.count(False) == 5
