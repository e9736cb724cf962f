from django.apps import AppConfig
from django.db.backends.signals import connection_created


def _register_sqlite_functions(sender, connection, **kwargs):
    """SQLite twin of the PostgreSQL `trades_pow` function (created by a migration there)."""
    if connection.vendor == "sqlite":
        from trades.expressions import safe_pow

        connection.connection.create_function("trades_pow", 2, safe_pow, deterministic=True)


def _export_worker_lost(sender, job, **kwargs):
    from trades.services import export_cleanup_after_loss

    export_cleanup_after_loss(export=job)


def _exports_recovered(sender, **kwargs):
    # A worker that died between releasing its slot and handing it on leaves exports parked:
    # every recovery pass hands free slots out again.
    from trades.services import exports_dispatch

    exports_dispatch()


class TradesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "trades"
    verbose_name = "Trades"

    def ready(self) -> None:
        from core.signals import job_worker_lost, jobs_recovered
        from trades.models import Export

        connection_created.connect(_register_sqlite_functions, dispatch_uid="trades_sqlite_functions")
        job_worker_lost.connect(_export_worker_lost, sender=Export, dispatch_uid="trades_export_worker_lost")
        jobs_recovered.connect(_exports_recovered, dispatch_uid="trades_exports_recovered")
