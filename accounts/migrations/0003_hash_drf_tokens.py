"""Existing API keys (DRF `authtoken_token`, stored in clear) become hashed knox tokens.

Each 40-hex key is hashed in place into `accounts.ApiToken` with knox's hash, so programs
using it keep working; it gets the name "Key from before hashing" and expires 365 days
after this migration. Then the clear-text table is dropped (and DRF's authtoken
migration records removed): no key stays readable in the database. Its stale content
types go with `manage.py remove_stale_contenttypes`.
Nothing to undo: hashing cannot be reversed, so going back leaves the hashed tokens.
"""

from datetime import timedelta, timezone as dt_timezone

from django.db import migrations
from django.utils import timezone
from django.utils.dateparse import parse_datetime

OLD_TABLE = "authtoken_token"
MIGRATED_NAME = "Key from before hashing"
MIGRATED_LIFETIME = timedelta(days=365)


def hash_old_keys(apps, schema_editor):
    from knox.crypto import hash_token
    from knox.settings import CONSTANTS

    connection = schema_editor.connection
    with connection.cursor() as cursor:
        if OLD_TABLE not in connection.introspection.table_names(cursor):
            return
        cursor.execute(f"SELECT {connection.ops.quote_name('key')}, created, user_id FROM {OLD_TABLE}")
        rows = cursor.fetchall()
    ApiToken = apps.get_model("accounts", "ApiToken")
    User = apps.get_model("accounts", "User")
    existing = set(User.objects.values_list("pk", flat=True))
    expiry = timezone.now() + MIGRATED_LIFETIME
    for key, created, user_id in rows:
        if user_id not in existing:
            continue
        token = ApiToken(
            digest=hash_token(key), token_key=key[: CONSTANTS.TOKEN_KEY_LENGTH], user_id=user_id,
            name=MIGRATED_NAME, expiry=expiry,
        )
        token.save()
        if isinstance(created, str):
            created = parse_datetime(created)
        if created is not None:  # `created` is auto_now_add: keep the key's own date
            if timezone.is_naive(created):
                created = timezone.make_aware(created, dt_timezone.utc)
            ApiToken.objects.filter(pk=token.pk).update(created=created)
    schema_editor.execute(f"DROP TABLE {OLD_TABLE}")
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM django_migrations WHERE app = %s", ["authtoken"])


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0002_api_tokens"),
    ]

    operations = [migrations.RunPython(hash_old_keys, migrations.RunPython.noop)]
