from django import template
from django.template.loader import render_to_string

register = template.Library()


@register.simple_tag
def preview_table(columns, rows):
    names = [c["name"] for c in columns]
    table = [[row.get(n) for n in names] for row in rows]
    return render_to_string("analyzer/partials/data_table.html", {"columns": columns, "rows": table})
