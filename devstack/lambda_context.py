"""What Lambda hands a handler, shared by the runner and the reliability harness's processes.

A module of its own, outside ``devstack.runner``: a harness process imports it without the
runner's package (a second more on every simulated cold start).
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from typing import Any


@dataclass
class LambdaContext:
    """What Lambda passes as the handler's second argument (the attributes Powertools reads)."""

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    deadline_monotonic: float
    identity: Any = None
    client_context: Any = None

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline_monotonic - time.monotonic()) * 1000))


def error_document(error: BaseException) -> dict[str, Any]:
    """Lambda's answer for an invocation whose handler raised."""
    return {
        "errorType": type(error).__name__,
        "errorMessage": str(error),
        "stackTrace": traceback.format_tb(error.__traceback__),
    }
