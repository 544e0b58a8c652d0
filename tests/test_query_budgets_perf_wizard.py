"""Tighter query budgets of the directory search fragment and the wizard's
recipients and parameters steps (issue 19, items 2 and 3), constant in the data
(10 or 1,000 rows of each kind).

On PostgreSQL the fragment runs: session, user, both name-prefix scans with
the groups and departments in one UNION ALL, the entries (users with their
numbers, departments and the sender's favorites in one statement): 4 in all, 5
when the prefixes found fewer than 20 and the substring tier runs (bounded,
never more); groups and departments among the results add one statement (their
counts and members' languages; the favorites too when there is no user).
SQLite (no ordered UNION members, no arrays) runs more;
its budget stays the general one of tests/test_query_budgets.py.

The wizard's recipients and parameters steps, prepared as under load: session,
user, the sender's departments, the studies (with their left-out images), and
the sender's preferences or the department's labels: 5. The recipients step's
directory entries are the ones resolved when it was posted
(sharing/wizard/views.py, recipients/directory_version.py).
"""

import pytest
from django.db import connection
from django.urls import reverse

from tests import test_query_budgets as budgets
from tests.factories import DepartmentFactory, UserFactory, UserGroupFactory
from tests.test_query_budgets import (
    LARGE,
    SMALL,
    prepare_wizard,
    queries_of,
    wizard_url,
)

# The general budgets' fixtures (a world grown to 10 or 1,000 rows of each kind).
world = budgets.world
sender_client = budgets.sender_client

pytestmark = pytest.mark.django_db

on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the tight budgets are PostgreSQL's"
)


def counts(client, world, url, marker, *, wizard=False):
    result = []
    for n in (SMALL, LARGE):
        world.grow(n)
        if wizard:
            prepare_wizard(client, world)
        result.append(queries_of(client, url, marker=marker))
    return result


@on_postgresql
def test_the_search_fragment_runs_five_queries_at_most_whatever_the_data(
    sender_client, world
):
    url = f"{reverse('recipients:quick_search')}?q=peeters"
    small, large = counts(sender_client, world, url, "Peeters")
    assert len(large) <= len(small), "\n".join(large)
    assert len(small) <= 5, "\n".join(small)
    # At 1,000 matches the two prefix scans fill the page: no substring tier.
    assert len(large) <= 4, "\n".join(large)


@on_postgresql
def test_groups_and_departments_in_the_fragment_cost_one_query(sender_client, world):
    # Groups and departments (with their counts and members' languages) are one
    # query; without users among the results the favorites come in it too.
    world.grow(SMALL)
    for i in range(3):
        group = UserGroupFactory(name=f"Zoller team {i}")
        group.members.add(UserFactory(language="nl"), UserFactory(language="fr"))
        DepartmentFactory(name=f"Zoller radiology {i}", is_public=True)
    url = f"{reverse('recipients:quick_search')}?q=zoller"
    only_containers = queries_of(sender_client, url, marker="Zoller radiology 2")
    UserFactory(first_name="Anna", last_name="Zoller")
    mixed = queries_of(sender_client, url, marker="Anna Zoller")

    # Session, user, names, substring tier, groups and departments.
    assert len(only_containers) <= 5, "\n".join(only_containers)
    # ... and the users' entries.
    assert len(mixed) <= 6, "\n".join(mixed)


def test_a_search_without_result_skips_the_favorites(sender_client, world):
    world.grow(SMALL)
    url = f"{reverse('recipients:quick_search')}?q=zzqxw"
    queries = queries_of(sender_client, url, marker="No recipient found.")
    assert not [q for q in queries if "recipients_favorite" in q], "\n".join(queries)


@on_postgresql
@pytest.mark.parametrize(
    ("step", "marker"),
    [("recipients", "recipients-0-key"), ("parameters", "parameters-reason")],
)
def test_the_wizard_steps_run_five_queries_whatever_the_data(
    sender_client, world, step, marker
):
    small, large = counts(sender_client, world, wizard_url(step), marker, wizard=True)
    assert len(small) == len(large), "\n".join(large)
    assert len(small) <= 5, "\n".join(small)
