from django.db import migrations, models


def mark_user_thresholds(apps, schema_editor):
    # The catalogue marks every user threshold (Llama's 700M monthly active users) as a fact
    # only the releasing team knows; catalogues seeded before the flag existed get it here.
    apps.get_model("licensing", "LicenceTerm").objects.filter(type="user_threshold").update(
        attestation=True
    )


class Migration(migrations.Migration):
    dependencies = [("licensing", "0003_default_policy")]

    operations = [
        migrations.AddField(
            model_name="licenceterm",
            name="attestation",
            field=models.BooleanField(default=False),
        ),
        migrations.RunPython(mark_user_thresholds, migrations.RunPython.noop),
    ]
