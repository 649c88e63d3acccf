"""SIEM delivery by a real Celery worker through RabbitMQ."""

import os
import time
import uuid

import pytest
from celery import Celery
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.compliance.models import SiemDelivery, SiemDestination
from tests.compliance.receivers import SyslogReceiver
from tests.support import process
from tests.support.waiting import wait_for


@pytest.mark.shared_servers
@pytest.mark.skipif(
    not os.environ.get("NEXUS_TEST_BROKER_URL"),
    reason="needs a RabbitMQ broker (NEXUS_TEST_BROKER_URL)",
)
def test_worker_delivers_after_receiver_outage(db_rows, setup, cleanup):
    broker = os.environ["NEXUS_TEST_BROKER_URL"]
    queue = f"siem-{uuid.uuid4().hex[:8]}"
    receiver = SyslogReceiver("tcp").start()
    receiver.stop()
    destination = SiemDestination.objects.create(
        name=f"worker-{queue}",
        kind="syslog",
        host="127.0.0.1",
        port=receiver.port,
        transport="tcp",
        backoff_seconds=0.05,
    )
    cleanup.append(destination)
    ids = [f"req_{uuid.uuid4().hex}" for _ in range(4)]
    for request_id in ids:
        AuditEvent.objects.create(
            request_id=request_id,
            created_at=timezone.now(),
            status_code=200,
            ingress="chat",
            organization=setup.org,
        )
        SiemDelivery.objects.create(destination=destination, request_id=request_id)
    worker = process.celery_worker(queue, broker)
    sender = Celery(broker=broker)
    try:
        sender.send_task(
            "apps.compliance.tasks.deliver_siem_task",
            args=[destination.pk],
            queue=queue,
        )
        wait_for(
            lambda: (
                SiemDelivery.objects.filter(destination=destination, attempts=1).count()
                == 4
            )
        )
        assert receiver.messages == []

        receiver.start()
        time.sleep(0.2)
        sender.send_task(
            "apps.compliance.tasks.deliver_siem_task",
            args=[destination.pk],
            queue=queue,
        )
        wait_for(lambda: len(receiver.messages) == 4)
        wait_for(
            lambda: not SiemDelivery.objects.filter(destination=destination).exists()
        )
        time.sleep(0.5)
    finally:
        worker.terminate()
        worker.wait(15)
        receiver.stop()
        sender.close()

    assert sorted(receiver.event_ids()) == sorted(ids)
