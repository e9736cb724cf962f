from django.core.management.base import BaseCommand, CommandError

from trades.loading import trades_file_load


class Command(BaseCommand):
    help = "Import trades flat files (CSV, CSV.gz, Parquet) in the US-equities trades layout. Idempotent per file."

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", metavar="FILE")

    def handle(self, *args, files, **options):
        failed = 0
        for path in files:
            try:
                report = trades_file_load(path=path)
            except FileNotFoundError:
                self.stderr.write(f"{path}: no such file")
                failed += 1
                continue
            except (ValueError, OSError) as exc:
                self.stderr.write(f"{path}: cannot read ({exc})")
                failed += 1
                continue
            if report.skipped:
                self.stdout.write(f"{report.name}: already loaded, skipped")
                continue
            self.stdout.write(f"{report.name}: {report.rows_loaded:,} rows loaded, {report.rows_bad:,} bad rows")
            for problem in report.problems:
                self.stdout.write(f"  {problem}")
        if failed:
            raise CommandError(f"{failed} file(s) could not be loaded")
