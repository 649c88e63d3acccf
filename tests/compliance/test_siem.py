"""SIEM forwarding to real local receivers, including outages and recovery.

Delivery is at least once: an event is deleted from the outbox only after the
receiver accepted its batch. Duplicates can occur only when a batch was partly
written before a connection failed, or when a worker stopped between a successful
send and its commit. Receivers drop them by event id. The tests below check that an
outage loses nothing and, for a clean refusal, duplicates nothing.
"""

import hashlib
import hmac
import time

import httpx
import orjson
import pytest

from apps.compliance.models import SiemDelivery, SiemDestination
from apps.compliance.services import deliver_due, requeue_dead, set_destination_token
from apps.compliance.tasks import forward_siem_task
from tests.compliance.receivers import SyslogReceiver
from tests.hooks.servers import HttpPeer
from tests.hooks.support import flush_compliance
from tests.support.waiting import wait_for


def make_destination(setup, cleanup, **fields) -> SiemDestination:
    token = fields.pop("token", "")
    destination = SiemDestination(
        name=f"dest-{time.monotonic_ns()}",
        organization=setup.org,
        backoff_seconds=0.05,
        **fields,
    )
    set_destination_token(destination, token)
    destination.full_clean()
    destination.save()
    cleanup.append(destination)
    setup.gateway.refresh()
    return destination


def send_requests(setup, count: int) -> list[str]:
    ids = []
    with httpx.Client(base_url=setup.gateway.url, timeout=30) as http:
        for index in range(count):
            response = http.post(
                "/v1/chat/completions",
                headers={"authorization": f"Bearer {setup.key}"},
                json={
                    "model": setup.chat,
                    "messages": [{"role": "user", "content": f"secret prompt {index}"}],
                },
            )
            assert response.status_code == 200
            ids.append(response.headers["x-request-id"])
    flush_compliance(setup.gateway)
    return ids


@pytest.fixture
def syslog():
    receivers = []

    def start(transport="tcp", cert_dir=None):
        receiver = SyslogReceiver(transport, cert_dir).start()
        receivers.append(receiver)
        return receiver

    yield start
    for receiver in receivers:
        receiver.stop()


@pytest.fixture
def http_receiver():
    peer = HttpPeer().start()
    peer.respond = lambda request: {"text": "Success", "code": 0}
    yield peer
    peer.close()


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_syslog_receives_rfc5424_with_cef(setup, cleanup, syslog, transport):
    receiver = syslog(transport)
    make_destination(
        setup,
        cleanup,
        kind="syslog",
        host="127.0.0.1",
        port=receiver.port,
        transport=transport,
    )

    ids = send_requests(setup, 3)

    wait_for(lambda: len(receiver.messages) == 3)
    assert sorted(receiver.event_ids()) == sorted(ids)
    message = receiver.messages[0].decode()
    assert message.startswith("<134>1 ")
    assert " nexus - request [nexus@32473 eventId=" in message
    assert "CEF:0|Nexus|Nexus Gateway|1.0|request|LLM request|2|" in message
    assert f"cs1={setup.org.pk}" in message
    assert "secret prompt" not in message


def test_syslog_over_tls(setup, cleanup, syslog, tmp_path):
    receiver = syslog("tls", tmp_path)
    make_destination(
        setup,
        cleanup,
        kind="syslog",
        host="127.0.0.1",
        port=receiver.port,
        transport="tls",
        ca_certificate=receiver.ca_pem,
    )

    ids = send_requests(setup, 2)

    wait_for(lambda: len(receiver.messages) == 2)
    assert sorted(receiver.event_ids()) == sorted(ids)


def test_syslog_tls_with_untrusted_certificate_is_not_delivered(
    setup, cleanup, syslog, tmp_path
):
    receiver = syslog("tls", tmp_path)
    destination = make_destination(
        setup,
        cleanup,
        kind="syslog",
        host="127.0.0.1",
        port=receiver.port,
        transport="tls",
    )

    send_requests(setup, 1)

    row = SiemDelivery.objects.get(destination=destination)
    assert row.attempts == 1
    assert "CERTIFICATE_VERIFY_FAILED" in row.last_error
    assert receiver.messages == []


def test_splunk_hec_receives_batches_with_token(setup, cleanup, http_receiver):
    make_destination(
        setup,
        cleanup,
        kind="splunk_hec",
        url=http_receiver.url + "/services/collector/event",
        token="hec-token-1",
    )

    ids = send_requests(setup, 3)

    wait_for(
        lambda: sum(len(r["body"].splitlines()) for r in http_receiver.requests) == 3
    )
    request = http_receiver.requests[0]
    assert request["headers"]["authorization"] == "Splunk hec-token-1"
    events = [
        orjson.loads(line)
        for r in http_receiver.requests
        for line in r["body"].splitlines()
    ]
    assert sorted(event["event"]["id"] for event in events) == sorted(ids)
    assert events[0]["sourcetype"] == "nexus:audit"


def test_webhook_receives_signed_batches(setup, cleanup, http_receiver):
    make_destination(
        setup,
        cleanup,
        kind="webhook",
        url=http_receiver.url + "/siem",
        token="signing-secret",
    )

    ids = send_requests(setup, 2)

    wait_for(lambda: sum(len(r["json"]["events"]) for r in http_receiver.requests) == 2)
    request = http_receiver.requests[0]
    expected = hmac.new(b"signing-secret", request["body"], hashlib.sha256).hexdigest()
    assert request["headers"]["x-nexus-signature"] == f"sha256={expected}"
    assert sorted(
        e["id"] for r in http_receiver.requests for e in r["json"]["events"]
    ) == sorted(ids)


def test_syslog_outage_and_recovery_loses_and_duplicates_nothing(
    setup, cleanup, syslog
):
    receiver = syslog("tcp")
    destination = make_destination(
        setup,
        cleanup,
        kind="syslog",
        host="127.0.0.1",
        port=receiver.port,
        transport="tcp",
    )
    receiver.stop()

    ids = send_requests(setup, 5)
    rows = list(SiemDelivery.objects.filter(destination=destination))
    assert len(rows) == 5
    assert all(row.attempts >= 1 and row.state == "pending" for row in rows)

    receiver.start()
    time.sleep(0.2)
    assert forward_siem_task() == 1

    wait_for(lambda: len(receiver.messages) == 5)
    wait_for(lambda: not SiemDelivery.objects.filter(destination=destination).exists())
    assert sorted(receiver.event_ids()) == sorted(ids)


def test_http_outage_and_recovery(setup, cleanup, http_receiver):
    destination = make_destination(
        setup, cleanup, kind="webhook", url=http_receiver.url + "/siem"
    )
    http_receiver.status = 503

    ids = send_requests(setup, 4)
    rows = SiemDelivery.objects.filter(destination=destination)
    assert rows.count() == 4
    assert all(row.attempts >= 1 and row.state == "pending" for row in rows)
    assert all(request["json"] is not None for request in http_receiver.requests)
    refused = len(http_receiver.requests)

    http_receiver.status = 200
    time.sleep(0.2)
    while deliver_due(destination.pk):
        pass

    accepted = [
        e["id"] for r in http_receiver.requests[refused:] for e in r["json"]["events"]
    ]
    assert sorted(accepted) == sorted(ids)
    assert not SiemDelivery.objects.filter(destination=destination).exists()


def test_dead_letter_after_last_attempt_and_requeue(setup, cleanup, http_receiver):
    destination = make_destination(
        setup, cleanup, kind="webhook", url=http_receiver.url + "/siem", max_attempts=2
    )
    http_receiver.status = 500

    send_requests(setup, 1)
    time.sleep(0.2)
    deliver_due(destination.pk)

    row = SiemDelivery.objects.get(destination=destination)
    assert row.state == SiemDelivery.DEAD
    assert row.attempts == 2
    assert row.last_error == "webhook responded with HTTP 500"

    http_receiver.status = 200
    assert requeue_dead([destination.pk]) == 1
    assert deliver_due(destination.pk) == 1
