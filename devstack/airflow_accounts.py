"""Create the local Airflow's accounts in one process (run by that Airflow venv's interpreter).

Airflow 2 and 3 both run FAB's auth manager here, as MWAA does: its roles (Admin, Op, User,
Viewer) are the ones MWAA maps IAM principals to.

`airflow users create` costs a CLI start-up per account and only knows the Admin role before the
web server has synced the others, so this does both steps at once:

    <airflow venv>/bin/python devstack/airflow_accounts.py ACCOUNTS_JSON

ACCOUNTS_JSON is a file (mode 0600) holding a list of objects with username, password, role,
firstname, lastname and email. Existing accounts are left as they are.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder
from airflow.utils.providers_configuration_loader import providers_configuration_loaded


@providers_configuration_loaded
def create_accounts(accounts: list[dict[str, Any]]) -> None:
    with get_application_builder() as appbuilder:
        appbuilder.add_permissions(update_perms=True)
        appbuilder.sm.sync_roles()
        for account in accounts:
            if appbuilder.sm.find_user(username=account["username"]):
                continue
            role = appbuilder.sm.find_role(account["role"])
            if role is None:
                raise SystemExit(f"role {account['role']!r} does not exist")
            created = appbuilder.sm.add_user(
                account["username"],
                account["firstname"],
                account["lastname"],
                account["email"],
                role,
                account["password"],
            )
            if not created:
                raise SystemExit(f"could not create account {account['username']!r}")
            print(f"created account {account['username']!r} with role {account['role']!r}")


if __name__ == "__main__":
    create_accounts(json.loads(Path(sys.argv[1]).read_text()))
