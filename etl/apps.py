from django.apps import AppConfig
from django.db.models.signals import post_migrate


class EtlConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "etl"
    verbose_name = "ETL (POS files)"

    def ready(self) -> None:
        post_migrate.connect(ensure_schedule, sender=self)


DAILY_FETCH_SCHEDULE = "etl: daily fetch of the previous day"


def ensure_schedule(sender, **kwargs) -> None:
    """Create the daily fetch schedule once; afterwards it is the admin's to edit (never overwritten)."""
    from datetime import datetime, time, timedelta

    from django.utils import timezone
    from django_q.models import Schedule

    from etl import conf

    if Schedule.objects.filter(name=DAILY_FETCH_SCHEDULE).exists():
        return
    now = timezone.localtime()
    first = timezone.make_aware(datetime.combine(now.date(), time(hour=max(0, min(23, conf.DAILY_FETCH_HOUR)))))
    if first <= now:
        first += timedelta(days=1)
    Schedule.objects.create(
        name=DAILY_FETCH_SCHEDULE, func="etl.tasks.fetch_job_request_daily", schedule_type=Schedule.DAILY, next_run=first, repeats=-1,
    )
