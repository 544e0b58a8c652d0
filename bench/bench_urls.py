"""The product's URLs plus the baselines the page benchmark compares against.

Loaded only through bench/settings.py (ROOT_URLCONF); never part of production.
"""

import datetime

from django.http import HttpResponse
from django.shortcuts import render
from django.urls import path

from pacsshare.urls import urlpatterns as product_urlpatterns
from studies.models import Study

# What an overview row shows, in memory: the template baseline runs no query.
ROWS = [
    {
        "patient": f"Peeters{n}, Marie",
        "patient_id": f"PAT{n:08d}",
        "birth_date": datetime.date(1950 + n % 50, 1 + n % 12, 1 + n % 28),
        "study_date": datetime.date(2024, 1 + n % 12, 1 + n % 28),
        "description": "CT thorax",
        "modalities": ["CT", "PT"] if n % 3 == 0 else ["CT"],
        "series_count": 2,
        "instance_count": 6,
        "department": "Radiology Bench 1",
        "has_report": n % 2 == 0,
    }
    for n in range(50)
]


# What a Status Forwarding row shows, in memory.
STATUS_ROWS = [
    {
        "pk": n,
        "recipient": f"Dr. Anne Peeters{n}",
        "require_otp": n % 3 == 0,
        "status": "opened" if n % 2 else "not_opened",
        "opened_at": datetime.datetime(2024, 1 + n % 12, 1 + n % 28, 9, 30),
        "can_revoke": True,
        "studies": [
            {
                "patient": f"Marie Peeters{n}",
                "description": "CT thorax",
                "study_date": datetime.date(2024, 1 + n % 12, 1 + n % 28),
            }
        ],
        "sender": f"Dr. Jan Janssens{n}",
        "department": "Radiology Bench 1",
        "created_at": datetime.datetime(2024, 1 + n % 12, 1 + n % 28, 9, 0),
        "valid_until": datetime.date(2025, 1 + n % 12, 1 + n % 28),
        "mail_status": "sent",
    }
    for n in range(50)
]


def baseline_template(request):
    """Render a 50-row table in the site's layout, from memory (no query)."""
    return render(request, "bench/baseline_rows.html", {"rows": ROWS})


def baseline_status(request):
    """Render a 50-row Status Forwarding table in the site's layout (no query)."""
    return render(request, "bench/baseline_status.html", {"rows": STATUS_ROWS})


def baseline_pk(request, pk):
    """Run one primary-key query and answer with a line of text."""
    study = Study.objects.get(pk=pk)
    return HttpResponse(study.description, content_type="text/plain")


urlpatterns = [
    path("bench/baseline/template/", baseline_template),
    path("bench/baseline/pk/<int:pk>/", baseline_pk),
    path("bench/baseline/status/", baseline_status),
    *product_urlpatterns,
]
