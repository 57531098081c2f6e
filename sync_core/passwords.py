"""Password verifiers: argon2id with the parameters chosen in ``docs/security.md``.

One hasher for everything that makes or checks a verifier: the server at sign-in, the
device offline, the fixture generator. A verifier records its own parameters, so one made
with other parameters (an older store) still verifies.

- :data:`HASHER`: argon2id, 19 MiB, 2 passes, 1 lane (OWASP's first recommended option for
  interactive sign-in); about 21 ms a verification on one core of a 2-core server.
- :func:`verify`: True when ``password`` matches ``verifier``; False for a wrong password,
  an empty or unreadable verifier (never raises for those).
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MEMORY_KIB = 19 * 1024
TIME_COST = 2
PARALLELISM = 1
HASHER = PasswordHasher(time_cost=TIME_COST, memory_cost=MEMORY_KIB, parallelism=PARALLELISM)


def verify(verifier: str | None, password: str) -> bool:
    """True when ``password`` matches the argon2 ``verifier`` (any parameters)."""
    if not verifier:
        return False
    try:
        return HASHER.verify(verifier, password)
    except (VerificationError, InvalidHashError):
        return False
