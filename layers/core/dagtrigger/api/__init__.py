"""The HTTP API's domain functions: what the api function's routers call.

Each function takes validated input and ``ApiDependencies``, returns a response model and
raises ``ApiProblem`` (RFC 9457 problem details) for every refusal.
"""

from dagtrigger.api.context import ApiDependencies, get_api_dependencies
from dagtrigger.api.health import check_health
from dagtrigger.api.problems import ApiProblem, Problem, ProblemCode
from dagtrigger.api.queries import TriggerFilters, get_trigger, list_triggers, object_history
from dagtrigger.api.runs import Accepted, replay_trigger, trigger_dag_run
from dagtrigger.api.webhooks import WebhookDelivery, receive_webhook

__all__ = [
    "Accepted",
    "ApiDependencies",
    "ApiProblem",
    "Problem",
    "ProblemCode",
    "TriggerFilters",
    "WebhookDelivery",
    "check_health",
    "get_api_dependencies",
    "get_trigger",
    "list_triggers",
    "object_history",
    "receive_webhook",
    "replay_trigger",
    "trigger_dag_run",
]
