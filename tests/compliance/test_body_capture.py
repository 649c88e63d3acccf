"""Body capture: redacted bodies only, 256 KiB inline, the rest in the spill store."""

import openai
import orjson
import pytest
from django.test import override_settings

from apps.compliance.models import BodyCapture, ComplianceSettings
from apps.compliance.spill import read_spill
from apps.compliance.writer import INLINE_LIMIT
from tests.hooks.support import flush_compliance

PII = "ssn 078-05-1120 and mail jane.placeholder@example.test"


@pytest.fixture
def capturing(setup, cleanup):
    row = ComplianceSettings.objects.create(organization=setup.org, capture_bodies=True)
    cleanup.append(row)
    setup.gateway.refresh()
    return row


@pytest.fixture
def oai(setup):
    return openai.OpenAI(
        base_url=setup.gateway.openai_base, api_key=setup.key, max_retries=0
    )


def captured(setup, response) -> BodyCapture:
    flush_compliance(setup.gateway)
    return BodyCapture.objects.get(request_id=response.headers["x-request-id"])


def full_body(capture: BodyCapture, part: str) -> bytes:
    inline = getattr(capture, f"{part}_body").encode()
    key = getattr(capture, f"{part}_spill_key")
    return inline + (read_spill(key) if key else b"")


def test_captured_bodies_are_the_redacted_ones(oai, setup, capturing, policy):
    policy.add("pii", "request")
    policy.add("pii", "response")

    response = oai.chat.completions.with_raw_response.create(
        model=setup.chat, messages=[{"role": "user", "content": PII}]
    )
    capture = captured(setup, response)

    assert "[SSN]" in capture.request_body
    assert "078-05-1120" not in capture.request_body + capture.response_body
    assert "jane.placeholder" not in capture.request_body + capture.response_body
    assert (
        orjson.loads(capture.response_body)["choices"][0]["message"]["content"]
        == "Echo: ssn [SSN] and mail [EMAIL]"
    )


def test_streamed_answer_is_captured_after_redaction(
    oai, setup, capturing, policy, fake_provider
):
    policy.add("pii", "response")
    fake_provider.enqueue(None, {"reply": {"text": "card 4111 1111 1111 1111 ok"}})

    response = oai.chat.completions.with_raw_response.create(
        model=setup.chat, messages=[{"role": "user", "content": "hi"}], stream=True
    )
    list(response.parse())
    capture = captured(setup, response)

    assert "4111" not in capture.response_body
    assert "[CARD]" in capture.response_body


def test_blocked_request_body_is_not_stored(oai, setup, capturing, policy):
    policy.add(
        "rules", "request", options={"rules": [{"id": "k", "keyword": "falcon"}]}
    )

    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(
            model=setup.chat, messages=[{"role": "user", "content": f"falcon {PII}"}]
        )

    flush_compliance(setup.gateway)
    capture = BodyCapture.objects.get(
        request_id=caught.value.response.headers["x-request-id"]
    )
    assert capture.request_body == ""
    assert capture.note.startswith("blocked")


def test_no_capture_without_the_org_setting(oai, setup):
    response = oai.chat.completions.with_raw_response.create(
        model=setup.chat, messages=[{"role": "user", "content": "hi"}]
    )

    flush_compliance(setup.gateway)
    assert not BodyCapture.objects.filter(
        request_id=response.headers["x-request-id"]
    ).exists()


def test_large_body_spills_past_256_kib_to_the_filesystem(
    oai, setup, capturing, settings, tmp_path
):
    settings.NEXUS_SPILL_DIR = tmp_path
    text = "é" * 200_000

    response = oai.chat.completions.with_raw_response.create(
        model=setup.chat, messages=[{"role": "user", "content": text}]
    )
    capture = captured(setup, response)

    assert len(capture.request_body.encode()) <= INLINE_LIMIT
    assert capture.request_bytes > INLINE_LIMIT
    assert capture.request_spill_key
    assert (tmp_path / capture.request_spill_key).exists()
    assert orjson.loads(full_body(capture, "request"))["messages"][0]["content"] == text


@pytest.fixture
def s3_bucket():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    import boto3

    boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
    ).create_bucket(Bucket="spill")
    with override_settings(
        NEXUS_SPILL_S3_BUCKET="spill",
        NEXUS_SPILL_S3_ENDPOINT_URL=endpoint,
        NEXUS_SPILL_S3_REGION="us-east-1",
        NEXUS_SPILL_S3_ACCESS_KEY_ID="test",
        NEXUS_SPILL_S3_SECRET_ACCESS_KEY="test",
    ):
        yield endpoint
    server.stop()


def test_large_body_spills_to_s3_compatible_storage(oai, setup, capturing, s3_bucket):
    text = "x" * (INLINE_LIMIT + 5000)

    response = oai.chat.completions.with_raw_response.create(
        model=setup.chat, messages=[{"role": "user", "content": text}]
    )
    capture = captured(setup, response)

    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=s3_bucket,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
    )
    stored = s3.get_object(Bucket="spill", Key=capture.request_spill_key)["Body"].read()
    assert (capture.request_body.encode() + stored) == full_body(capture, "request")
    assert orjson.loads(full_body(capture, "request"))["messages"][0]["content"] == text
