from django.db import migrations, models


def mark_old_orders(apps, schema_editor):
    Order = apps.get_model("orders", "Order")
    Order.objects.update(status="imported")


def unmark_old_orders(apps, schema_editor):
    Order = apps.get_model("orders", "Order")
    Order.objects.filter(status="imported").update(status="new")


class Migration(migrations.Migration):
    dependencies = [("orders", "0001_initial")]

    operations = [
        migrations.AddField("order", "status", models.CharField(default="new", max_length=20)),
        migrations.RunPython(mark_old_orders, unmark_old_orders),
    ]
