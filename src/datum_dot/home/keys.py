"""A key pair per project: `$DATUM_HOME/keys/<project>.pem` (0600) and `<project>.pub`.

The private key is written in the OpenSSH private-key format (PEM-armoured, unencrypted, as
`ssh-keygen` writes it), the public key as one OpenSSH line (`ssh-ed25519 AAAA... comment`),
so both work with ssh and git as they are. Ed25519 by default; RSA with 4096 bits on request.
`cryptography` is imported inside the functions that need it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from datum_dot.errors import DatumHomeError
from datum_dot.home.privatefiles import (
    PRIVATE_FILE_MODE,
    ensure_datum_home,
    file_mode,
    unwritable_home,
    write_private,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

KEYS_DIR = "keys"
RSA_BITS = 4096
# Like every file under $DATUM_HOME, whatever it holds: its owner hands the key out.
PUBLIC_MODE = 0o600


class KeyType(StrEnum):
    """The kinds of key `dot init` makes."""

    ED25519 = "ed25519"
    RSA = "rsa"


class KeyAction(StrEnum):
    """What `ensure_key_pair` did."""

    CREATED = "created"
    UNCHANGED = "unchanged"
    REGENERATED = "regenerated"
    PUBLIC_RESTORED = "public key restored"


@dataclass(frozen=True)
class KeyFiles:
    """Where a project's key pair lives."""

    private: Path
    public: Path


@dataclass(frozen=True)
class KeyState:
    """What is on disk for a project's key.

    Attributes:
        files: The two paths.
        exists: The private key file exists.
        mode: Its permission bits, when it exists.
        key_type: `ed25519` or `rsa` (with bits) when it loads; None otherwise.
        problem: Why it does not load, or why the public key does not match it.
    """

    files: KeyFiles
    exists: bool
    mode: int | None = None
    key_type: str | None = None
    problem: str | None = None

    @property
    def is_private(self) -> bool:
        """Only its owner may read or write it (mode 0600)."""
        return self.mode == PRIVATE_FILE_MODE


def key_files(home: Path, project_id: str) -> KeyFiles:
    """The paths of a project's key pair."""
    folder = home / KEYS_DIR
    return KeyFiles(folder / f"{project_id}.pem", folder / f"{project_id}.pub")


def ensure_key_pair(
    home: Path, project_id: str, *, key_type: KeyType = KeyType.ED25519, force: bool = False
) -> KeyAction:
    """Make sure the project has a key pair; never replace a good one unless `force`.

    A missing public key is derived again from the private key; a missing private key means a
    new pair (the old public key is worthless without it).

    Args:
        home: `$DATUM_HOME`.
        project_id: The project's id (the file name).
        key_type: The kind of a new key.
        force: Replace an existing pair with a new one.

    Returns:
        What was done.

    Raises:
        DatumHomeError: The keys folder cannot be written, or an existing private key does not
            load (so its public key cannot be restored; pass `force` to replace it).
    """
    files = key_files(home, project_id)
    ensure_datum_home(home, subdir=KEYS_DIR)
    if files.private.exists() and not force:
        if files.public.exists():
            return KeyAction.UNCHANGED
        key = _load_private(files.private)
        _write_public(files, key, project_id, home)
        return KeyAction.PUBLIC_RESTORED
    action = KeyAction.REGENERATED if files.private.exists() else KeyAction.CREATED
    key = _generate(key_type)
    _write_pair(files, key, project_id, home)
    return action


def inspect_key(home: Path, project_id: str) -> KeyState:
    """Examine a project's key pair without changing it."""
    files = key_files(home, project_id)
    if not files.private.exists():
        return KeyState(files, exists=False)
    mode = file_mode(files.private)
    try:
        key = _load_private(files.private)
    except DatumHomeError as e:
        return KeyState(files, exists=True, mode=mode, problem=e.message)
    problem = _public_problem(files, key)
    return KeyState(files, exists=True, mode=mode, key_type=describe_key(key), problem=problem)


def public_key_line(key: PrivateKeyTypes, comment: str) -> str:
    """The OpenSSH public-key line of a private key, with a comment."""
    from cryptography.hazmat.primitives import serialization

    raw = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return f"{raw.decode('ascii')} {comment}\n"


def describe_key(key: PrivateKeyTypes) -> str:
    """`ed25519` or `rsa 4096`."""
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    if isinstance(key, ed25519.Ed25519PrivateKey):
        return KeyType.ED25519.value
    if isinstance(key, rsa.RSAPrivateKey):
        return f"{KeyType.RSA.value} {key.key_size}"
    return type(key).__name__


def _generate(key_type: KeyType) -> PrivateKeyTypes:
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    if key_type is KeyType.RSA:
        return rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    return ed25519.Ed25519PrivateKey.generate()


def _write_pair(files: KeyFiles, key: PrivateKeyTypes, project_id: str, home: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    try:
        write_private(files.private, pem)
    except OSError as e:
        raise unwritable_home(home, e) from e
    _write_public(files, key, project_id, home)


def _write_public(files: KeyFiles, key: PrivateKeyTypes, project_id: str, home: Path) -> None:
    line = public_key_line(key, f"datum-dot:{project_id}")
    try:
        write_private(files.public, line.encode("ascii"), mode=PUBLIC_MODE)
    except OSError as e:
        raise unwritable_home(home, e) from e


def _load_private(path: Path) -> PrivateKeyTypes:
    from cryptography.hazmat.primitives import serialization

    try:
        data = path.read_bytes()
        if b"OPENSSH PRIVATE KEY" in data:
            return serialization.load_ssh_private_key(data, password=None)
        return serialization.load_pem_private_key(data, password=None)
    except (OSError, ValueError, TypeError) as e:
        raise DatumHomeError(
            f"key {path} cannot be loaded: {e}",
            "replace it with a new key pair: dot init --force",
        ) from e


def _public_problem(files: KeyFiles, key: PrivateKeyTypes) -> str | None:
    if not files.public.exists():
        return f"public key {files.public} is missing"
    try:
        words = files.public.read_text(encoding="ascii").split()
    except (OSError, UnicodeDecodeError) as e:
        return f"public key {files.public} cannot be read: {e}"
    expected = public_key_line(key, "").split()
    if words[:2] != expected[:2]:
        return f"public key {files.public} does not belong to {files.private.name}"
    return None
