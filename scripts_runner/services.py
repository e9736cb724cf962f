"""Every write of the script runner: scripts, runs, cancellation, access grants."""

from __future__ import annotations

import hashlib
import logging
import time
import uuid

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

from core import services as core_services
from core.models import JobStatus
from scripts_runner import conf, sandbox
from scripts_runner import network as netns
from scripts_runner.models import EndReason, LogChunk, Script, ScriptRun
from scripts_runner.validators import validate_args, validate_env, validate_script_code, validate_script_name

logger = logging.getLogger(__name__)

RUN_PERMISSION = "scripts_runner.run_scripts"
NETWORK_PERMISSION = "scripts_runner.use_network"


def _store_code(*, owner_id: int, code: bytes) -> str:
    return default_storage.save(f"scripts_runner/scripts/{owner_id}/{uuid.uuid4().hex}.py", ContentFile(code))


def _delete_file_after_commit(name: str) -> None:
    if name:
        transaction.on_commit(lambda: default_storage.delete(name))


@transaction.atomic
def script_create(*, owner, name: str, code: bytes) -> Script:
    name = validate_script_name(name)
    validate_script_code(code, name=name)
    if Script.objects.filter(owner=owner, name=name).exists():
        raise ValidationError({"name": f"You already have a script named {name}."})
    stored = _store_code(owner_id=owner.pk, code=code)
    script = Script(owner=owner, name=name, sha256=hashlib.sha256(code).hexdigest(), size=len(code))
    script.file.name = stored
    try:
        script.full_clean()
        script.save()
    except Exception:
        default_storage.delete(stored)
        raise
    return script


@transaction.atomic
def script_update(*, script: Script, code: bytes, name: str | None = None) -> Script:
    """Replace the code (and optionally the name); earlier runs keep the hash they ran."""
    new_name = validate_script_name(name) if name is not None else script.name
    validate_script_code(code, name=new_name)
    if new_name != script.name and Script.objects.filter(owner_id=script.owner_id, name=new_name).exists():
        raise ValidationError({"name": f"You already have a script named {new_name}."})
    old_file = script.file.name
    script.file.name = _store_code(owner_id=script.owner_id, code=code)
    script.name = new_name
    script.sha256 = hashlib.sha256(code).hexdigest()
    script.size = len(code)
    script.full_clean()
    script.save()
    _delete_file_after_commit(old_file)
    return script


def script_delete(*, script: Script, by, wait_seconds: float = 3.0) -> None:
    """Cancel the script's live runs, give them a moment to stop, then delete everything."""
    live = list(ScriptRun.objects.filter(script=script, status__in=[JobStatus.QUEUED, JobStatus.RUNNING]))
    for run in live:
        script_run_cancel(run=run, by=by)
    deadline = time.monotonic() + wait_seconds
    while live and time.monotonic() < deadline:
        if not ScriptRun.objects.filter(pk__in=[r.pk for r in live], status=JobStatus.RUNNING).exists():
            break
        time.sleep(0.05)
    with transaction.atomic():
        name = script.file.name
        script.delete()  # runs and their log chunks cascade
        _delete_file_after_commit(name)


def can_run(user) -> bool:
    return bool(user.is_authenticated and (not conf.REQUIRE_RUN_PERMISSION or user.has_perm(RUN_PERMISSION)))


def can_use_network(user) -> bool:
    """Whether the user holds the network permission by an explicit grant (to them or a group).

    Not `has_perm`: that is true for every permission of a superuser (and of
    whatever a permission backend grants wholesale). Network is opt-in for
    everyone, root included.
    """
    if not (user.is_authenticated and user.is_active):
        return False
    app_label, codename = NETWORK_PERMISSION.split(".")
    from django.db.models import Q

    return Permission.objects.filter(content_type__app_label=app_label, codename=codename).filter(
        Q(user=user) | Q(group__user=user)).exists()


def sandbox_status() -> tuple[bool, str]:
    """(runs may start, error shown to users). The probe's detail goes to the log only."""
    ok, error = sandbox.probe()
    if ok:
        return True, ""
    logger.warning("the script sandbox cannot start on this host: %s", error)
    if conf.ALLOW_UNSANDBOXED:
        return True, ""
    return False, (
        "Scripts cannot run: the sandbox is not available on this host. An administrator must install "
        "bubblewrap (the worker's log says what failed) or explicitly allow unsandboxed runs."
    )


def script_run_create(*, script: Script, user, args: list[str] | None = None, env: dict[str, str] | None = None,
               network: bool = False) -> ScriptRun:
    """Queue a run; it has network only when asked for (`network`) by a user explicitly granted it."""
    if script.owner_id != user.pk:
        raise PermissionDenied("You can only run your own scripts.")
    if not can_run(user):
        raise PermissionDenied("You do not have permission to run scripts; ask an administrator.")
    args = validate_args(args)
    env = validate_env(env)
    network = bool(network)
    if network and not can_use_network(user):
        raise ValidationError({"network": "You do not have permission to use the network from scripts; "
                                          "ask an administrator."})
    # Probed outside the transaction: the first probe starts a process.
    ok, error = sandbox_status()
    if not ok:
        raise ValidationError({"non_field_errors": error})
    sandboxed = sandbox.probe()[0]
    if network:
        if not sandboxed:
            raise ValidationError({"network": "Networked runs need the sandbox, which is not available on this "
                                              "host; run without network."})
        ok, error = netns.status()
        if not ok:
            raise ValidationError({"network": error})
    with transaction.atomic():
        run = ScriptRun(
            owner=user, script=script, args=args, env=env, network=network,
            sandboxed=sandboxed, script_sha256=script.sha256,
        )
        run.full_clean()
        run.save()
        core_services.job_enqueue(job=run)
    return run


def script_run_cancel(*, run: ScriptRun, by) -> ScriptRun:
    """Ask a run to stop; the worker kills the sandbox within a second. Idempotent."""
    if run.is_finished:
        return run
    core_services.job_cancel(job=run, by=by)
    if run.status == JobStatus.CANCELLED and not run.end_reason:
        ScriptRun.objects.filter(pk=run.pk, end_reason="").update(end_reason=EndReason.CANCELLED)
        run.end_reason = EndReason.CANCELLED
    return run


def script_run_logs_budget_enforce(*, owner_id: int, keep_run_id: int | None = None) -> int:
    """Keep a user's stored logs within `SCRIPTS_RUNNER_LOG_BYTES_PER_USER`; returns how many logs were removed.

    The logs of the user's oldest finished runs are removed first (whole logs, counted by
    each run's `output_bytes`), until the rest fits; a queued or running run's log is never
    touched, nor the log of `keep_run_id` (the run that just ended). The run rows stay, with
    `log_removed_at` set.
    """
    from django.db.models import Sum
    from django.utils import timezone

    budget = conf.LOG_BYTES_PER_USER
    if budget <= 0:
        return 0
    kept = ScriptRun.objects.filter(owner_id=owner_id, log_removed_at__isnull=True)
    total = kept.aggregate(total=Sum("output_bytes"))["total"] or 0
    if total <= budget:
        return 0
    candidates = (kept.filter(status__in=[JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED])
                  .exclude(pk=keep_run_id).order_by("created_at", "pk").values_list("pk", "output_bytes"))
    removed = 0
    for pk, size in candidates.iterator():
        if total <= budget:
            break
        with transaction.atomic():
            # Only if it is still finished and kept (another worker may be doing the same).
            if ScriptRun.objects.filter(pk=pk, log_removed_at__isnull=True, status__in=[
                    JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED]).update(log_removed_at=timezone.now()):
                LogChunk.objects.filter(run_id=pk).delete()
                removed += 1
        total -= size
    return removed


@transaction.atomic
def script_access_set(*, user, run: bool | None = None, network: bool | None = None) -> None:
    """Grant or revoke a user's permission to run scripts and to use the network."""
    for wanted, codename in ((run, "run_scripts"), (network, "use_network")):
        if wanted is None:
            continue
        perm = Permission.objects.get(content_type__app_label="scripts_runner", codename=codename)
        if wanted:
            user.user_permissions.add(perm)
        else:
            user.user_permissions.remove(perm)
    for cache in ("_perm_cache", "_user_perm_cache"):
        if hasattr(user, cache):
            delattr(user, cache)


def script_access_table() -> list[dict]:
    """Every user with whether they may run scripts / use the network (two queries)."""
    from django.db.models import Q

    perms = {p.codename: p for p in Permission.objects.filter(
        content_type__app_label="scripts_runner", codename__in=["run_scripts", "use_network"])}
    holders = {}
    for codename, perm in perms.items():
        holders[codename] = set(
            get_user_model().objects.filter(Q(user_permissions=perm) | Q(groups__permissions=perm))
            .values_list("pk", flat=True)
        )
    rows = []
    for user in get_user_model().objects.order_by("username"):
        root = user.is_superuser and user.is_active
        rows.append({
            "user": user,
            "run": root or user.pk in holders.get("run_scripts", set()),
            # Never implied, not even for root: see can_use_network.
            "network": user.is_active and user.pk in holders.get("use_network", set()),
        })
    return rows
