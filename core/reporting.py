"""What error reports (the debug page, error e-mails) may show of the settings."""

import re

from django.views.debug import SafeExceptionReporterFilter


class SettingsFilter(SafeExceptionReporterFilter):
    """Django's filter, also hiding the Redis URL wherever it sits (REDIS_URL, the cache's LOCATION, the
    channel layer's hosts, django-q2's `redis`): it carries the Redis password."""

    hidden_settings = re.compile(
        "API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|REDIS|LOCATION|HOSTS|ADDRESS", flags=re.I
    )
