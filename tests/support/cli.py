"""Running the `enrich` command as a user does: a process of its own, an environment of its own."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from conftest import DatabasePair


def enrich_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "orchestrator.cli.main", *args]


def cli_env(home: Path, db: DatabasePair | None = None, **extra: str) -> dict[str, str]:
    """This environment without Clay or test settings; the test databases when given (else
    the embedded server in `home`); then `extra`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CLAY_", "TEST_")) and "DATABASE_URL" not in k
    }
    env["ENRICH_HOME"] = str(home)
    if db is not None:
        env |= {"DATABASE_URL": db.urls.hq, "WORKSPACE_DATABASE_URL": db.urls.workspace}
    return env | extra
