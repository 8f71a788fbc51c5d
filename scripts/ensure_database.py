"""Create the database named by DATABASE_URL when it does not exist yet (run after check_services).

Run from the repository root: `python -m scripts.ensure_database`.
"""

import os
import sys

from psycopg import errors, sql

from scripts.check_services import connect_server


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings.base")
    from django.conf import settings

    database = settings.DATABASES["default"]
    with connect_server(database, autocommit=True) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database["NAME"]]).fetchone()
        if exists:
            return 0
        try:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database["NAME"])))
        except errors.DuplicateDatabase:
            return 0  # created by a concurrent run in the meantime
    sys.stdout.write(f"Created database {database['NAME']}.\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
