"""The `dagtrigger` console script: one Typer app, one module per area of commands."""

from __future__ import annotations

from typing import Any

import typer
from botocore.exceptions import BotoCoreError, ClientError
from requests import RequestException
from typer.core import TyperGroup

from dagtrigger_cli import history_cmd, local_cmd, operations_cmd, routes_cmd
from dagtrigger_cli.api import ApiError
from dagtrigger_cli.output import fail
from dagtrigger_cli.target import TargetOptions


class OneLineErrors(TyperGroup):
    """Ends every command's AWS and network failures as one line and exit code 1: here rather
    than around ``app()``, so that typer's test runner sees exactly what a user does."""

    def invoke(self, ctx: Any) -> Any:  # a click Context (typer vendors click)
        try:
            return super().invoke(ctx)
        except ApiError as error:
            fail(error.message)
        except ClientError as error:
            details = error.response.get("Error", {})
            fail(f"{error.operation_name}: {details.get('Code')}: {details.get('Message')}")
        except BotoCoreError as error:
            fail(str(error))
        except RequestException as error:
            fail(f"the API did not answer: {error}")


app = typer.Typer(
    name="dagtrigger",
    cls=OneLineErrors,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Operate dagtrigger: check routes, read the history, replay, redrive, backfill.",
)


@app.callback()
def choose_target(
    context: typer.Context,
    stack: str | None = typer.Option(
        None, envvar="DAGTRIGGER_STACK", help="a deployed stack's name (default: `make up`'s)"
    ),
    region: str | None = typer.Option(None, envvar="AWS_REGION", help="the stack's region"),
    profile: str | None = typer.Option(None, envvar="AWS_PROFILE", help="an AWS CLI profile"),
) -> None:
    """Commands that read or change a deployment use --stack, else the running local stack."""
    context.obj = {"options": TargetOptions(stack=stack, region=region, profile=profile)}


app.add_typer(routes_cmd.app, name="routes")
app.add_typer(local_cmd.app, name="local")
history_cmd.register(app)
operations_cmd.register(app)


def main() -> None:
    """Run the command (the console script's entry point)."""
    app()
