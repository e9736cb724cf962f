"""Stored schedules name this app's tasks by their new names (each task is named like the service it calls).

Tasks already queued under the old names still run through core.schedules.PREVIOUS_RELEASE_TASKS.
"""

from django.db import migrations

from core.schedules import task_paths_rewrite

RENAMES = {
    "etl.tasks.fetch_job_run": "etl.tasks.fetch_job_execute",
    "etl.tasks.record_export_run": "etl.tasks.record_export_execute",
    "etl.tasks.daily_fetch": "etl.tasks.fetch_job_request_daily",
}


def forward(apps, schema_editor):
    task_paths_rewrite(apps, renames=RENAMES)


def backward(apps, schema_editor):
    task_paths_rewrite(apps, renames={new: old for old, new in RENAMES.items()})


class Migration(migrations.Migration):
    dependencies = [
        ("etl", "0002_record_bulk_load"),
        ("django_q", "0018_task_success_index"),
    ]

    operations = [migrations.RunPython(forward, backward)]
