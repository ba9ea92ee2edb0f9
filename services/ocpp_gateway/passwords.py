"""Charger passwords (OCPP security profile 1), stored only as salted scrypt hashes.

A hash looks like ``scrypt$131072$8$1$<salt, base64>$<key, base64>``: the cost parameters travel with it,
so a hash made with older parameters (``scrypt$16384$8$1$...``) is still verified with its own, and the
cost of new hashes can be raised without breaking stored ones. New hashes follow OWASP's guidance for
scrypt (N=2^17, r=8, p=1): one verification takes 128 MiB of memory and a few hundred milliseconds of
CPU, which is why the gateway verifies one password at a time, in a thread of its own, and only after
the login throttle (:mod:`.throttle`) let the attempt through. Make a hash with::

    ampmq hash-password                                  # asks for the password
    ampmq hash-password 'secret'                         # or takes it as an argument
    python -m services.ocpp_gateway.passwords            # the same without the CLI
"""

from __future__ import annotations

import argparse
import base64
import getpass
import hashlib
import hmac
import secrets
import sys

SCHEME = "scrypt"
#: OWASP Password Storage Cheat Sheet: scrypt with N=2^17, r=8, p=1.
DEFAULT_N = 2**17
DEFAULT_R = 8
DEFAULT_P = 1
_KEY_LEN = 32
#: Largest memory one stored hash may make scrypt use (128 * r * N bytes): 1 GiB.
_MAX_MEMORY = 2**30


class PasswordHashError(ValueError):
    """A stored password hash cannot be read."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def scrypt_memory(n: int, r: int, p: int) -> int:
    """Bytes scrypt needs for these parameters (its V array plus the p blocks it mixes)."""
    return 128 * r * (n + p + 2)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=_KEY_LEN,
                          maxmem=scrypt_memory(n, r, p) + 2**20)


def hash_password(password: str, *, n: int = DEFAULT_N, r: int = DEFAULT_R, p: int = DEFAULT_P) -> str:
    """A salted scrypt hash of ``password`` to put in the config as a charger's ``password_hash``."""
    if not password:
        raise ValueError("a charger password must not be empty")
    salt = secrets.token_bytes(16)
    return f"{SCHEME}${n}${r}${p}${_b64(salt)}${_b64(_scrypt(password, salt, n, r, p))}"


def parse_hash(stored: str) -> tuple[int, int, int, bytes, bytes]:
    """Split a stored hash into its parameters; raise :class:`PasswordHashError` if it is not one of ours."""
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != SCHEME:
        raise PasswordHashError("a password hash is 'scrypt$N$r$p$salt$key' (make one with "
                                "ampmq hash-password)")
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt, key = base64.b64decode(parts[4], validate=True), base64.b64decode(parts[5], validate=True)
    except ValueError as exc:
        raise PasswordHashError(f"password hash is damaged: {exc}") from exc
    if (n < 2 or n & (n - 1) or not 1 <= r <= 64 or not 1 <= p <= 16 or len(key) != _KEY_LEN
            or scrypt_memory(n, r, p) > _MAX_MEMORY):
        raise PasswordHashError("password hash has parameters out of range")
    return n, r, p, salt, key


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches the stored hash, computed with the hash's own parameters
    (constant-time comparison)."""
    n, r, p, salt, key = parse_hash(stored)
    return hmac.compare_digest(_scrypt(password, salt, n, r, p), key)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    password = args[0] if args else getpass.getpass("charger password: ")
    try:
        print(hash_password(password))
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``ampmq hash-password [PASSWORD]`` (an extra command of ``shared.cli``)."""
    parser = subparsers.add_parser("hash-password", help="print the password_hash of an OCPP charger password")
    parser.add_argument("password", nargs="?", help="the password (asked for when left out)")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace, _config: object) -> int:
    return main([args.password] if args.password else [])


if __name__ == "__main__":
    raise SystemExit(main())
