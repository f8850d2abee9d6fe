"""``hil report …``: keygen, certificate, verify, merge — and the end of ``hil certify``.

A result set is a directory: ``hil-results/`` (plan records, with their
``evidence/``), ``canaries/`` (canary records), ``allure-results/`` and
``allure-report/``, and after ``certificate``: ``certificate/`` and the
signed ``manifest.json`` over all of it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

from hil.bench.loader import load_bench
from hil.errors import ConfigError
from hil.plan.loader import load_plan
from hil.plan.tools import plan_files
from hil.report.allure_files import git_commit
from hil.report.canary import load_canaries
from hil.report.certificate import Signing, build
from hil.report.certificate_html import plots_from_records, render
from hil.report.certificate_model import Certificate, schema_text
from hil.report.manifest import (
    fingerprint,
    keygen,
    load_private_key,
    load_public_key,
    seal,
    verify,
)
from hil.report.record import read_records
from hil.report.requirements import load_requirements
from hil.secrets import redact

KEY_ENV = "HIL_SIGNING_KEY"  # path of the lab's private key when --key is not given
RECORDS, CANARIES, CERTIFICATE = "hil-results", "canaries", "certificate"


def expected_plans(roots: list[Path], bench_path: Path) -> list[str]:
    """Every plan instance under ``roots`` (``E2[speed_kmh=30]``): what a full run covers."""
    bench = load_bench(bench_path)
    out = []
    for path in plan_files(roots):
        if path.suffix not in (".yaml", ".yml"):
            continue  # hand-written pytest tests run too, but are not plans
        loaded = load_plan(path)
        out += [i.id for i in loaded.instances(bench.parameter_overrides(loaded.id))]
    return out


def write_certificate(
    results: Path,
    *,
    bench_path: Path,
    requirements: Path | None,
    canaries: Path | None,
    key_path: Path | None,
    plan_roots: list[Path],
    authorised_by: str,
    role: str,
    customer: str = "",
    seal_now: bool = True,
) -> Certificate:
    """Build certificate.{json,html} (+ schema) in ``results/certificate`` and seal the set
    (unless ``seal_now`` is false: the caller adds files first, then calls ``seal``)."""
    bench = load_bench(bench_path)
    key = load_private_key(key_path) if key_path else None
    signature = (
        f"manifest.json (SHA-256 of every file) signed with Ed25519 key "
        f"{fingerprint(key.public_key())}"
        if key
        else "NOT SEALED: no signing key was given"
    )
    records = read_records(results / RECORDS)
    cert = build(
        bench=bench,
        records=records,
        canary_records=read_records(results / CANARIES),
        expected_canaries=load_canaries(canaries) if canaries else [],
        requirements=load_requirements(requirements) if requirements else [],
        root=results,
        signing=Signing(authorised_by, role, signature),
        customer=customer,
        expected_plans=expected_plans(plan_roots, bench_path) if plan_roots else [],
        git_commit=git_commit(Path.cwd()),
    )
    out = results / CERTIFICATE
    out.mkdir(parents=True, exist_ok=True)
    (out / "certificate.json").write_text(
        redact(json.dumps(cert.model_dump(mode="json"), indent=1)) + "\n", encoding="utf-8"
    )
    (out / "certificate.schema.json").write_text(schema_text(), encoding="utf-8")
    (out / "certificate.html").write_text(
        redact(render(cert, plots_from_records(records))),
        encoding="utf-8",
    )
    if key and seal_now:
        seal(results, key, subject=cert.report_id)
    return cert


def merge(out: Path, sources: list[Path]) -> int:
    """Copy the records (and evidence) of several result sets into ``out``; returns the count."""
    count = 0
    for source in sources:
        for sub in (RECORDS, CANARIES):
            src = source / sub
            if not src.is_dir():
                continue
            for path in src.rglob("*"):
                if path.is_file():
                    target = out / sub / path.relative_to(src)
                    if target.exists() and target.read_bytes() != path.read_bytes():
                        raise ConfigError(f"{path}: a different {target} is already merged")
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, target)
                    count += path.suffix == ".json" and path.parent == src
    return count


def _key_arg(value: str | None) -> Path | None:
    chosen = value or os.environ.get(KEY_ENV)
    return Path(chosen) if chosen else None


def _certificate(args: argparse.Namespace) -> int:
    results = Path(args.results)
    if args.merge:
        merged = merge(results, [Path(p) for p in args.merge])
        print(f"merged {merged} plan records into {results}")
    cert = write_certificate(
        results,
        bench_path=Path(args.bench),
        requirements=Path(args.requirements) if args.requirements else None,
        canaries=Path(args.canaries) if args.canaries else None,
        key_path=_key_arg(args.key),
        plan_roots=[Path(p) for p in args.plans],
        authorised_by=args.authorised_by,
        role=args.role,
        customer=args.customer,
    )
    print(f"certificate {cert.report_id}: {cert.verdict.value} — {cert.verdict.reason}")
    print(f"  {results / CERTIFICATE / 'certificate.html'}")
    return 0 if cert.verdict.value == "CERTIFIED" else 1


def _verify(args: argparse.Namespace) -> int:
    key = load_public_key(Path(args.public_key)) if args.public_key else None
    check = verify(Path(args.results), key)
    for line in check.lines():
        print(line)
    if check.ok:
        trust = "" if check.trusted else " (signer not checked: pass --public-key)"
        print(f"{args.results}: intact, signed by {check.signer}{trust}")
        return 0
    return 1


def _keygen(args: argparse.Namespace) -> int:
    private, public = keygen(Path(args.output))
    print(f"private key: {private} (keep it secret)\npublic key:  {public}")
    return 0


def add_certificate_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--requirements", default="testplans/requirements.yaml")
    parser.add_argument("--canaries", default="testplans/canaries.yaml")
    parser.add_argument("--key", default=None, help=f"signing key (default: ${KEY_ENV})")
    parser.add_argument("--authorised-by", default="not yet authorised")
    parser.add_argument("--role", default="QA lead")
    parser.add_argument("--customer", default="")


def add_report_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    report = sub.add_parser("report", help="certificate, signatures and result sets")
    rsub = report.add_subparsers(dest="report_command", required=True)
    gen = rsub.add_parser("keygen", help="make an Ed25519 key pair for sealing result sets")
    gen.add_argument("-o", "--output", default="hil-signing-key.pem")
    gen.set_defaults(func=_keygen)
    ver = rsub.add_parser("verify", help="check a sealed result set; names every change")
    ver.add_argument("results")
    ver.add_argument("--public-key", default=None, help="the lab's public key (PEM)")
    ver.set_defaults(func=_verify)
    cert = rsub.add_parser("certificate", help="(re)build and seal the certificate of a set")
    cert.add_argument("results", nargs="?", default="reports")
    cert.add_argument("--bench", default="benches/emulated.yaml")
    cert.add_argument("--plans", action="append", default=[], help="plan roots run in full")
    cert.add_argument(
        "--merge", action="append", default=[], metavar="DIR", help="merge this result set first"
    )
    add_certificate_options(cert)
    cert.set_defaults(func=_certificate)
    mrg = rsub.add_parser("merge", help="merge result sets into one and certify it")
    mrg.add_argument("results", help="the merged result set (created)")
    mrg.add_argument("sources", nargs="+")
    mrg.add_argument("--bench", default="benches/emulated.yaml")
    mrg.add_argument("--plans", action="append", default=[])
    add_certificate_options(mrg)
    mrg.set_defaults(func=lambda a: _certificate(argparse.Namespace(**vars(a), merge=a.sources)))
