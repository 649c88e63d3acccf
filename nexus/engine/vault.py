"""AES-256-GCM encryption of stored credentials with a key ring.

Each ciphertext records the id of the key that sealed it, and the caller binds the
row's identity in as associated data, so a ciphertext copied to another row fails to
open.
"""

import base64
import binascii
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12


class VaultError(Exception):
    """A key ring is malformed or a ciphertext cannot be opened."""


@dataclass(frozen=True)
class Sealed:
    """A ciphertext with the id of the key that sealed it."""

    key_id: str
    blob: str


class KeyRing:
    """Named 256-bit keys, one of them active for new encryptions."""

    def __init__(self, keys: dict[str, bytes], active: str) -> None:
        for key_id, key in keys.items():
            if len(key) != 32:
                raise VaultError(
                    f"Vault key {key_id!r} must be 32 bytes, got {len(key)}."
                )
        if active not in keys:
            raise VaultError(f"Active vault key {active!r} is not in the key ring.")
        self.keys = keys
        self.active = active

    @classmethod
    def parse(cls, spec: str, active: str = "") -> "KeyRing":
        """Build a ring from "id:base64key,id2:base64key"; the active id defaults to the last."""
        keys: dict[str, bytes] = {}
        for item in spec.split(","):
            item = item.strip()
            if not item:
                continue
            key_id, sep, encoded = item.partition(":")
            if not sep or not key_id:
                raise VaultError(
                    "Vault keys must look like id:base64key, separated by commas."
                )
            try:
                keys[key_id] = base64.b64decode(encoded, validate=True)
            except binascii.Error:
                raise VaultError(f"Vault key {key_id!r} is not valid base64.") from None
        if not keys:
            raise VaultError("The vault key ring is empty.")
        return cls(keys, active or list(keys)[-1])

    def seal(self, plaintext: str, associated_data: str) -> Sealed:
        """Encrypt plaintext under the active key."""
        nonce = os.urandom(NONCE_BYTES)
        cipher = AESGCM(self.keys[self.active])
        data = cipher.encrypt(
            nonce, plaintext.encode("utf-8"), associated_data.encode("utf-8")
        )
        return Sealed(self.active, base64.b64encode(nonce + data).decode("ascii"))

    def open(self, sealed: Sealed, associated_data: str) -> str:
        """Decrypt a ciphertext; raise VaultError if the key is unknown or the data altered."""
        key = self.keys.get(sealed.key_id)
        if key is None:
            raise VaultError(f"Vault key {sealed.key_id!r} is not in the key ring.")
        raw = base64.b64decode(sealed.blob)
        try:
            plaintext = AESGCM(key).decrypt(
                raw[:NONCE_BYTES], raw[NONCE_BYTES:], associated_data.encode("utf-8")
            )
        except InvalidTag:
            raise VaultError(
                "Credential failed authentication: wrong key or altered data."
            ) from None
        return plaintext.decode("utf-8")
