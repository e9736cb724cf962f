"""PostgreSQL-only pieces: the `trades_pow` function and a BRIN index on time.

SQLite gets `trades_pow` as a Python function registered on each connection
(trades.apps) and keeps the B-tree indexes only.
"""

from django.db import migrations

from trades.expressions import PG_POW_FUNCTION

BRIN = "CREATE INDEX IF NOT EXISTS trades_trade_ts_brin ON trades_trade USING brin (participant_timestamp)"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(PG_POW_FUNCTION)
    schema_editor.execute(BRIN)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP INDEX IF EXISTS trades_trade_ts_brin")
    schema_editor.execute("DROP FUNCTION IF EXISTS trades_pow(double precision, double precision)")


class Migration(migrations.Migration):
    dependencies = [("trades", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
