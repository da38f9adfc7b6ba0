# Installment re-presentation (« Représenter » a returned installment).

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('sepa', '0004_mandate_texts'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='debitline',
            name='installment_in_one_active_debit_batch',
        ),
        migrations.AddField(
            model_name='installment',
            name='representations',
            field=models.PositiveSmallIntegerField(default=0, help_text="Nombre de fois où l'échéance, rejetée ou retournée par la banque, a été représentée.", verbose_name='représentations'),
        ),
        migrations.AddField(
            model_name='installment',
            name='represented_on',
            field=models.DateField(blank=True, null=True, verbose_name='représentée le'),
        ),
        migrations.AddConstraint(
            model_name='debitline',
            constraint=models.UniqueConstraint(condition=models.Q(('active', True), ('return_code', '')), fields=('installment',), name='installment_in_one_unreturned_active_line'),
        ),
    ]
