"""Stored schedules name this app's tasks by their new names (each task is named like the service it calls).

Tasks already queued under the old names still run through core.schedules.PREVIOUS_RELEASE_TASKS.
"""

from django.db import migrations

from core.schedules import task_paths_rewrite

RENAMES = {
    "backtest.tasks.run_execute": "backtest.tasks.backtest_run_execute",
    "backtest.tasks.fetch_active": "backtest.tasks.bars_fetch_active",
    "backtest.tasks.import_execute": "backtest.tasks.bars_import_execute",
}


def forward(apps, schema_editor):
    task_paths_rewrite(apps, renames=RENAMES)


def backward(apps, schema_editor):
    task_paths_rewrite(apps, renames={new: old for old, new in RENAMES.items()})


class Migration(migrations.Migration):
    dependencies = [
        ("backtest", "0005_weekly_monthly_intervals"),
        ("django_q", "0018_task_success_index"),
    ]

    operations = [migrations.RunPython(forward, backward)]
