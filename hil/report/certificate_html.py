"""The printable certificate: one self-contained HTML file rendered from the model.

No script, no web font, no external reference of any kind: it must open
offline years from now and print the same. The report id is in a header that
Chromium repeats on every printed page (``position: fixed`` in print media),
and the document ends with an explicit end-of-report line.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from hil.report.certificate_model import Certificate

CSS = """
body{font:13px/1.45 system-ui,sans-serif;margin:0 2.2em 3em;color:#111}
header.page{background:#fff;border-bottom:1px solid #999;
 padding:.4em 0;font-size:11px;display:flex;justify-content:space-between}
@media print{header.page{position:fixed;top:0;left:0;right:0;padding:.2em 2.2em}
 main{margin-top:2.5em} section{break-inside:avoid-page}}
h1{font-size:22px;margin:.8em 0 .2em} h2{font-size:16px;border-bottom:2px solid #333;
 margin-top:1.6em} table{border-collapse:collapse;width:100%;margin:.4em 0}
th,td{border:1px solid #bbb;padding:.25em .45em;text-align:left;vertical-align:top}
th{background:#eee} .verdict{font-size:20px;font-weight:700;padding:.5em .8em;
 border:3px solid;display:inline-block;margin:.6em 0}
.CERTIFIED,.CONFORMS,.passed{color:#0a6b1f} .NOT-CERTIFIED,.DOES-NOT-CONFORM,.failed{color:#b00}
.INCOMPLETE,.NOT-COVERED,.INCONCLUSIVE,.broken,.skipped{color:#a65f00}
.INVALID,.invalid{color:#6a1b9a} small{color:#555} svg{background:#fafafa;border:1px solid #ccc}
footer{margin-top:2em;border-top:2px solid #333;padding-top:.5em;font-weight:700}
"""


@dataclass(frozen=True)
class Plot:
    """A measurement's raw samples, drawn so a reader can see stability and the limit."""

    title: str
    unit: str
    samples: Sequence[tuple[float, float]]  # (wall-clock capture time, value)
    upper: float | None
    time_scale: float = 1.0  # wall seconds per plan second: the axis shows plan time


def plots_from_records(records: Iterable[Mapping[str, Any]]) -> list[Plot]:
    out: list[Plot] = []
    for rec in records:
        stack = list(rec.get("steps", []))
        while stack:
            step = stack.pop(0)
            stack.extend(step.get("children", []))
            m = step.get("measurement")
            if m and len(m.get("samples", [])) >= 2:
                limits = m.get("limits", {})
                out.append(
                    Plot(
                        title=f"{rec['plan_id']}{rec.get('instance', '')} {step['id']}: "
                        f"{m['name']}",
                        unit=m.get("unit") or "",
                        samples=[(float(t), float(v)) for t, v in m["samples"]],
                        upper=limits.get("max"),
                        time_scale=float(rec.get("time_scale", 1.0)) or 1.0,
                    )
                )
    return out


def svg_plot(plot: Plot, width: int = 560, height: int = 180) -> str:
    """An inline SVG line chart of ``plot`` with its upper limit dashed in red."""
    ts = [t for t, _ in plot.samples]
    vs = [v for _, v in plot.samples]
    lo = min(vs + ([plot.upper] if plot.upper is not None else []))
    hi = max(vs + ([plot.upper] if plot.upper is not None else []))
    span_v = (hi - lo) or abs(hi) or 1.0
    lo, hi = lo - 0.1 * span_v, hi + 0.1 * span_v
    t0, span_t = ts[0], (ts[-1] - ts[0]) or 1.0
    plan_span = span_t / plot.time_scale
    pad = 40

    def x(t: float) -> float:
        return pad + (t - t0) / span_t * (width - pad - 10)

    def y(v: float) -> float:
        return 10 + (hi - v) / (hi - lo) * (height - 30)

    points = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in plot.samples)
    parts = [
        f'<svg class="plot" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(plot.title)}</title>",
        f'<polyline fill="none" stroke="#1f4e9c" stroke-width="1.5" points="{points}"/>',
        f'<text x="2" y="14" font-size="10">{hi:.4g} {escape(plot.unit)}</text>',
        f'<text x="2" y="{height - 18}" font-size="10">{lo:.4g}</text>',
        f'<text x="{pad}" y="{height - 4}" font-size="10">0 s</text>',
        f'<text x="{width - 90}" y="{height - 4}" font-size="10">{plan_span:.4g} s (plan)</text>',
    ]
    if plot.upper is not None:
        yl = y(plot.upper)
        parts.append(
            f'<line x1="{pad}" x2="{width - 10}" y1="{yl:.1f}" y2="{yl:.1f}" '
            'stroke="#b00" stroke-dasharray="5,3"/>'
            f'<text x="{width - 120}" y="{yl - 3:.1f}" font-size="10" fill="#b00">'
            f"limit {plot.upper:g} {escape(plot.unit)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _cls(value: str) -> str:
    return escape(value.replace(" ", "-"))


def _table(head: Sequence[str], rows: Iterable[Sequence[str]], table_id: str = "") -> str:
    ident = f' id="{table_id}"' if table_id else ""
    out = [f"<table{ident}><thead><tr>"]
    out += [f"<th>{escape(h)}</th>" for h in head]
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _list(items: Iterable[str]) -> str:
    return "<ul>" + "".join(f"<li>{escape(i)}</li>" for i in items) + "</ul>"


def render(cert: Certificate, plots: Sequence[Plot] = ()) -> str:
    """The whole certificate as one HTML document."""
    c = cert
    v = c.verdict
    s: list[str] = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{escape(c.report_id)}</title><style>{CSS}</style></head><body>",
        f"<header class='page'><span>{escape(c.title)}</span>"
        f"<span>Report <b id='report-id'>{escape(c.report_id)}</b></span></header><main>",
        f"<h1>{escape(c.title)}</h1>",
        f"<div id='verdict' class='verdict {_cls(v.value)}'>{escape(v.value)}</div>",
        f"<p id='verdict-reason'>{escape(v.reason)}</p>",
        "<section><h2>Laboratory, bench and dates</h2>",
        _table(
            ["", ""],
            [
                ["Laboratory", escape(f"{c.lab.name} — {c.lab.location}")],
                ["Operator", escape(c.lab.operator)],
                ["Customer / product line", escape(c.customer or "—")],
                ["Bench", escape(f"{c.bench.id} ({c.bench.name}), file {c.bench.file}")],
                ["Bench file SHA-256", f"<code>{escape(c.bench.sha256)}</code>"],
                ["Time scale", f"{c.bench.time_scale:g}"],
                ["Tests performed", escape(f"{c.test_dates['first']} to {c.test_dates['last']}")],
                ["Issued", escape(c.issued)],
                ["hil version / commit", escape(f"{c.hil_version} / {c.git_commit}")],
            ],
        ),
        f"<p><i>{escape(c.statement)}</i></p></section>",
        "<section><h2>Items tested</h2>",
        _table(
            ["device", "type", "emulated", "identity", "definition SHA-256"],
            (
                [
                    escape(i.device),
                    escape(i.type),
                    "yes" if i.emulated else "no",
                    escape(", ".join(f"{k}={val}" for k, val in i.identity.items()) or "—"),
                    "<br>".join(
                        f"{escape(f)}: <code>{h[:16]}…</code>"
                        for f, h in i.definition_sha256.items()
                    ),
                ]
                for i in c.items
            ),
        ),
        "</section><section><h2>Methods</h2>",
        _table(
            ["plan", "title", "version", "file", "SHA-256", "instances"],
            (
                [
                    escape(m.plan_id),
                    escape(m.title),
                    escape(m.version),
                    escape(m.file),
                    f"<code>{m.sha256[:16]}…</code>",
                    escape(", ".join(m.instances)),
                ]
                for m in c.methods
            ),
        ),
        "</section><section><h2>Requirement traceability</h2>",
        _table(
            ["requirement", "class", "plans", "conformity", "key values", "evidence"],
            (
                [
                    f"<b>{escape(r.requirement)}</b><br><small>{escape(r.title)}</small>",
                    escape(r.classification),
                    escape(", ".join(r.plans) or "—"),
                    f"<b class='{_cls(r.conformity)}'>{escape(r.conformity)}</b>",
                    "<br>".join(escape(k) for k in r.key_values),
                    "<br>".join(escape(e) for e in r.evidence[:6]),
                ]
                for r in c.traceability
            ),
            "traceability",
        ),
        "<p>Plans that verify no declared requirement:</p>",
        _list(c.plans_without_requirements or ["none"]),
        "</section><section><h2>Results</h2>",
        _table(
            ["plan", "status", "requirements", "measured", "decision rule", "reason"],
            (
                [
                    escape(r.plan_id + r.instance) + f"<br><small>{escape(r.title)}</small>",
                    f"<b class='{_cls(r.status)}'>{escape(r.status.upper())}</b>",
                    escape(", ".join(r.requirements)),
                    "<br>".join(
                        escape(
                            f"{m.step}: {m.quantity} = {m.value}"
                            + (f" {m.unit}" if m.unit else "")
                            + (f" ± {m.uncertainty:g} (U95)" if m.uncertainty is not None else "")
                            + (f" [{m.limit}] {m.outcome}" if m.limit else "")
                        )
                        for m in r.measured
                    ),
                    f"<small>{escape(r.decision_rule)}</small>",
                    escape(r.reason),
                ]
                for r in c.results
            ),
            "results",
        ),
        "</section>",
    ]
    if plots:
        s.append("<section><h2>Measurements</h2>")
        for plot in plots:
            s.append(f"<figure><figcaption>{escape(plot.title)}</figcaption>")
            s.append(svg_plot(plot) + "</figure>")
        s.append("</section>")
    s += [
        "<section><h2>Confidence in the tool: canary runs</h2>",
        "<p>Each canary injects a known defect into an emulator; the tool must report the "
        "plan as FAILED at the stated step.</p>",
        _table(
            ["plan", "injected defect", "must report", "reported", "caught"],
            (
                [
                    escape(k.plan_id),
                    escape(", ".join(k.defects)),
                    escape(f"{k.expected_status} at {k.expected_step}"),
                    escape(f"{k.status} {k.failed_step}".strip()),
                    f"<b class='{'passed' if k.caught else 'failed'}'>"
                    f"{'yes' if k.caught else 'NO'}</b>",
                ]
                for k in c.canaries
            ),
            "canaries",
        ),
        "</section><section><h2>Deviations from the method</h2>",
        _list(c.deviations or ["none"]),
        "<h2>Environmental conditions</h2>",
        _list(c.environment),
        "<h2>Decision rules</h2>",
        _list(f"{k}: {val}" for k, val in c.decision_rules.items()),
        "</section><section><h2>Authorisation</h2>",
        _table(
            ["", ""],
            [
                ["Authorised by", escape(c.authorisation.authorised_by)],
                ["Role", escape(c.authorisation.role)],
                ["Date", escape(c.authorisation.date)],
                ["Seal", escape(c.authorisation.signature)],
            ],
        ),
        f"</section><footer>End of report {escape(c.report_id)}</footer></main></body></html>",
    ]
    return "\n".join(s)
