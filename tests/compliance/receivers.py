"""Syslog receivers on loopback (TCP, TLS, UDP) that record each message."""

import datetime
import re
import socket
import ssl
import threading
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

EVENT_ID = re.compile(rb'eventId="([^"]+)"')


class SyslogReceiver:
    """Accept RFC 5424 messages; TCP and TLS frames are octet-counted (RFC 6587)."""

    def __init__(self, transport: str = "tcp", cert_dir: Path | None = None) -> None:
        self.transport = transport
        self.messages: list[bytes] = []
        self.lock = threading.Lock()
        self.port = 0
        self.sock: socket.socket | None = None
        self.running = False
        self.ca_pem = ""
        self.context = None
        if transport == "tls":
            self.ca_pem, self.context = _tls_server_context(cert_dir)

    def start(self) -> "SyslogReceiver":
        kind = socket.SOCK_DGRAM if self.transport == "udp" else socket.SOCK_STREAM
        self.sock = socket.socket(socket.AF_INET, kind)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.port = self.sock.getsockname()[1]
        if kind == socket.SOCK_STREAM:
            self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        """Stop listening; connections fail from the moment this returns."""
        self.running = False
        if self.sock is not None:
            # close() alone leaves the kernel socket listening until the accept()
            # blocked in the serving thread returns, so early senders would succeed.
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()
            self.sock = None
            self.thread.join(2)

    def event_ids(self) -> list[str]:
        with self.lock:
            return [
                EVENT_ID.search(message).group(1).decode() for message in self.messages
            ]

    def _serve(self) -> None:
        sock = self.sock
        while self.running:
            try:
                if self.transport == "udp":
                    data, _ = sock.recvfrom(65535)
                    with self.lock:
                        self.messages.append(data)
                    continue
                connection, _ = sock.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._read, args=(connection,), daemon=True).start()

    def _read(self, connection: socket.socket) -> None:
        connection.settimeout(5)
        try:
            if self.context is not None:
                connection = self.context.wrap_socket(connection, server_side=True)
            buffer = b""
            while True:
                data = connection.recv(65536)
                if not data:
                    break
                buffer += data
                buffer = self._frames(buffer)
        except (OSError, ssl.SSLError):
            pass
        finally:
            connection.close()

    def _frames(self, buffer: bytes) -> bytes:
        while b" " in buffer:
            length, rest = buffer.split(b" ", 1)
            size = int(length)
            if len(rest) < size:
                break
            with self.lock:
                self.messages.append(rest[:size])
            buffer = rest[size:]
        return buffer


def _tls_server_context(cert_dir: Path) -> tuple[str, ssl.SSLContext]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    cert_path, key_path = cert_dir / "cert.pem", cert_dir / "key.pem"
    cert_path.write_bytes(cert_pem)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return cert_pem.decode(), context
