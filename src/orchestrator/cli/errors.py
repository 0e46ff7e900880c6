"""What a command prints when the user asked for something that cannot be: one line naming
what is wrong, exit code 2, never a traceback."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NoReturn, ParamSpec, TypeVar

import psycopg
import pydantic
import typer
from rich.console import Console
from rich.markup import escape

from orchestrator.db.migrate import MigrationError
from orchestrator.db.urls import ConfigurationError
from orchestrator.reports.batches import BatchRefError
from orchestrator.steps.webhook_config import ClayConfigurationError

USAGE_ERROR = 2
INTERRUPTED = 130
err = Console(stderr=True, soft_wrap=True)

_P = ParamSpec("_P")
_R = TypeVar("_R")

# Errors whose message says all the user needs: a wrong batch id, a schema behind the code,
# an impossible configuration, a path that cannot be written.
_EXPLAINED: tuple[type[Exception], ...] = (
    BatchRefError,
    MigrationError,
    ConfigurationError,
    ClayConfigurationError,
    OSError,
)


def fail(message: str) -> NoReturn:
    err.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    raise typer.Exit(USAGE_ERROR)


def explained_errors(command: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run the command; an error the user can fix ends it with one line and exit code 2."""

    @functools.wraps(command)
    def run(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return command(*args, **kwargs)
        except _EXPLAINED as exc:
            fail(_describe(exc))
        except pydantic.ValidationError as exc:
            fail(settings_problem(exc))
        except psycopg.OperationalError as exc:
            fail(f"cannot reach the database: {str(exc).strip().splitlines()[0]}")
        except psycopg.ProgrammingError as exc:
            if exc.sqlstate is not None:
                raise  # a statement the server refused (a defect), not the URL
            # psycopg's message repeats the URL, password included: say what is expected.
            fail(
                "cannot use the database URL (DATABASE_URL or WORKSPACE_DATABASE_URL): expected"
                " postgresql://user:password@host:port/database"
            )
        except KeyboardInterrupt:
            # Outside a batch's run (which says how to resume): nothing was left half-done.
            err.print("interrupted")
            raise typer.Exit(INTERRUPTED) from None

    return run


def _describe(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc}"
    return str(exc)


def settings_problem(exc: pydantic.ValidationError) -> str:
    """`CLAY_RATE_PER_SECOND: Input should be a valid number, not 'abc'`, one per bad value;
    values of secrets and URLs are not repeated."""
    problems = []
    for error in exc.errors():
        message = str(error["msg"]).removeprefix("Value error, ")
        if not error["loc"]:  # a rule over several settings: its message names them
            problems.append(message)
            continue
        name = str(error["loc"][0]).upper()
        shown = "" if _secret(name) else f", not {str(error.get('input'))[:40]!r}"
        problems.append(f"{name}: {message}{shown}")
    return "bad configuration (environment or .env): " + "; ".join(problems)


def _secret(name: str) -> bool:
    return any(word in name for word in ("TOKEN", "SECRET", "KEY", "URL", "PASSWORD"))
