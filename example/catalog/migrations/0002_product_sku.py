from django.db import migrations, models


def fill_sku(apps, schema_editor):
    Product = apps.get_model("catalog", "Product")
    for product in Product.objects.all():
        product.sku = f"SKU-{product.pk}"
        product.save(update_fields=["sku"])


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial")]

    operations = [
        migrations.AddField("product", "sku", models.CharField(max_length=32, null=True)),
        migrations.RunPython(fill_sku, migrations.RunPython.noop),
        migrations.AlterField("product", "sku", models.CharField(max_length=32, unique=True)),
    ]
