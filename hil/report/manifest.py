"""The sealed result set: a SHA-256 manifest of every file, signed with Ed25519.

QA signs off on a directory of results (run records, Allure results and
report, the certificate). ``seal`` hashes every file in it and signs the
manifest; ``verify`` recomputes the hashes and checks the signature, naming
each file that was added, removed or changed since. The signature covers the
canonical JSON of the manifest body (sorted keys, no spaces), so any edit of
the manifest itself breaks it too.

The public key travels inside the manifest for convenience, which proves only
that the set is unchanged since *someone* signed it; pass the lab's public
key to ``verify`` to prove *who* signed it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

import hil
from hil.errors import ConfigError

MANIFEST = "manifest.json"
FORMAT = "hil-manifest/1"
PASSPHRASE_ENV = "HIL_SIGNING_PASSPHRASE"  # encrypts the private key file when set


@dataclass
class Verification:
    """What ``verify`` found; ``ok`` only when nothing differs and the signature holds."""

    directory: Path
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    signature_ok: bool = False
    signer: str = ""  # fingerprint of the key that signed
    trusted: bool | None = None  # None: no expected key was given
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            self.signature_ok
            and not (self.added or self.removed or self.changed or self.problems)
            and self.trusted is not False
        )

    def lines(self) -> list[str]:
        out = [f"{self.directory}: {p}" for p in self.problems]
        out += [f"{self.directory / name}: added after signing" for name in self.added]
        out += [f"{self.directory / name}: removed after signing" for name in self.removed]
        out += [f"{self.directory / name}: changed after signing" for name in self.changed]
        if not self.signature_ok and not self.problems:
            out.append(f"{self.directory / MANIFEST}: the signature does not match the manifest")
        if self.trusted is False:
            out.append(f"{self.directory / MANIFEST}: signed by {self.signer}, not the given key")
        return out


# --- keys ---------------------------------------------------------------------------------


def fingerprint(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()[:32]


def keygen(private_path: Path, public_path: Path | None = None) -> tuple[Path, Path]:
    """Write a new Ed25519 key pair (private key readable by its owner only)."""
    if private_path.exists():
        raise ConfigError(f"{private_path}: a key is already there; refusing to overwrite it")
    public_path = public_path or private_path.with_suffix(".pub.pem")
    key = Ed25519PrivateKey.generate()
    passphrase = os.environ.get(PASSPHRASE_ENV)
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase.encode())
        if passphrase
        else serialization.NoEncryption()
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    private_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    public_path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private_path, public_path


def load_private_key(path: Path) -> Ed25519PrivateKey:
    passphrase = os.environ.get(PASSPHRASE_ENV)
    try:
        key = serialization.load_pem_private_key(
            path.read_bytes(), password=passphrase.encode() if passphrase else None
        )
    except (OSError, ValueError, TypeError) as err:
        raise ConfigError(f"{path}: not a usable private key ({err})") from err
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path}: an Ed25519 key is needed, not {type(key).__name__}")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as err:
        raise ConfigError(f"{path}: not a usable public key ({err})") from err
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"{path}: an Ed25519 key is needed, not {type(key).__name__}")
    return key


# --- hashing, sealing, verifying ------------------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def result_files(directory: Path) -> list[str]:
    """Every regular file under ``directory`` except the manifest, as sorted POSIX paths."""
    found = []
    for path in directory.rglob("*"):
        rel = path.relative_to(directory).as_posix()
        if rel == MANIFEST or path.is_symlink() or not path.is_file():
            continue
        found.append(rel)
    return sorted(found)


def hashes(directory: Path, files: Iterable[str]) -> dict[str, dict[str, Any]]:
    return {
        rel: {"sha256": _sha256(directory / rel), "bytes": (directory / rel).stat().st_size}
        for rel in files
    }


def _canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def seal(directory: Path, key: Ed25519PrivateKey, *, subject: str = "") -> Path:
    """Hash every file of ``directory``, sign, and write ``directory/manifest.json``."""
    if not directory.is_dir():
        raise ConfigError(f"{directory}: no such result directory")
    body: dict[str, Any] = {
        "format": FORMAT,
        "subject": subject,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "hil_version": hil.__version__,
        "algorithm": "Ed25519 over the canonical JSON of this object (sorted keys, compact)",
        "files": hashes(directory, result_files(directory)),
    }
    public = key.public_key()
    document = {
        "manifest": body,
        "signature": base64.b64encode(key.sign(_canonical(body))).decode(),
        "public_key": base64.b64encode(
            public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        ).decode(),
        "signer": fingerprint(public),
    }
    path = directory / MANIFEST
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def verify(directory: Path, expected_key: Ed25519PublicKey | None = None) -> Verification:
    """Check ``directory`` against its signed manifest; every difference is named."""
    result = Verification(directory)
    path = directory / MANIFEST
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        body = document["manifest"]
        signature = base64.b64decode(document["signature"], validate=True)
        raw_key = base64.b64decode(document["public_key"], validate=True)
        listed: dict[str, dict[str, Any]] = body["files"]
        public = Ed25519PublicKey.from_public_bytes(raw_key)
    except FileNotFoundError:
        result.problems.append(f"no {MANIFEST}: the result set was never sealed")
        return result
    except (OSError, ValueError, KeyError, TypeError) as err:
        result.problems.append(f"{MANIFEST} is unreadable or malformed ({err})")
        return result
    result.signer = fingerprint(public)
    try:
        public.verify(signature, _canonical(body))
        result.signature_ok = True
    except InvalidSignature:
        result.signature_ok = False
    if expected_key is not None:
        result.trusted = fingerprint(expected_key) == result.signer
    present = set(result_files(directory))
    result.added = sorted(present - set(listed))
    result.removed = sorted(set(listed) - present)
    now = hashes(directory, sorted(present & set(listed)))
    result.changed = sorted(
        rel for rel, info in now.items() if info["sha256"] != listed[rel].get("sha256")
    )
    return result
