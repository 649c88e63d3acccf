"""AWS event-stream framing, as Bedrock's ConverseStream sends it.

A message is a 12-byte prelude (total length, headers length, and the CRC32 of those
eight bytes, all big-endian), the headers, the payload and a CRC32 of everything
before it. Each header is a one-byte name length, the name, a one-byte value type
(7 for a string), a two-byte value length and the value.
"""

import logging
import struct
import zlib
from collections.abc import Mapping
from typing import Any

import orjson

logger = logging.getLogger(__name__)

_STRING_HEADER = 7


def encode_frame(headers: Mapping[str, str], payload: bytes) -> bytes:
    """Encode one event-stream message with string headers and both CRC32 checksums."""
    encoded_headers = b""
    for name, value in headers.items():
        name_bytes, value_bytes = name.encode(), value.encode()
        encoded_headers += struct.pack(">B", len(name_bytes)) + name_bytes
        encoded_headers += struct.pack(">BH", _STRING_HEADER, len(value_bytes))
        encoded_headers += value_bytes
    total = 12 + len(encoded_headers) + len(payload) + 4
    prelude = struct.pack(">II", total, len(encoded_headers))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    message = prelude + encoded_headers + payload
    return message + struct.pack(">I", zlib.crc32(message))


def event_frame(event_type: str, data: dict[str, Any]) -> bytes:
    """Encode a ConverseStream event with Bedrock's padding field ``p``."""
    payload = orjson.dumps(
        {**data, "p": "abcdefghijklmnopqrstuvwxyz"[: len(event_type)]}
    )
    return encode_frame(
        {
            ":event-type": event_type,
            ":content-type": "application/json",
            ":message-type": "event",
        },
        payload,
    )


def exception_frame(exception_type: str, message: str) -> bytes:
    """Encode a ConverseStream exception, such as ``throttlingException``."""
    return encode_frame(
        {
            ":exception-type": exception_type,
            ":content-type": "application/json",
            ":message-type": "exception",
        },
        orjson.dumps({"message": message}),
    )
