"""``sidrce``: collect, validate, gate and serve DMCA's operations telemetry."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from dmca_core.errors import DmcaError, UsageError
from dmca_core.stdio import drop_stdout
from sidrce import __version__
from sidrce import fti as F
from sidrce.gate import KEY_HINT, PLAINTEXT_HINT, first_line, printable, rejection_hint


def _baseline(text: str) -> F.Baseline:
    try:
        return F.parse_baseline(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _nonneg(text: str) -> float:
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(x) and x >= 0):
        raise argparse.ArgumentTypeError(f"{text!r}: expected a finite number >= 0")
    return x


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a port number from 0 to 65535")
    return port


class _Parser(argparse.ArgumentParser):
    """Bad arguments are one line on stderr (``sidrce: error: ...``) and exit 2, without the usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"sidrce: error: {message} (see {self.prog} --help)\n")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "files", nargs="+", metavar="FILE", help="telemetry files (JSON lines, gzip, or encrypted)"
    )
    p.add_argument("--baseline", type=_baseline, help="fixed baseline 'cost,qps,latency' (default: medians)")
    p.add_argument("--lambda-asdpi", type=_nonneg, help="λ decay per day (default 0.1)")
    p.add_argument(
        "--allow-plaintext",
        action="store_true",
        help="count plaintext lines in a file that began encrypted or while a key is set",
    )
    _closed(p)


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def _closed(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--closed",
        action="store_true",
        help="every writer has finished: an encrypted stream without its final envelope is truncated",
    )


def parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="sidrce", description=__doc__)
    ap.add_argument("--version", action="version", version=f"sidrce {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("collect", help="summarise telemetry: medians, FTI, λ")
    _common(p)
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p = sub.add_parser("validate", help="check every line; print FILE:LINE: reason for each bad one")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--allow-plaintext", action="store_true")
    _closed(p)
    p = sub.add_parser(
        "gate",
        help="exit 1 when the telemetry fails the FTI bound or grade",
        epilog="exit codes: 0 PASS; 1 FAIL (the bound, the grade or --min-records); 2 the gate could not "
        "judge: bad arguments or settings, a file that cannot be read, an internal error",
    )
    _common(p)
    p.add_argument("--max-fti", type=_nonneg, help="fail when fti_avg exceeds this")
    p.add_argument("--fail-on", choices=("FAIL", "WARN"), help="fail on a group graded this or worse")
    p.add_argument(
        "--min-records",
        type=_count,
        default=1,
        help="fail with fewer valid records, e.g. the run's step count: a cut or partial file (default 1)",
    )
    p = sub.add_parser(
        "serve",
        help="serve /report and /metrics over HTTP (Starlette + uvicorn)",
        epilog="exit codes: 0 stopped by the server itself; 2 a setting or address that cannot work "
        "(one line, before the port is bound); 130 Ctrl-C (SIGINT); SIGTERM ends it as a signal "
        "(143 in a shell). SIGHUP only makes it look at the file at once.",
    )
    p.add_argument("--telemetry", help="file to follow (default $SIDRCE_TELEMETRY or ops_telemetry.jsonl)")
    p.add_argument(
        "--host", default="127.0.0.1", help="bind address (default 127.0.0.1; 0.0.0.0 is explicit)"
    )
    p.add_argument("--port", type=_port, default=8080)
    p.add_argument("--baseline", type=_baseline)
    p.add_argument("--lambda-asdpi", type=_nonneg)
    p.add_argument("--allow-plaintext", action="store_true")
    return ap


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    from sidrce.collector import settings_from_env

    baseline, asdpi = settings_from_env(os.environ)
    return {
        "baseline": args.baseline if args.baseline is not None else baseline,
        "lambda_asdpi": args.lambda_asdpi if args.lambda_asdpi is not None else asdpi,
    }


def _human(report: dict[str, Any]) -> str:
    def f(x: float | None, fmt: str = ".4f") -> str:
        return "-" if x is None else format(x, fmt)

    m = report["medians"]
    lines = [
        f"records {report['count']}  rejected {sum(report['rejected'].values())}"
        + "".join(f" {k}={v}" for k, v in report["rejected"].items()),
        f"medians  cost ${f(m['infra_cost_usd'], '.6g')}  qps {f(m['qps'], '.6g')}  "
        f"latency_p95 {f(m['latency_p95_ms'], '.6g')} ms",
        f"fti_avg {f(report['fti_avg'])}  worst {report['fti_grade_worst'] or '-'}  "
        f"lambda_effective {f(report['lambda_effective'])}",
        f"{'domain':<16} {'hypothesis':<16} {'count':>8} {'fti':>8} grade",
    ]
    for g in report["groups"]:
        d, h = printable(g["domain"]), printable(g["hypothesis"])
        lines.append(f"{d:<16} {h:<16} {g['count']:>8} {f(g['fti']):>8} {g['grade']}")
    studies = [g for g in report["groups"] if g["north_star"]["records"]]
    if studies:
        # the effect and its CI are the latest study's; the scores are medians over the studies
        # (the dashboard's Studies table says the same)
        lines.append(
            f"{'domain':<16} {'hypothesis':<16} {'latest effect':>13} {'95% CI (latest)':>23} "
            f"{'median reliability':>18} {'median SR9':>10} {'median DI2':>10}"
        )
    for g in studies:
        ns = g["north_star"]
        last = ns["latest"]
        ci = f"[{f(last.get('ci_low'), '.4g')}, {f(last.get('ci_high'), '.4g')}]"
        d, h = printable(g["domain"]), printable(g["hypothesis"])
        # several studies' effects in one group: no effect, and the count of studies instead
        effect = (
            f"mixed: {ns['effect_studies']}"
            if ns["effects_withheld"]
            else f(last.get("causal_effect"), ".4g")
        )
        lines.append(
            f"{d:<16} {h:<16} {effect:>13} {ci:>23} "
            f"{f(ns['median_reliability_score'], '.3f'):>18} {f(ns['median_SR9'], '.3f'):>10} "
            f"{f(ns['median_DI2'], '.3f'):>10}"
        )
    # what each shown effect is the effect of (a number without its intervention means little)
    named = [
        g
        for g in studies
        if not g["north_star"]["effects_withheld"] and g["north_star"]["effect_of"]["intervention"]
    ]
    if named:
        lines.append("effects of:")
    for g in named:
        of = g["north_star"]["effect_of"]
        raw_group = f"{g['domain']}/{g['hypothesis']}"
        group = _short(raw_group)
        outcome = f" on {_short(of['outcome'])}" if of["outcome"] else ""
        study = f"  (study {_short(of['study'])})" if of["study"] and of["study"] != raw_group else ""
        lines.append(f"  {group}: {_short(of['intervention'])}{outcome}{study}")
    for s in report["open_stream_examples"]:
        lines.append(_open_line(s))
    return "\n".join(lines)


def _short(text: str, limit: int = 120) -> str:
    """``text`` printable and at most about ``limit`` characters (the schema bounds no string)."""
    text = printable(text)
    return text if len(text) <= limit else f"{text[: limit - 1]}…"


def _why_no_records(report: dict[str, Any]) -> list[str]:
    """stderr lines for ``collect`` when every line read was rejected: the first rejection (as
    ``validate`` prints it) and, when the reasons point to one, what probably went wrong. Reasons
    and details name lines, fields and key ids, never a key."""
    out = []
    examples = report["rejected_examples"]
    if examples:
        e = examples[0]
        detail = f" ({printable(e['detail'])})" if e["detail"] else ""
        out.append(f"sidrce: first rejected line: {printable(e['file'])}:{e['line']}: {e['reason']}{detail}")
    hint = rejection_hint(report["rejected"])
    if hint == "not telemetry":
        what = f"is {printable(examples[0]['file'])} a" if examples else "is this a"
        out.append(
            f"sidrce: hint: no line was a telemetry record: {what} DMCA telemetry file "
            "(like ops_telemetry.jsonl)?"
        )
    elif hint == "wrong key":
        out.append(f"sidrce: hint: the telemetry was {KEY_HINT}")
    elif hint == "plaintext":
        out.append(f"sidrce: hint: {PLAINTEXT_HINT}")
    return out


def _open_line(s: dict[str, Any]) -> str:
    return (
        f"{printable(s['file'])}:{s['line']}: open stream {s['stream']} ({s['mode']} mode, {s['records']} records, "
        "no final envelope: still being written, or cut; --closed treats it as truncated)"
    )


def _run(args: argparse.Namespace) -> int:
    from sidrce.collector import Aggregator

    if args.command == "serve":
        from sidrce.server import serve

        return serve(args)
    if args.command == "validate":
        bad = 0
        printing = True

        def show(file: str, line: int, reason: str, detail: str) -> None:
            nonlocal bad, printing
            bad += 1
            if not printing:
                return
            try:
                print(f"{printable(file)}:{line}: {reason}" + (f" ({printable(detail)})" if detail else ""))
            except BrokenPipeError:
                # `validate FILE | head`: the reader has seen enough, but the exit status is the
                # verdict on the whole file, so the rest is still checked, without printing
                printing = False
                drop_stdout()

        agg = Aggregator(allow_plaintext=args.allow_plaintext, on_reject=show, closed=args.closed)
        agg.read(args.files)
        agg.flush()
        for s in agg.open_streams:
            print(_open_line(s), file=sys.stderr)
        opened = f", {len(agg.open_streams)} open streams" if agg.open_streams else ""
        print(f"{agg.cols.n} valid records, {bad} bad lines{opened}", file=sys.stderr)
        return 1 if bad else 0
    settings = _settings(args)
    agg = Aggregator(allow_plaintext=args.allow_plaintext, closed=args.closed).read(args.files)
    report = agg.report(**settings)
    if args.command == "collect":
        print(
            json.dumps(report, indent=None if args.json else 2, allow_nan=False)
            if args.json
            else _human(report)
        )
        # lines were read and none was a record (a CSV, a wrong key): not a summary of anything
        if report["count"] == 0 and report["rejected"]:
            for line in _why_no_records(report):
                print(line, file=sys.stderr)
            return 1
        return 0
    if args.max_fti is None and args.fail_on is None:
        raise UsageError("gate: give --max-fti and/or --fail-on")
    from sidrce.gate import verdict

    passed, why = verdict(report, max_fti=args.max_fti, fail_on=args.fail_on, min_records=args.min_records)
    print(f"sidrce gate: {'PASS' if passed else 'FAIL'}: {why}")
    return 0 if passed else 1


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    code = 0
    try:
        code = _run(args)
        sys.stdout.flush()  # a closed pipe shows here, where it is handled, not at interpreter exit
        return code
    except BrokenPipeError:  # the reader went away (`| head`)
        drop_stdout()
        return code
    except DmcaError as exc:
        print(f"sidrce: error: {printable(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # noqa: BLE001 - a crash must not look like the gate's FAIL (exit 1)
        if os.environ.get("SIDRCE_TRACEBACK"):
            raise
        first = first_line(exc)
        files = " ".join(getattr(args, "files", None) or [str(getattr(args, "telemetry", "") or "")])
        print(
            f"sidrce: internal error reading {printable(files)}: {type(exc).__name__}: {printable(first)} "
            "(SIDRCE_TRACEBACK=1 shows the traceback)",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
