"""Thin django-q2 entry points."""

from analyzer import services
from analyzer.models import Answer
from core.services import job_execute


def answer_run(pk: int) -> None:
    job_execute(model=Answer, pk=pk, body=lambda answer: services.answer_run(answer=answer))
