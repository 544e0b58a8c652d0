import functools
import re

from django.db.models import (
    BooleanField,
    Count,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Value,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce
from django.http import Http404

from pacsshare.prepared import PreparedQuery
from recipients.models import Membership

from .deidentify import left_out_q
from .models import Instance, Report, Study

# The modalities a radiology department produces; the overview filter offers these.
MODALITIES = ["CR", "CT", "DX", "MG", "MR", "NM", "OT", "PT", "RF", "US", "XA"]


def studies_visible_to(*, user):
    """Return the studies a user sees as a department member (not via buckets)."""
    return studies_of_departments(department_ids=user.department_ids)


def studies_of_departments(*, department_ids):
    """Return the studies of these departments.

    Filtering on the department ids themselves (not a join through memberships)
    lets PostgreSQL walk study_overview_order_idx and stop after one page.
    """
    return Study.objects.filter(department_id__in=department_ids)


def _instance_for_member(*, user_id, study_id, instance_id):
    # The user's departments as a subquery, not a join through department and
    # membership: PostgreSQL plans two fewer joins (0.3 ms of its 0.8 ms per frame).
    # The model's ordering and one row, as .first() would run it.
    departments = Membership.objects.filter(user_id=user_id).values("department_id")
    return Instance.objects.select_related("series__study").filter(
        pk=instance_id,
        series__study_id=study_id,
        series__study__department_id__in=departments,
    )[:1]


# Read on every frame of the viewer: compiled once per process (pacsshare.prepared).
_INSTANCE_FOR_MEMBER = PreparedQuery(_instance_for_member)


def get_instance_for_member(*, user, study_id, instance_id):
    """Return an instance of a study of one of the user's departments (with its
    series and study), or raise 404: one query, for the viewer's images."""
    instance = None
    if user.pk is not None:
        instance = _INSTANCE_FOR_MEMBER.first(
            # int(): any other type would compile a statement of its own.
            user_id=user.pk,
            study_id=int(study_id),
            instance_id=int(instance_id),
        )
    if instance is None:
        raise Http404("No such instance")
    return instance


def get_study_for_member(*, user, study_id):
    """Return a study of one of the user's departments, or raise 404."""
    try:
        return (
            studies_visible_to(user=user)
            .select_related("patient", "department")
            .get(pk=study_id)
        )
    except Study.DoesNotExist:
        raise Http404("No such study") from None


def with_overview_columns(queryset):
    """Annotate what an overview row shows, so a page costs a fixed number of queries.

    The series and image counts are kept on the study by the import.
    """
    return queryset.select_related("patient", "department").annotate(
        # A LIMIT 1 scalar subquery, not EXISTS: PostgreSQL turns EXISTS into a
        # hashed scan of every report before the page's LIMIT applies.
        has_report=Coalesce(
            Subquery(
                Report.objects.filter(study=OuterRef("pk"))
                .exclude(text="")
                .values(present=Value(True))[:1],
                output_field=BooleanField(),
            ),
            Value(False),
        ),
    )


def studies_filter(
    queryset,
    *,
    patient="",
    date_from=None,
    date_to=None,
    modality="",
    description="",
):
    """Narrow a study queryset by the overview's filters; empty values don't filter."""
    for term in patient.split():
        queryset = queryset.filter(
            Q(patient__family_name__icontains=term)
            | Q(patient__given_name__icontains=term)
            | Q(patient__patient_id__icontains=term)
        )
    if date_from:
        queryset = queryset.filter(study_date__gte=date_from)
    if date_to:
        queryset = queryset.filter(study_date__lte=date_to)
    if modality:
        # modalities holds "CT,MR": match a whole item, not "CT" inside "PCT".
        queryset = queryset.filter(
            modalities__iregex=rf"(^|,)\s*{re.escape(modality)}\s*(,|$)"
        )
    if description:
        queryset = queryset.filter(description__icontains=description)
    return queryset


def series_of_study(*, study):
    """Return the study's series with their instance and frame counts."""
    return study.series.annotate(instance_count=Count("instances")).order_by(
        "series_number", "id"
    )


def _left_out_count():
    left_out = (
        Instance.objects.filter(left_out_q(), series__study=OuterRef("pk"))
        .order_by()
        .values("series__study")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(left_out, output_field=IntegerField()), 0)


_LEFT_OUT_AS = ' AS "anonymize_left_out" FROM "studies_study"'


@functools.cache
def _left_out_count_sql():
    """Return (sql, params) of the left-out count as a correlated subquery of
    "studies_study", compiled once per process; None if its SQL is not of the
    expected shape (then the expression is built per query)."""
    query = (
        Study.objects.order_by()
        .annotate(anonymize_left_out=_left_out_count())
        .values("anonymize_left_out")
    )
    sql, params = query.query.sql_with_params()
    if not (sql.startswith("SELECT ") and sql.endswith(_LEFT_OUT_AS)):
        return None
    return sql.removeprefix("SELECT ").removesuffix(_LEFT_OUT_AS), params


def studies_with_left_out_count(queryset):
    """Annotate studies with ``anonymize_left_out``: how many of their instances
    an anonymized share leaves out (in the same query).

    The subquery's expression (a dozen conditions) cost more to build and
    compile on every request than to run: its SQL is compiled once (by the ORM,
    from the same expression) and reused.
    """
    compiled = _left_out_count_sql() if queryset.model is Study else None
    if compiled is None:
        return queryset.annotate(anonymize_left_out=_left_out_count())
    sql, params = compiled
    # The SQL, Django's own, refers to the study as "studies_study"."id": the
    # annotated queryset is read as it is, never nested in another query.
    return queryset.annotate(
        anonymize_left_out=RawSQL(sql, params, output_field=IntegerField())  # noqa: S611
    )
