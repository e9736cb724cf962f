from datetime import datetime, timezone

from django import template

register = template.Library()


@register.filter
def num(value, digits=2):
    """A metric for display: fixed decimals, thousands separators, an em dash when undefined."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    try:
        return f"{float(value):,.{int(digits)}f}"
    except (TypeError, ValueError):
        return str(value)


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
