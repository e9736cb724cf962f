import os

from django.core.management.base import BaseCommand

from accounts.services import user_ensure_root


class Command(BaseCommand):
    help = "Create the root account once (from DJANGO_SUPERUSER_* variables, or with a generated password)."

    def handle(self, *args, **options):
        root, generated, created = user_ensure_root(
            username=os.environ.get("DJANGO_SUPERUSER_USERNAME", "root"),
            email=os.environ.get("DJANGO_SUPERUSER_EMAIL", "root@localhost"),
            password=os.environ.get("DJANGO_SUPERUSER_PASSWORD") or None,
        )
        if not created:
            self.stdout.write(f"Root account exists: {root.username}")
            return
        self.stdout.write(self.style.SUCCESS(f"Created root account '{root.username}'."))
        if generated:
            self.stdout.write(self.style.WARNING(f"Generated password (shown once): {generated}"))
