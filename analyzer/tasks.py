"""Thin django-q2 entry points."""

from analyzer import services
from analyzer.models import Answer, Processing
from core.jobkit import job_execute


def answer_run(pk: int) -> None:
    job_execute(model=Answer, pk=pk, body=services.answer_run)


def processing_run(pk: int) -> None:
    job = job_execute(model=Processing, pk=pk, body=services.processing_run)
    services.processing_after_run(job=job)
