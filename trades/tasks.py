"""django-q2 entry points: thin, they call the service of the same name."""

from core.services import job_execute
from trades import services
from trades.models import Export


def export_run(pk: int) -> None:
    job_execute(model=Export, pk=pk, body=services.export_build)
