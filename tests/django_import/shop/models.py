from django.db import models


class Order(models.Model):
    """Something to hold permissions on: Django makes shop.{add,change,delete,view}_order, and
    guardian grants them per order."""

    number = models.CharField(max_length=32)

    class Meta:
        permissions = [("refund_order", "Can refund order")]
