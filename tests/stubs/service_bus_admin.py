"""Service Bus's management endpoint (the Atom feed of `ServiceBusAdministrationClient`): queue counts.

    with ServiceBusAdminStub() as admin:       # https://127.0.0.1:<port>; trust admin.ca_file
        admin.queues["pages"] = MessageCounts(active=3, scheduled=4, dead_lettered=2)
        client = ServiceBusAdministrationClient(
            admin.namespace, StubCredential(), connection_verify=admin.ca_file
        )

As Service Bus answers: `GET /{queue}?api-version=…&enrich=false` with a Bearer token gives an Atom
`entry` whose `QueueDescription` carries `CountDetails`; a queue that does not exist gives 200 with
an empty `feed` (not a 404); no token gives 401.
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.stubs.base import Recorded, Reply, StubServer

ATOM = "application/atom+xml;type=entry;charset=utf-8"
_ENTRY = """<entry xmlns="http://www.w3.org/2005/Atom"><id>https://{ns}/{name}?api-version=2021-05</id>\
<title type="text">{name}</title><published>2026-11-25T09:00:00Z</published>\
<updated>2026-11-25T09:00:00Z</updated><author><name>{ns}</name></author>\
<link rel="self" href="https://{ns}/{name}?api-version=2021-05"/><content type="application/xml">\
<QueueDescription xmlns="http://schemas.microsoft.com/netservices/2010/10/servicebus/connect" \
xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><LockDuration>PT1M</LockDuration>\
<MaxSizeInMegabytes>1024</MaxSizeInMegabytes><RequiresDuplicateDetection>true</RequiresDuplicateDetection>\
<RequiresSession>{sessions}</RequiresSession><DeadLetteringOnMessageExpiration>true</DeadLetteringOnMessageExpiration>\
<DuplicateDetectionHistoryTimeWindow>PT10M</DuplicateDetectionHistoryTimeWindow>\
<MaxDeliveryCount>10</MaxDeliveryCount><SizeInBytes>0</SizeInBytes><MessageCount>{total}</MessageCount>\
<CountDetails xmlns:d2p1="http://schemas.microsoft.com/netservices/2011/06/servicebus">\
<d2p1:ActiveMessageCount>{active}</d2p1:ActiveMessageCount>\
<d2p1:DeadLetterMessageCount>{dead}</d2p1:DeadLetterMessageCount>\
<d2p1:ScheduledMessageCount>{scheduled}</d2p1:ScheduledMessageCount>\
<d2p1:TransferMessageCount>0</d2p1:TransferMessageCount>\
<d2p1:TransferDeadLetterMessageCount>0</d2p1:TransferDeadLetterMessageCount></CountDetails>\
<Status>Active</Status><EnablePartitioning>false</EnablePartitioning></QueueDescription></content></entry>"""
_EMPTY_FEED = """<feed xmlns="http://www.w3.org/2005/Atom">\
<title type="text">Publicly Listed Services</title>\
<subtitle type="text">This is the list of publicly-listed services currently available.</subtitle>\
<id>uuid:0d8e3a5c-3b1f-4f2e-9e1c-2b8a6f1f7a11;id=1</id><updated>2026-11-25T10:00:00Z</updated>\
<generator>Microsoft® Service Bus</generator></feed>"""


@dataclass(frozen=True)
class MessageCounts:
    """A queue's CountDetails."""

    active: int = 0
    scheduled: int = 0
    dead_lettered: int = 0
    sessions: bool = True


class ServiceBusAdminStub(StubServer):
    """The namespace's management endpoint; `namespace` is what the client takes as its FQDN."""

    def __init__(self) -> None:
        super().__init__(tls=True)
        self.queues: dict[str, MessageCounts] = {}

    @property
    def namespace(self) -> str:
        """host:port, as the client's fully_qualified_namespace (it prefixes https://)."""
        return self.base_url.removeprefix("https://")

    def answer(self, request: Recorded) -> Reply:
        if not (request.header("Authorization") or "").startswith("Bearer "):
            return Reply(
                401, "<Error><Code>401</Code><Detail>MissingToken</Detail></Error>", {"Content-Type": ATOM}
            )
        name = request.path.strip("/")
        counts = self.queues.get(name)
        if request.method != "GET" or counts is None:
            return Reply(200, _EMPTY_FEED, {"Content-Type": ATOM})
        total = counts.active + counts.scheduled + counts.dead_lettered
        entry = _ENTRY.format(
            ns=self.namespace,
            name=name,
            sessions=str(counts.sessions).lower(),
            total=total,
            active=counts.active,
            dead=counts.dead_lettered,
            scheduled=counts.scheduled,
        )
        return Reply(200, entry, {"Content-Type": ATOM})
