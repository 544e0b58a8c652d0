"""Move the trigram index onto lower(search_name).

With the trigram index on the bare column, the planner sometimes served a
name-prefix query (search_name LIKE 'pe%' ORDER BY ... LIMIT 20) from the trigram
bitmap and sorted thousands of rows instead of walking the btree. The substring
query now compares lower(search_name) (the same text: it is already folded), so
each query has exactly one index that fits it.
"""

from django.db import migrations

from recipients.migrations._operations import PostgresOnlySQL


class Migration(migrations.Migration):

    dependencies = [
        ('recipients', '0003_directory_search_order'),
    ]

    operations = [
        PostgresOnlySQL(
            "DROP INDEX IF EXISTS user_search_name_trgm",
            "CREATE INDEX user_search_name_trgm ON recipients_user "
            "USING gin (search_name gin_trgm_ops) WHERE is_active",
        ),
        PostgresOnlySQL(
            "CREATE INDEX user_search_name_lower_trgm ON recipients_user "
            "USING gin (lower(search_name) gin_trgm_ops) WHERE is_active",
            "DROP INDEX IF EXISTS user_search_name_lower_trgm",
        ),
    ]
