"""The trade export's concurrency slots: at most TRADES_EXPORT_CONCURRENCY exports write at once, on every host.

The slots are rows, not workers: an export holds one while it runs (a unique `slot` column, so the
limit is global across hosts and clusters). An export that finds every slot taken is *parked*
(queued, `parked_at` set, no task): no worker is held while it waits. Whoever frees a slot hands it
to the oldest parked export and queues its task again. A parked export shows its place in the queue
and can be cancelled like any queued job.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import F, Q, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from core.models import JobStatus
from core.services import job_ring
from trades import conf
from trades.models import WAITING_MESSAGE, Export

ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)
# Waiting for a slot: queued, parked, no slot. Served oldest request first.
WAITING = Q(status=JobStatus.QUEUED, slot=None, parked_at__isnull=False)
QUEUE_ORDER = ("created_at", "pk")


def slots_free_stale() -> None:
    """Slots of exports that are no longer queued or running are free (cancel, crash, recovery)."""
    Export.objects.exclude(status__in=ACTIVE).exclude(slot=None).update(slot=None)


def slot_claim(*, pk: int) -> str:
    """Give a free slot (unique column) to the queued export `pk` that has none.

    "claimed", "full" (every slot is taken) or "gone" (not queued, or it holds a slot already).
    """
    slots_free_stale()
    taken = set(Export.objects.exclude(slot=None).values_list("slot", flat=True))
    for slot in range(max(1, conf.EXPORT_CONCURRENCY)):
        if slot in taken:
            continue
        try:
            with transaction.atomic():
                claimed = Export.objects.filter(pk=pk, status=JobStatus.QUEUED, slot=None).update(
                    slot=slot, parked_at=None
                )
        except IntegrityError:  # another export took this slot meanwhile: try the next
            continue
        return "claimed" if claimed else "gone"
    return "full"


def slot_release(*, export: Export) -> None:
    Export.objects.filter(pk=export.pk).update(slot=None)
    export.slot = None


def export_enqueue(*, export: Export) -> None:
    """`core.services.job_enqueue` for exports, aware of parking.

    The task may run (and park the export) before `async_task` returns: a parked export keeps an
    empty `task_id`, so the recovery pass never takes it for a lost task.
    """
    pk = export.pk

    def _send() -> None:
        from django_q.tasks import async_task

        task_id = async_task(Export.task_func, pk, task_name=f"{export.kind}:{pk}")
        Export.objects.filter(pk=pk, parked_at__isnull=True).update(task_id=str(task_id or ""))

    transaction.on_commit(_send)
    job_ring(job=export)


def export_admit(*, pk: int) -> bool:
    """Called by the task before the job starts: True when the export holds a slot and may run.

    Free slots go to the waiting exports in request order: the export is parked first, then the
    slots are dispatched (perhaps to it). When it gets none it stays parked: queued ("Queued —
    waiting for a free export slot"), its task returns at once (no worker is held while it waits),
    and the export that frees a slot hands it over (`exports_dispatch`). Parking before looking
    for a slot means a slot freed meanwhile is never missed: the export freeing it dispatches
    after its release, and so sees this export parked.
    """
    export = Export.objects.filter(pk=pk).first()
    if export is None or export.status != JobStatus.QUEUED:
        return False  # finished, cancelled or already running elsewhere: nothing to do
    if export.slot is not None:
        return True  # handed a slot by exports_dispatch
    Export.objects.filter(pk=pk, status=JobStatus.QUEUED, slot=None, parked_at=None).update(
        parked_at=timezone.now(), task_id=""
    )
    exports_dispatch(current=pk)
    if Export.objects.filter(pk=pk, status=JobStatus.QUEUED).exclude(slot=None).exists():
        return True
    if Export.objects.filter(pk=pk, status=JobStatus.QUEUED, slot=None).exclude(parked_at=None).update(
        message=WAITING_MESSAGE, progress=0.0
    ):
        job_ring(job=export)
    return False


def exports_dispatch(*, current: int | None = None) -> int:
    """Hand free slots to parked exports, oldest request first, and queue their tasks again.

    Called when an export finishes, is cancelled or is lost, by a task looking for a slot
    (`current`: its own export, which it runs itself: no task is queued for it), and on every new
    request (cheap: two small queries when nothing waits). A slot is claimed before the task is
    queued, so an export is never handed to two tasks for one slot, and `job_start` lets only one
    task run it anyway.
    """
    slots_free_stale()
    handed = 0
    waiting = Export.objects.filter(WAITING, cancel_requested=False).order_by(*QUEUE_ORDER)
    for export in waiting:
        outcome = slot_claim(pk=export.pk)
        if outcome == "full":
            break
        if outcome == "claimed":
            handed += 1
            if export.pk != current:
                export.refresh_from_db()
                export_enqueue(export=export)
    return handed


# --- places in the queue ---------------------------------------------------------


def queue_positions(*, pks) -> dict[int, int]:
    """1-based places in the queue of those of `pks` that wait for a slot: one query, however many wait."""
    pks = list(pks)
    if not pks:
        return {}
    ranked = Export.objects.filter(WAITING).annotate(
        position=Window(RowNumber(), order_by=[F(name).asc() for name in QUEUE_ORDER])
    )
    return dict(ranked.filter(pk__in=pks).values_list("pk", "position"))


def queue_positions_attach(exports) -> list[Export]:
    """Set every export's `queue_position` (read by `status_message`) from one query; returns the list."""
    exports = list(exports)
    positions = queue_positions(pks=[e.pk for e in exports if e.is_waiting_for_slot])
    for export in exports:
        export.queue_position = positions.get(export.pk)
    return exports
