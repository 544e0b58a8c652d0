"""Query budgets of the pages issue 19 added to the bench: Status Forwarding (a
department admin's view, with and without its filters), "Shared with me" and a
received study, for a user holding 10 and then 1,000 shares. At most 10 queries,
and not one more with a hundred times the rows.

The world, its growth and the counting are those of tests/test_query_budgets.py.
"""

import pytest
from django.urls import reverse

from recipients.models import Membership
from sharing.models import Bucket, Share
from tests.factories import BucketFactory, ShareFactory, UserFactory
from tests.test_query_budgets import BUDGET, LARGE, SMALL, World, queries_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return World()


def admin_of_source(world):
    """Return a department admin of the department the world's shares come from."""
    admin = UserFactory(username="budget-admin", departments=[world.other])
    Membership.objects.filter(user=admin).update(is_admin=True)
    return admin


def received_study_url(world):
    """Return the received page of a study the sender holds through two buckets.

    The first bucket asks for no code; a second one, with write access, holds the
    same study (rule 19: the broadest access counts), so the page must look.
    """
    bucket = Bucket.objects.get(pk=world.otp_bucket.pk)
    Bucket.objects.filter(pk=bucket.pk).update(require_otp=False)
    if not Share.objects.filter(reason="budget rule 19").exists():
        other = ShareFactory(
            source_department=world.other,
            access="write",
            reason="budget rule 19",
            studies=[world.study],
        )
        BucketFactory(share=other, recipient_user=world.sender)
    return reverse(
        "sharing:received_study",
        kwargs={"bucket_id": bucket.pk, "study_id": world.study.pk},
    )


PAGES = {
    "Status Forwarding": (
        "admin",
        lambda world: reverse("sharing:status_forwarding"),
        "status-table",
    ),
    "Status Forwarding, searched and filtered": (
        "admin",
        lambda world: (
            f"{reverse('sharing:status_forwarding')}"
            "?q=janssens&sender=peeters&status=not_opened"
        ),
        "status-table",
    ),
    "Shared with me": (
        "sender",
        lambda world: reverse("sharing:shared_with_me"),
        "received-table",
    ),
    "received study": ("sender", received_study_url, 'id="viewer"'),
}


@pytest.mark.parametrize("page", PAGES)
def test_it_runs_a_fixed_number_of_queries_at_most_ten(client, settings, world, page):
    settings.STATUS_PAGE_SIZE = 50
    who, url_of, marker = PAGES[page]
    client.force_login(admin_of_source(world) if who == "admin" else world.sender)
    counts = []
    for n in (SMALL, LARGE):
        world.grow(n)
        counts.append(queries_of(client, url_of(world), marker=marker))

    small, large = counts
    assert len(large) <= len(small), "\n".join(large)
    assert len(small) <= BUDGET, "\n".join(small)


def test_status_forwarding_shows_fifty_rows_and_counts_no_further_than_it_needs(
    client, settings, world
):
    settings.STATUS_PAGE_SIZE = 50
    world.grow(1001)
    client.force_login(admin_of_source(world))

    response = client.get(reverse("sharing:status_forwarding"))

    content = response.content.decode()
    assert content.count('<tr id="bucket-') == 50
    assert "More than 1000 recipients" in content
    assert "Page 1 of" not in content
    assert 'rel="next"' in content


def test_shared_with_me_pages_through_a_thousand_shares(client, world):
    world.grow(1001)
    client.force_login(world.sender)

    first = client.get(reverse("sharing:shared_with_me")).content.decode()
    second = client.get(reverse("sharing:shared_with_me"), {"page": 2})

    # The total comes with the page's rows (every row is read to order them):
    # exact, even past a thousand.
    assert "1001 studies shared with you" in first
    assert "Page 1 of 21" in first
    assert first.count('class="patient-link"') == 50
    # The newest share first; the next page goes on where the first stopped.
    newest = Bucket.objects.filter(recipient_user=world.sender).order_by(
        "-share__created_at", "-pk"
    )

    def link(bucket):
        study = bucket.share.studies.get()
        return reverse(
            "sharing:received_study",
            kwargs={"bucket_id": bucket.pk, "study_id": study.pk},
        )

    links = [link(bucket) for bucket in newest[:51]]
    assert links[0] in first and links[49] in first
    assert links[50] in second.content.decode()
    assert links[50] not in first
