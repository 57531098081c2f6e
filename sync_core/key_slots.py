"""Key slots: the ship's data key wrapped by one mustering user's password (docs/security.md,
'Keys: the ship data key and key slots').

A slot is text, ``argon2id-aes256gcm$T$M$P$SALT$NONCE$WRAPPED`` (base64 without padding): the
key encryption key is argon2id of the password with the slot's own 16-byte salt, ``T`` passes
over ``M`` KiB in ``P`` lanes; the data key is sealed with it by AES-256-GCM. The server makes
slots when a password is set; the device opens the signed-in user's slot. Shared by both
because both must agree on the format.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable

from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sync_core import passwords

KIND = "argon2id-aes256gcm"
# The ship data key beside a ship's Parquet files, imported by the server (fixtures write it).
SHIP_KEY_FILE = "ship.key"
DATA_KEY_BYTES = 32
# The password verifiers' argon2id parameters (OWASP's first option: 19 MiB, 2 passes, 1
# lane, ~21 ms a guess here): a slot is no easier to guess than a verifier and costs a
# handheld no more memory at sign-in (docs/security.md, "Key slots: their cost").
TIME_COST = passwords.TIME_COST
MEMORY_KIB = passwords.MEMORY_KIB
LANES = passwords.PARALLELISM
# A slot asking for more than this (a hostile or broken one) is refused unopened.
MEMORY_KIB_MAX = 1_048_576
TIME_COST_MAX = 10
_SALT_BYTES = 16
_NONCE_BYTES = 12
_AD = b"muster ship data key"


class SlotRefused(Exception):
    """The slot does not open with this password (wrong password, or not a slot)."""


def new_data_key() -> bytes:
    """A fresh random ship data key (32 bytes)."""
    return os.urandom(DATA_KEY_BYTES)


def make_slot(password: str, data_key: bytes, randbytes: Callable[[int], bytes] = os.urandom) -> str:
    """``data_key`` wrapped by ``password`` (see the module). ``randbytes(n)`` supplies the salt
    and nonce (default ``os.urandom``; the fixture generator passes a seeded one so its files
    are reproducible)."""
    salt, nonce = randbytes(_SALT_BYTES), randbytes(_NONCE_BYTES)
    kek = _kek(password, salt, TIME_COST, MEMORY_KIB, LANES)
    wrapped = AESGCM(kek).encrypt(nonce, data_key, _AD)
    parts = [KIND, str(TIME_COST), str(MEMORY_KIB), str(LANES), *(_b64(b) for b in (salt, nonce, wrapped))]
    return "$".join(parts)


def open_slot(slot: str, password: str) -> bytes:
    """The data key ``slot`` wraps. Raises SlotRefused for a wrong password or a malformed slot
    (costs one argon2id derivation at the slot's own parameters, ~21 ms for a new slot,
    unless the slot is malformed)."""
    try:
        kind, time_cost, memory, lanes, salt, nonce, wrapped = slot.split("$")
        t, m, p = int(time_cost), int(memory), int(lanes)
        raw = [_unb64(part) for part in (salt, nonce, wrapped)]
    except ValueError as exc:
        raise SlotRefused("not a key slot") from exc
    if kind != KIND or not (1 <= t <= TIME_COST_MAX and 8 * p <= m <= MEMORY_KIB_MAX and 1 <= p <= 16):
        raise SlotRefused("not a key slot this device opens")
    try:
        return AESGCM(_kek(password, raw[0], t, m, p)).decrypt(raw[1], raw[2], _AD)
    except (InvalidTag, ValueError) as exc:
        raise SlotRefused("the password does not open this key slot") from exc


def _kek(password: str, salt: bytes, time_cost: int, memory: int, lanes: int) -> bytes:
    return hash_secret_raw(
        password.encode(), salt, time_cost=time_cost, memory_cost=memory, parallelism=lanes,
        hash_len=DATA_KEY_BYTES, type=Type.ID,
    )  # fmt: skip


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
