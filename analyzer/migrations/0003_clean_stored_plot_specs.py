"""Clean the chart specs stored before charts were cleaned (analyzer.agent.plots.spec_clean): they load nothing."""

from django.db import migrations


def clean_plots(apps, schema_editor):
    from analyzer.agent.plots import PlotInvalid, spec_clean

    Message = apps.get_model("analyzer", "Message")
    for message in Message.objects.filter(kind="plot").iterator(chunk_size=200):
        data = dict(message.data or {})
        spec = data.get("vega_lite_spec")
        try:
            cleaned = spec_clean(spec)
        except PlotInvalid:
            cleaned = {"data": {"values": []}}
        schema = spec.get("$schema") if isinstance(spec, dict) else None
        if isinstance(schema, str) and schema.startswith("https://vega.github.io/schema/vega-lite/"):
            cleaned["$schema"] = schema
        if cleaned != spec:
            data["vega_lite_spec"] = cleaned
            Message.objects.filter(pk=message.pk).update(data=data)


class Migration(migrations.Migration):
    dependencies = [("analyzer", "0002_processing")]

    operations = [migrations.RunPython(clean_plots, migrations.RunPython.noop)]
