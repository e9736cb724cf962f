"""Values as a person writes them, the same on every page: `{% load platform_format %}`.

- `duration`: a timedelta or seconds → "140 ms", "5.3 s", "2 min 05 s", "1 h 02 min"
- `when`: a datetime → <time datetime="…">2024-05-01 13:45 UTC</time> (the platform's time zone, always named)
- `weekdays`: weekday numbers (Monday = 0, as `date.weekday()`) → "Sat, Sun"
- `chips`: a mapping of parameters or of a sweep's grid → one chip per name ("fast 5, 10, 20")
- `num`: a number with thousands separators and fixed decimals; "—" when there is none
"""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta

from django import template
from django.utils import timezone
from django.utils.html import format_html, format_html_join

register = template.Library()


@register.filter
def duration(value) -> str:
    if value is None or value == "":
        return ""
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds < 0:
        return ""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    if whole < 86400:
        return f"{whole // 3600} h {whole % 3600 // 60:02d} min"
    return f"{whole // 86400} d {whole % 86400 // 3600} h"


@register.filter
def when(value, precision: str = "min"):
    """`precision` "s" adds the seconds."""
    if not isinstance(value, datetime):
        return ""
    local = timezone.localtime(value) if timezone.is_aware(value) else value
    shown = local.strftime("%Y-%m-%d %H:%M:%S" if precision == "s" else "%Y-%m-%d %H:%M")
    zone = local.tzname() or ""
    return format_html('<time datetime="{}">{} {}</time>', local.isoformat(), shown, zone)


@register.filter
def weekdays(value) -> str:
    days = sorted({int(d) for d in (value or []) if str(d).lstrip("-").isdigit() and 0 <= int(d) <= 6})
    return ", ".join(calendar.day_abbr[d] for d in days)


def _value_text(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(_value_text(v) for v in value)
    if isinstance(value, dict):
        if {"start", "stop"} <= set(value):
            step = f" step {_value_text(value['step'])}" if "step" in value else ""
            return f"{_value_text(value['start'])} … {_value_text(value['stop'])}{step}"
        return ", ".join(f"{k} {_value_text(v)}" for k, v in value.items())
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


@register.filter
def params_text(value) -> str:
    """Parameters on one line, as the chips read: "fast 5 · slow 30 · allow_short no" (chart tooltips, plain text)."""
    if not isinstance(value, dict):
        return _value_text(value) if value else ""
    return " · ".join(f"{name} {_value_text(v)}" for name, v in value.items())


@register.filter
def chips(value):
    if not value:
        return format_html('<span class="muted">{}</span>', "none")
    if not isinstance(value, dict):
        return _value_text(value)
    return format_html('<span class="chips">{}</span>', format_html_join(
        "", '<span class="chip"><span class="chip-name">{}</span> {}</span>',
        ((name, _value_text(v)) for name, v in value.items())))


@register.filter
def num(value, digits=2):
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
