from django.core.management.base import BaseCommand, CommandError

from core.orphans import orphans_delete, orphans_find


class Command(BaseCommand):
    help = ("List stored objects (local disk or S3) that no row refers to and that are older than the grace "
            "period; with --delete, remove them.")

    def add_arguments(self, parser):
        parser.add_argument("--delete", action="store_true", help="Delete the orphans found (default: only list them).")
        parser.add_argument("--grace-hours", type=float, default=24.0,
                            help="Only objects older than this, by the store's modified time (default 24).")

    def handle(self, *args, delete: bool, grace_hours: float, **options):
        if grace_hours < 0:
            raise CommandError("--grace-hours must be 0 or more.")
        found = list(orphans_find(grace_hours=grace_hours))
        for orphan in found:
            self.stdout.write(f"{orphan.name}\t{orphan.size}\t{orphan.modified:%Y-%m-%dT%H:%M:%SZ}")
        total = sum(orphan.size for orphan in found)
        if not delete:
            self.stdout.write(f"{len(found)} orphan(s), {total:,} bytes; run with --delete to remove them.")
            return
        deleted = orphans_delete(orphans=found)
        self.stdout.write(self.style.SUCCESS(f"Deleted {deleted} orphan(s), {total:,} bytes."))
