import sys

from django.apps import AppConfig


class AnalyzerConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "analyzer"

    def ready(self):
        # Worker cluster only: import the agent (altair and its Vega-Lite schema take ~2 s to load) before
        # django-q2 forks its worker processes, so the first answer of each worker does not pay for it.
        if len(sys.argv) > 1 and sys.argv[1] == "qcluster":
            from analyzer.agent import plots

            plots.schema_warm()
