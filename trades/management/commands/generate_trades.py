from django.core.management.base import BaseCommand, CommandError

from trades.loading import trades_generate


class Command(BaseCommand):
    help = "Generate realistic synthetic trades (random-walk prices, intraday bursts, several exchanges)."

    def add_arguments(self, parser):
        parser.add_argument("--tickers", type=int, default=10)
        parser.add_argument("--days", type=int, default=5, help="trading days ending yesterday")
        parser.add_argument("--rows", type=int, default=200_000, help="total rows")
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args, tickers, days, rows, seed, **options):
        if not (1 <= tickers <= 5000) or not (1 <= days <= 3000) or not (1 <= rows <= 2_000_000_000):
            raise CommandError("--tickers 1..5000, --days 1..3000 and --rows 1..2e9 please")
        total = trades_generate(tickers=tickers, days=days, rows=rows, seed=seed, stdout=self.stdout)
        self.stdout.write(self.style.SUCCESS(f"{total:,} trades generated"))
