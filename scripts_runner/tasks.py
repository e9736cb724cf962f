"""django-q2 entry points (thin)."""

from scripts_runner import runner


def run_execute(pk: int) -> None:
    runner.run_execute(pk=pk)
