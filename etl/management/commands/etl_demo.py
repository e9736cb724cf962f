from django.core.management.base import BaseCommand

from etl import conf
from etl.demo import demo_ensure


class Command(BaseCommand):
    help = "Create demo branches and a generated POS host (months of days, several versions per file)."

    def add_arguments(self, parser):
        parser.add_argument("--no-queue", action="store_true", help="Do not queue fetches of the last week.")
        parser.add_argument("--serve", type=int, metavar="PORT",
                            help="Also serve the demo host over HTTP on 127.0.0.1:PORT (Ctrl-C to stop).")

    def handle(self, *args, **options):
        demo_ensure(stdout=self.stdout, queue=not options["no_queue"])
        if options["serve"] is not None:
            from etl.demo_host import PosHostServer

            server = PosHostServer(conf.DEMO_SOURCE_ROOT, port=options["serve"])
            self.stdout.write(f"Serving the demo POS host at {server.url}\n"
                              f"  listing:  {server.list_template}\n  download: {server.download_template}\n")
            try:
                server.serve_forever()
            except KeyboardInterrupt:
                pass
            finally:
                server.server_close()
