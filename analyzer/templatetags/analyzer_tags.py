from django import template

from analyzer import selectors
from django.template.loader import render_to_string

register = template.Library()


@register.simple_tag
def preview_table(columns, rows):
    names = [c["name"] for c in columns]
    table = [[row.get(n) for n in names] for row in rows]
    return render_to_string("analyzer/partials/data_table.html", {"columns": columns, "rows": table})


@register.filter
def session_status(session) -> str:
    """processing | ready | failed (from the session's processing job)."""
    return selectors.session_status(session=session)
