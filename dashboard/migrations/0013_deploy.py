from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("dashboard", "0012_optgaps")]

    operations = [
        migrations.AddField(
            model_name="deployment",
            name="probe_state",
            field=models.JSONField(blank=True, null=True),
        ),
    ]
