"""django-q2 entry points: thin, they call the service of the same name."""

from trades import services


def export_run(pk: int) -> None:
    services.export_run(pk=pk)
