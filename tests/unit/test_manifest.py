"""The signed manifest: any file added, removed or changed after sealing is named."""

from __future__ import annotations

import hashlib
import json
import stat
from pathlib import Path

import pytest

from hil.errors import ConfigError
from hil.report.manifest import (
    MANIFEST,
    keygen,
    load_private_key,
    load_public_key,
    seal,
    verify,
)


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    return keygen(tmp_path / "keys" / "lab.pem")


@pytest.fixture
def results(tmp_path: Path) -> Path:
    root = tmp_path / "reports"
    (root / "hil-results").mkdir(parents=True)
    (root / "hil-results" / "E1.json").write_text('{"status": "passed"}', encoding="utf-8")
    (root / "allure-results").mkdir()
    (root / "allure-results" / "a-result.json").write_text("{}", encoding="utf-8")
    (root / "summary.txt").write_text("1 passed\n", encoding="utf-8")
    return root


def test_private_key_is_owner_only_and_never_overwritten(keys: tuple[Path, Path]) -> None:
    private, public = keys
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert b"PUBLIC KEY" in public.read_bytes()
    with pytest.raises(ConfigError, match="already there"):
        keygen(private)


def test_a_sealed_set_verifies(keys: tuple[Path, Path], results: Path) -> None:
    seal(results, load_private_key(keys[0]), subject="bench emulated-home")
    document = json.loads((results / MANIFEST).read_text())
    assert sorted(document["manifest"]["files"]) == [
        "allure-results/a-result.json",
        "hil-results/E1.json",
        "summary.txt",
    ]
    check = verify(results, load_public_key(keys[1]))
    assert check.ok, check.lines()
    assert check.trusted is True
    assert check.signer.startswith("ed25519:")


@pytest.mark.parametrize(
    ("tamper", "words"),
    [
        (
            lambda r: (r / "hil-results" / "E1.json").write_text('{"status": "failed"}'),
            "hil-results/E1.json: changed after signing",
        ),
        (
            lambda r: (r / "hil-results" / "E1.json").unlink(),
            "hil-results/E1.json: removed after signing",
        ),
        (
            lambda r: (r / "allure-results" / "extra.json").write_text("{}"),
            "allure-results/extra.json: added after signing",
        ),
    ],
    ids=["changed", "removed", "added"],
)
def test_tampering_is_named(
    keys: tuple[Path, Path], results: Path, tamper: object, words: str
) -> None:
    seal(results, load_private_key(keys[0]))
    assert callable(tamper)
    tamper(results)
    check = verify(results)
    assert not check.ok
    assert any(words in line for line in check.lines()), check.lines()


def test_editing_the_manifest_breaks_the_signature(keys: tuple[Path, Path], results: Path) -> None:
    seal(results, load_private_key(keys[0]))
    # a forger updates the listed hash to match his edit: the signature no longer holds
    (results / "summary.txt").write_text("all passed\n")
    document = json.loads((results / MANIFEST).read_text())
    document["manifest"]["files"]["summary.txt"]["sha256"] = hashlib.sha256(
        b"all passed\n"
    ).hexdigest()
    (results / MANIFEST).write_text(json.dumps(document))
    check = verify(results)
    assert not check.changed
    assert not check.signature_ok
    assert any("signature does not match" in line for line in check.lines())


def test_a_set_signed_by_another_key_is_not_trusted(
    tmp_path: Path, keys: tuple[Path, Path], results: Path
) -> None:
    other_private, _ = keygen(tmp_path / "other.pem")
    seal(results, load_private_key(other_private))
    check = verify(results, load_public_key(keys[1]))
    assert check.signature_ok and check.trusted is False
    assert not check.ok
    assert any("not the given key" in line for line in check.lines())


def test_unsealed_and_malformed_manifests(results: Path) -> None:
    assert "never sealed" in verify(results).lines()[0]
    (results / MANIFEST).write_text("{not json")
    assert "unreadable or malformed" in verify(results).lines()[0]


def test_passphrase_protected_key(
    tmp_path: Path, results: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HIL_SIGNING_PASSPHRASE", "correct horse")
    private, public = keygen(tmp_path / "locked.pem")
    assert b"ENCRYPTED" in private.read_bytes()
    seal(results, load_private_key(private))
    assert verify(results, load_public_key(public)).ok
    monkeypatch.setenv("HIL_SIGNING_PASSPHRASE", "wrong")
    with pytest.raises(ConfigError, match="not a usable private key"):
        load_private_key(private)
