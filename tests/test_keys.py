"""Key pairs and the webhook token: files, modes, formats, loaded back with cryptography."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from datum_dot.errors import DatumHomeError
from datum_dot.home import keys, tokens
from datum_dot.home.keys import KeyAction, KeyType


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def load_pair(files: keys.KeyFiles) -> tuple[object, object, str]:
    """The private key, the public key and the public line's comment, parsed by cryptography."""
    private = serialization.load_ssh_private_key(files.private.read_bytes(), password=None)
    line = files.public.read_text()
    kind, blob, comment = line.split()
    public = serialization.load_ssh_public_key(f"{kind} {blob}".encode())
    return private, public, comment


def raw_public(key: object) -> bytes:
    return key.public_bytes(  # type: ignore[attr-defined, no-any-return]
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )


def test_keys_ed25519_by_default_openssh_format_private_mode(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert keys.ensure_key_pair(home, "shop") is KeyAction.CREATED
    files = keys.key_files(home, "shop")
    assert files.private == home / "keys" / "shop.pem"
    assert files.public == home / "keys" / "shop.pub"
    assert mode(files.private) == 0o600
    assert mode(home / "keys") == 0o700
    assert files.private.read_text().startswith("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    private, public, comment = load_pair(files)
    assert isinstance(private, ed25519.Ed25519PrivateKey)
    assert isinstance(public, ed25519.Ed25519PublicKey)
    assert raw_public(private.public_key()) == raw_public(public)
    assert comment == "datum-dot:shop"
    assert files.public.read_text().startswith("ssh-ed25519 AAAA")


def test_keys_rsa_is_4096_bits(tmp_path: Path) -> None:
    keys.ensure_key_pair(tmp_path, "shop", key_type=KeyType.RSA)
    files = keys.key_files(tmp_path, "shop")
    private, public, _ = load_pair(files)
    assert isinstance(private, rsa.RSAPrivateKey)
    assert isinstance(public, rsa.RSAPublicKey)
    assert private.key_size == 4096
    assert raw_public(private.public_key()) == raw_public(public)
    assert mode(files.private) == 0o600
    assert keys.inspect_key(tmp_path, "shop").key_type == "rsa 4096"


def test_keys_second_call_changes_nothing_force_replaces(tmp_path: Path) -> None:
    keys.ensure_key_pair(tmp_path, "shop")
    files = keys.key_files(tmp_path, "shop")
    before = files.private.read_bytes(), files.public.read_bytes()
    assert keys.ensure_key_pair(tmp_path, "shop", key_type=KeyType.RSA) is KeyAction.UNCHANGED
    assert (files.private.read_bytes(), files.public.read_bytes()) == before
    assert keys.ensure_key_pair(tmp_path, "shop", force=True) is KeyAction.REGENERATED
    assert files.private.read_bytes() != before[0]
    assert mode(files.private) == 0o600


def test_keys_missing_public_key_is_restored_from_private(tmp_path: Path) -> None:
    keys.ensure_key_pair(tmp_path, "shop")
    files = keys.key_files(tmp_path, "shop")
    original = files.public.read_text()
    files.public.unlink()
    assert keys.inspect_key(tmp_path, "shop").problem == f"public key {files.public} is missing"
    assert keys.ensure_key_pair(tmp_path, "shop") is KeyAction.PUBLIC_RESTORED
    assert files.public.read_text() == original


def test_keys_inspect_reports_mode_and_mismatched_public_key(tmp_path: Path) -> None:
    keys.ensure_key_pair(tmp_path, "a")
    keys.ensure_key_pair(tmp_path, "b")
    files = keys.key_files(tmp_path, "a")
    files.private.chmod(0o644)
    state = keys.inspect_key(tmp_path, "a")
    assert (state.exists, state.mode, state.is_private) == (True, 0o644, False)
    assert state.problem is None
    files.public.write_text(keys.key_files(tmp_path, "b").public.read_text())
    assert "does not belong" in (keys.inspect_key(tmp_path, "a").problem or "")


def test_keys_unloadable_private_key_is_reported_not_replaced(tmp_path: Path) -> None:
    keys.ensure_key_pair(tmp_path, "shop")
    files = keys.key_files(tmp_path, "shop")
    files.private.write_text("not a key\n")
    files.public.unlink()
    assert "cannot be loaded" in (keys.inspect_key(tmp_path, "shop").problem or "")
    with pytest.raises(DatumHomeError, match="cannot be loaded"):
        keys.ensure_key_pair(tmp_path, "shop")
    assert files.private.read_text() == "not a key\n"


def test_keys_unwritable_home_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(DatumHomeError, match="cannot write to DATUM_HOME") as info:
        keys.ensure_key_pair(blocker / "home", "shop")
    assert "DATUM_HOME" in info.value.hint


def test_tokens_created_once_private_and_rotated(tmp_path: Path) -> None:
    assert tokens.read_webhook_token(tmp_path) is None
    token = tokens.ensure_webhook_token(tmp_path)
    assert len(token) >= 43
    assert mode(tokens.token_path(tmp_path)) == 0o600
    assert tokens.ensure_webhook_token(tmp_path) == token
    assert tokens.read_webhook_token(tmp_path) == token
    rotated = tokens.rotate_webhook_token(tmp_path)
    assert rotated != token
    assert tokens.read_webhook_token(tmp_path) == rotated
    assert mode(tokens.token_path(tmp_path)) == 0o600


def test_tokens_empty_file_counts_as_missing(tmp_path: Path) -> None:
    tokens.token_path(tmp_path).write_text("\n")
    assert tokens.read_webhook_token(tmp_path) is None
    assert tokens.ensure_webhook_token(tmp_path)


def test_set_up_core_imports_no_cli_rich_or_cryptography_and_help_stays_light() -> None:
    import subprocess
    import sys

    core = (
        "datum_dot.home.userconfig, datum_dot.home.keys, datum_dot.home.tokens, datum_dot.home.registration, "
        "datum_dot.preflight, datum_dot.preflight.fixes, datum_dot.home.effective, "
        "datum_dot.home.configkeys, datum_dot.config.schema, datum_dot.scheduling.cronlines"
    )
    probe = (
        "import sys; import {mods}; print(sorted({{m.split('.')[0] if not m.startswith('datum_dot') "
        "else m for m in sys.modules if m.startswith(({bad}))}}))"
    )
    for mods, bad in (
        (core, "'rich', 'datum_dot.cli', 'cryptography', 'argparse'"),
        ("datum_dot.cli.main", "'pydantic', 'yaml', 'cryptography', 'rich', 'git', 'dbt'"),
    ):
        code = probe.format(mods=mods, bad=bad)
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
        )
        assert result.stdout.strip() == "[]", (mods, result.stdout)
