"""What an admin (staff, not root) may do: the permissions the platform's own apps give them.

Root (the superuser) holds every permission through Django's ModelBackend.
Admins hold exactly what is listed here and nothing else: the models of
third-party apps (API tokens, django-q2 schedules, tasks and queue, allauth
e-mail addresses, social accounts and apps, two-factor authenticators, groups)
are root's alone. A model added to the admin site must be decided here and in
tests/test_admin_registry.py.
"""

VIEW = frozenset({"view"})
MANAGE = frozenset({"view", "add", "change", "delete"})

# "<app_label>.<model_name>": the actions an admin may take in the Django admin.
STAFF_MODEL_ACTIONS: dict[str, frozenset[str]] = {
    # Users, under the rules of accounts.services (the ModelAdmin checks them per object).
    "accounts.user": MANAGE,
    "accounts.activityevent": VIEW,
    # Jobs and worker bookkeeping: staff see them; they change only through services.
    "core.workercheck": VIEW,
    "core.workerheartbeat": VIEW,
    "core.jobevent": VIEW,
    # Trade data: exchanges are reference data the team maintains.
    "trades.exchange": MANAGE,
    "trades.loadedfile": VIEW,
    "trades.export": VIEW,
    # Scripts: staff may remove a script (scripts_runner.services.script_delete) and stop runs.
    "scripts_runner.script": frozenset({"view", "delete"}),
    "scripts_runner.scriptrun": VIEW,
    # ETL: branches and file sources are the admins' to manage; the data is the team's.
    "etl.filesource": MANAGE,
    "etl.branch": MANAGE,
    "etl.fetchjob": VIEW,
    "etl.fetchedfile": VIEW,
    "etl.record": VIEW,
    "etl.recordexport": VIEW,
    "etl.auditlog": VIEW,
    # Market data: instruments and price bars.
    "backtest.instrument": MANAGE,
    "backtest.pricebar": MANAGE,
    "backtest.barimport": VIEW,
    "backtest.backtestrun": VIEW,
    "backtest.backtestresult": VIEW,
    "backtest.sweep": VIEW,
    "backtest.sweepresult": VIEW,
    "backtest.portfolio": VIEW,
    # analyzer: sessions are private to their owner, staff included: nothing here.
}

# Permissions that are not about the admin site.
STAFF_EXTRA_PERMISSIONS = frozenset({
    "scripts_runner.run_scripts",  # admins grant it to users, so they hold it themselves
    "scripts_runner.use_network",
})


def _build() -> frozenset[str]:
    perms = set(STAFF_EXTRA_PERMISSIONS)
    for label, actions in STAFF_MODEL_ACTIONS.items():
        app_label, model_name = label.split(".")
        perms.update(f"{app_label}.{action}_{model_name}" for action in actions)
    return frozenset(perms)


STAFF_PERMISSIONS: frozenset[str] = _build()
STAFF_APP_LABELS: frozenset[str] = frozenset(perm.split(".", 1)[0] for perm in STAFF_PERMISSIONS)


def is_admin(user) -> bool:
    return bool(user is not None and user.is_active and user.is_staff)
