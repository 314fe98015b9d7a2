from django.db import models


class Invoice(models.Model):
    order = models.OneToOneField("orders.Order", on_delete=models.CASCADE)
    total = models.DecimalField(max_digits=12, decimal_places=2)
    issued_at = models.DateTimeField(auto_now_add=True)
