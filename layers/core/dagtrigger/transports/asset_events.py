"""Asset events (Airflow 3) and dataset events (Airflow 2.9+) over Airflow's REST API.

Instead of starting one DAG run, an asset route tells Airflow that an asset changed, and
Airflow's data-aware scheduling starts whichever DAGs consume it.

* Airflow 3: ``POST /assets/events`` takes the asset's numeric id.
* Airflow 2.9+: ``POST /datasets/events`` takes the dataset URI, as Airflow stored it.

Either way the asset is first looked up in ``GET /assets`` (``/datasets``) by ``uri_pattern``, a
substring match filtered here: Airflow normalises some URIs when a DAG declares them
(``s3://landing/orders/`` is stored as ``s3://landing/orders``, its name keeping the slash), so
the route's URI matches an asset whose URI, URI less a trailing slash, or name (Airflow 3) is
it. What is found is kept for the life of the transport: a burst of events for one asset makes
one lookup.

Airflow has no idempotency key for these events: posting twice makes two events. Each event
therefore carries our trigger id in its ``extra`` (``extra["dagtrigger"]["trigger_id"]``), and
``AssetEvents.find`` looks for it among the asset's newest events, so that whoever takes over a
claim whose outcome is unknown (a Lambda that died after Airflow's answer and before the ledger
write) records the event Airflow already has instead of posting a second one.

Only the REST transports (InvokeRestApi, Airflow REST) carry these calls: the MWAA CLI has no
command for them, and the routes file refuses an asset route on a CLI environment when loaded.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from dagtrigger.errors import RejectedError
from dagtrigger.transports.airflow_api import AirflowApiTransport, ApiReply, error_for_status
from dagtrigger.transports.base import AirflowTransport, EnvironmentRef
from dagtrigger.transports.rate_budget import CallPriority

#: where our trigger id is kept in an event's ``extra``
EXTRA_KEY: Final = "dagtrigger"
#: Airflow's largest page (``[api] maximum_page_limit`` default)
PAGE_LIMIT: Final = 100
#: most pages of assets read to find one URI among those its pattern also matches
ASSET_LOOKUP_MAX_PAGES: Final = 5


@dataclass(frozen=True)
class AssetEventRequest:
    environment: EnvironmentRef
    uri: str
    extra: Mapping[str, Any]
    #: kept in the event's extra, so a takeover can find the event Airflow already has
    trigger_id: str


@dataclass(frozen=True)
class AssetEvent:
    """An event Airflow recorded for an asset."""

    #: None only if Airflow's answer to a successful post lacked it (the event exists)
    event_id: int | None
    asset_id: int | None
    uri: str
    timestamp: str | None
    #: the runs Airflow says the event created when it answered (usually none yet: the
    #: scheduler creates them on its next loop)
    created_run_ids: tuple[str, ...] = ()
    #: True when the event was found, not posted (a takeover after an unknown outcome)
    already_existed: bool = False


class AssetEvents:
    """Posts and finds asset events through one environment's REST transport."""

    def __init__(self, transport: AirflowApiTransport) -> None:
        self._transport = transport
        self._assets: dict[str, _StoredAsset] = {}  # the route's URI -> Airflow's asset

    def post(self, request: AssetEventRequest) -> AssetEvent:
        extra = {**request.extra, EXTRA_KEY: {"trigger_id": request.trigger_id}}
        asset = self.asset(request.uri)
        if self._transport.airflow_major() >= 3:
            path, body = "/assets/events", {"asset_id": asset.asset_id, "extra": extra}
        else:
            path, body = "/datasets/events", {"dataset_uri": asset.uri, "extra": extra}
        reply = self._transport.send("POST", path, body=body, priority=CallPriority.TRIGGER)
        if reply.status == 404:
            self._assets.pop(request.uri, None)  # deleted since we looked it up
            raise _asset_not_found(request.uri, reply)
        if not reply.ok or not isinstance(reply.body, Mapping):
            raise error_for_status(reply, doing=f"create an event for asset {request.uri!r}")
        return _event_from(reply.body, uri=request.uri, already_existed=False)

    def find(self, uri: str, trigger_id: str) -> AssetEvent | None:
        """Our event for ``uri`` among the asset's newest ``PAGE_LIMIT`` events, or None.

        An event older than the newest ``PAGE_LIMIT`` of its asset is not found: a takeover
        runs within minutes of the claim, so only an asset with more events than that in those
        minutes could hide ours.
        """
        asset = self.asset(uri)
        if self._transport.airflow_major() >= 3:
            path, filters = "/assets/events", {"asset_id": asset.asset_id}
            events_key = "asset_events"
        else:
            path, filters = "/datasets/events", {"dataset_id": asset.asset_id}
            events_key = "dataset_events"
        query = {**filters, "order_by": "-timestamp", "limit": PAGE_LIMIT}
        reply = self._transport.send("GET", path, query=query, priority=CallPriority.TRIGGER)
        if not reply.ok or not isinstance(reply.body, Mapping):
            raise error_for_status(reply, doing=f"list the events of asset {uri!r}")
        for event in reply.body.get(events_key) or ():
            if isinstance(event, Mapping) and _trigger_id_of(event) == trigger_id:
                return _event_from(event, uri=uri, already_existed=True)
        return None

    def asset(self, uri: str) -> _StoredAsset:
        """The asset Airflow keeps for the route's URI (looked up once per transport)."""
        known = self._assets.get(uri)
        if known is None:
            known = self._lookup(uri)
            self._assets[uri] = known
        return known

    def _lookup(self, uri: str) -> _StoredAsset:
        noun = "assets" if self._transport.airflow_major() >= 3 else "datasets"
        pattern = uri.rstrip("/") or uri
        for page in range(ASSET_LOOKUP_MAX_PAGES):
            query = {"uri_pattern": pattern, "limit": PAGE_LIMIT, "offset": page * PAGE_LIMIT}
            reply = self._transport.send(
                "GET", f"/{noun}", query=query, priority=CallPriority.TRIGGER
            )
            if not reply.ok or not isinstance(reply.body, Mapping):
                raise error_for_status(reply, doing=f"look up asset {uri!r}")
            items = [item for item in reply.body.get(noun) or () if isinstance(item, Mapping)]
            for item in items:
                if _names(item, uri) and isinstance(item.get("id"), int):
                    return _StoredAsset(asset_id=int(item["id"]), uri=str(item["uri"]))
            if len(items) < PAGE_LIMIT:
                break
        raise _asset_not_found(uri, None)


_of_transport: weakref.WeakKeyDictionary[AirflowApiTransport, AssetEvents] = (
    weakref.WeakKeyDictionary()
)
_of_transport_lock = threading.Lock()


def asset_events_of(transport: AirflowTransport, environment: EnvironmentRef) -> AssetEvents:
    """The ``AssetEvents`` of ``environment``'s REST transport, made once, so its asset lookups
    last as long as the transport (one per environment and Lambda instance)."""
    if not isinstance(transport, AirflowApiTransport):
        raise RejectedError(
            "asset_needs_rest_transport",
            f"environment {environment.alias!r} uses transport {environment.transport.value}, "
            "which cannot create asset events: use invoke_rest_api or airflow_rest",
        )
    with _of_transport_lock:
        events = _of_transport.get(transport)
        if events is None:
            events = _of_transport[transport] = AssetEvents(transport)
        return events


@dataclass(frozen=True)
class _StoredAsset:
    asset_id: int
    uri: str  # as Airflow stored it


def _names(item: Mapping[str, Any], uri: str) -> bool:
    """Whether Airflow's asset is the route's: same URI, same URI but normalised, same name."""
    stored = item.get("uri")
    return isinstance(stored, str) and (
        stored == uri or stored == uri.rstrip("/") or item.get("name") == uri
    )


def _asset_not_found(uri: str, reply: ApiReply | None) -> RejectedError:
    said = f" (Airflow: HTTP {reply.status})" if reply is not None else ""
    return RejectedError(
        "asset_not_found",
        f"Airflow has no asset with URI {uri!r}{said}: an asset exists once a DAG names it "
        "(as its schedule or a task's outlet) and Airflow has parsed that DAG",
        http_status=404,
    )


def _trigger_id_of(event: Mapping[str, Any]) -> str | None:
    extra = event.get("extra")
    ours = extra.get(EXTRA_KEY) if isinstance(extra, Mapping) else None
    trigger_id = ours.get("trigger_id") if isinstance(ours, Mapping) else None
    return trigger_id if isinstance(trigger_id, str) else None


def _event_from(body: Mapping[str, Any], *, uri: str, already_existed: bool) -> AssetEvent:
    event_id = body.get("id")
    asset_id = body.get("asset_id", body.get("dataset_id"))
    runs = body.get("created_dagruns") or ()
    return AssetEvent(
        event_id=event_id if isinstance(event_id, int) else None,
        asset_id=asset_id if isinstance(asset_id, int) else None,
        uri=str(body.get("uri") or body.get("dataset_uri") or uri),
        timestamp=str(body["timestamp"]) if body.get("timestamp") else None,
        created_run_ids=tuple(
            str(run.get("run_id") or run.get("dag_run_id"))  # Airflow 3, Airflow 2
            for run in runs
            if isinstance(run, Mapping) and (run.get("run_id") or run.get("dag_run_id"))
        ),
        already_existed=already_existed,
    )
