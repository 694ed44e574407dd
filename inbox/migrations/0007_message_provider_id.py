"""Messages keep a provider-side id beside our UUID (WhatsApp's wamids), unique per channel."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('inbox', '0006_webhook_delivery'),
    ]

    operations = [
        migrations.AddField(
            model_name='message',
            name='channel',
            field=models.CharField(default='generic', max_length=16),
        ),
        migrations.AddField(
            model_name='message',
            name='provider_message_id',
            field=models.CharField(blank=True, max_length=128, null=True),
        ),
        migrations.AddConstraint(
            model_name='message',
            constraint=models.UniqueConstraint(condition=models.Q(('provider_message_id__isnull', False)), fields=('channel', 'provider_message_id'), name='message_provider_id_once'),
        ),
    ]
