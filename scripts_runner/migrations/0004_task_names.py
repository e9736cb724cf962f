"""Stored schedules name this app's tasks by their new names (each task is named like the service it calls).

Tasks already queued under the old names still run through core.schedules.PREVIOUS_RELEASE_TASKS.
"""

from django.db import migrations

from core.schedules import task_paths_rewrite

RENAMES = {
    "scripts_runner.tasks.run_execute": "scripts_runner.tasks.script_run_execute",
}


def forward(apps, schema_editor):
    task_paths_rewrite(apps, renames=RENAMES)


def backward(apps, schema_editor):
    task_paths_rewrite(apps, renames={new: old for old, new in RENAMES.items()})


class Migration(migrations.Migration):
    dependencies = [
        ("scripts_runner", "0003_log_removed_internal_error"),
        ("django_q", "0018_task_success_index"),
    ]

    operations = [migrations.RunPython(forward, backward)]
