"""Incremental Server-Sent Events parsing for upstream streams."""

from dataclasses import dataclass


@dataclass
class Event:
    """One SSE event: its name (empty for the default) and its joined data lines."""

    event: str
    data: str


class SSEParser:
    """Split a byte stream into events; lines end with CRLF, LF or CR."""

    def __init__(self) -> None:
        self.buffer = b""
        self.event = ""
        self.data: list[str] = []

    def feed(self, chunk: bytes) -> list[Event]:
        """Return every event completed by chunk."""
        self.buffer += chunk
        events: list[Event] = []
        while True:
            line, found = self._next_line()
            if not found:
                return events
            if not line:
                if self.data or self.event:
                    events.append(Event(self.event, "\n".join(self.data)))
                self.event = ""
                self.data = []
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                self.data.append(value)
            elif name == "event":
                self.event = value

    def finish(self) -> list[Event]:
        """Return the last event if the stream ended without a blank line."""
        if self.buffer:
            self.buffer += b"\n\n"
            return self.feed(b"")
        if self.data:
            event = Event(self.event, "\n".join(self.data))
            self.data = []
            return [event]
        return []

    def _next_line(self) -> tuple[str, bool]:
        buffer = self.buffer
        lf = buffer.find(b"\n")
        cr = buffer.find(b"\r")
        if lf < 0 and cr < 0:
            return "", False
        if cr >= 0 and (lf < 0 or cr < lf):
            if cr == len(buffer) - 1:
                # A CR at the end may be the first half of a CRLF split across chunks.
                return "", False
            end = cr + 2 if buffer[cr + 1 : cr + 2] == b"\n" else cr + 1
            line = buffer[:cr]
        else:
            end = lf + 1
            line = buffer[:lf]
        self.buffer = buffer[end:]
        return line.decode("utf-8", "replace"), True


def encode_event(data: bytes, event: str | None = None) -> bytes:
    """Return one SSE event with the given name and single-line data."""
    if event:
        return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"
    return b"data: " + data + b"\n\n"
