from datetime import datetime, timezone

from django import template

from core.templatetags.platform_format import num

register = template.Library()


# One number format for every page (core/templatetags/platform_format.py).
register.filter("num", num)


@register.filter
def get(mapping, key):
    if isinstance(mapping, dict):
        return mapping.get(key)
    return None


@register.filter
def epoch(value):
    try:
        return datetime.fromtimestamp(int(value), tz=timezone.utc).strftime("%Y-%m-%d %H:%M")
    except (TypeError, ValueError, OverflowError):
        return "—"


@register.filter
def pct(value):
    try:
        return f"{float(value) * 100:.0f}"
    except (TypeError, ValueError):
        return "0"
