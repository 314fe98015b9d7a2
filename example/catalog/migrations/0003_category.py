import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("catalog", "0002_product_sku")]

    operations = [
        migrations.CreateModel(
            name="Category",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=100, unique=True)),
            ],
        ),
        migrations.AddField(
            "product",
            "category",
            models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, to="catalog.category"),
        ),
        migrations.AddIndex("product", models.Index(fields=["name"], name="catalog_product_name_idx")),
    ]
