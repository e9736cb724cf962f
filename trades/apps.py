from django.apps import AppConfig
from django.db.backends.signals import connection_created


def _register_sqlite_functions(sender, connection, **kwargs):
    """SQLite twin of the PostgreSQL `trades_pow` function (created by a migration there)."""
    if connection.vendor == "sqlite":
        from trades.expressions import safe_pow

        connection.connection.create_function("trades_pow", 2, safe_pow, deterministic=True)


class TradesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "trades"
    verbose_name = "Trades"

    def ready(self) -> None:
        connection_created.connect(_register_sqlite_functions, dispatch_uid="trades_sqlite_functions")
