"""The ``dmca`` command line.

Exit codes: 0 success, 1 a study failed (the others still ran), 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import __version__
from .errors import DmcaError, PluginError, UsageError
from .stdio import drop_stdout


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse exits 2 too; keep it to one line
        self.exit(2, f"{self.prog}: error: {message}\n")


# argparse value types: a bad value is reported by argparse as "argument --x: ...", exit 2, naming
# the option the user typed (not the config field it ends up in)


def _finite_float(text: str) -> float:
    x = float(text)  # ValueError: argparse says "invalid float value: 'x'"
    if not math.isfinite(x):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return x


_finite_float.__name__ = "float"  # the name argparse shows for a value that is no number at all


def _alpha(text: str) -> float:
    x = _finite_float(text)
    if not 0 < x < 1:
        raise argparse.ArgumentTypeError(f"must lie strictly between 0 and 1, got {text!r}")
    return x


_alpha.__name__ = "float"


def _int_at_least(low: int) -> Callable[[str], int]:
    def convert(text: str) -> int:
        n = int(text)  # ValueError: argparse says "invalid int value: 'x'"
        if n < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {n}")
        return n

    convert.__name__ = "int"
    return convert


_seed = _int_at_least(0)  # numpy's generators take only non-negative seeds


def _warning_line(message: Any, category: Any, filename: str, lineno: int, line: str | None = None) -> str:
    return f"{message}\n"


@contextmanager
def _progress(enabled: bool, label: str) -> Any:
    """A rich progress bar on a terminal; nothing when piped or quiet."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=True,
        console=Console(stderr=True),  # stdout stays clean for the summary line and pipes
    ) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


@contextmanager
def _stages(enabled: bool) -> Iterator[Callable[[str], None]]:
    """A spinner naming the stage under way (one estimate's PC can take minutes on a wide
    table), with the time elapsed; a no-op when piped or quiet."""
    if not enabled:
        yield lambda what: None
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}", markup=False),  # a path such as d[/x]/h.csv is no markup
        TimeElapsedColumn(),
        transient=True,
        console=Console(stderr=True),
    ) as bar:
        task = bar.add_task("starting", total=None)

        def stage(what: str) -> None:
            bar.update(task, description=what)
            bar.refresh()  # show each stage at once, however short, rather than at the next tick

        yield stage


def _want_progress(args: argparse.Namespace) -> bool:
    return not getattr(args, "quiet", False) and sys.stderr.isatty()


# --- run ----------------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    import attrs

    from .config import load_config

    cfg = load_config(args.config)
    if args.address:
        cfg = attrs.evolve(cfg, executor=attrs.evolve(cfg.executor, address=args.address))
    if args.seed is not None:
        cfg = attrs.evolve(cfg, seed=args.seed)
    with _from_the_command_line("executor.address", "--address", bool(args.address)):
        if args.dry_run:
            return _dry_run(cfg, args)
        with _progress(_want_progress(args), "steps") as progress:
            summary = _run(cfg, args, progress)
    return _report_run(summary, args)


@contextmanager
def _from_the_command_line(key: str, option: str, given: bool) -> Iterator[None]:
    """Errors about ``key`` name ``option`` when the command line gave the value (they named the
    config's line, where the value is not)."""
    try:
        yield
    except UsageError as exc:
        message = str(exc)
        at = message.find(f"{key}:")
        if not given or at < 0:
            raise
        raise UsageError(f"{option}:{message[at + len(key) + 1 :]}") from None


def _run(cfg: Any, args: argparse.Namespace, progress: Any) -> Any:
    from .runner import run_experiment

    return run_experiment(
        cfg,
        config_path=str(args.config),
        out_dir=Path(args.out) if args.out else None,
        telemetry_path=Path(args.telemetry) if args.telemetry else None,
        estimator=args.estimator,
        executor=args.executor,
        workers=args.workers,
        progress=progress,
    )


def _report_run(summary: Any, args: argparse.Namespace) -> int:
    """The summary line, warnings and failed steps of a finished run; its exit code."""
    failed = summary.failed
    written = f"results in {summary.out_dir}/ (results.json, summary.md, forest.png)"
    if summary.kept_earlier is not None:
        written = f"{summary.out_dir}/ {summary.kept_earlier}"
    if not args.quiet:
        print(
            f"{summary.ok}/{len(summary.outcomes)} steps ok with estimator {summary.estimator}; "
            f"{written}; telemetry appended to {summary.telemetry_path}"
        )
    from .report import warnings_by_study

    for study, warning in warnings_by_study([o.result for o in summary.outcomes]):  # once a study
        print(f"dmca: warning: study {study}: {warning}", file=sys.stderr)
    for o in failed:
        r = o.result
        print(f"dmca: study {r['study']} step {r['step']} failed: {o.error}", file=sys.stderr)
    if summary.kept_earlier is not None:  # said even with --quiet: the folder is not this run's
        print(f"dmca: no step finished; {written}", file=sys.stderr)
    return 1 if failed else 0


def _dry_run(cfg: Any, args: argparse.Namespace) -> int:
    """Check what ``dmca run`` checks before its first step and say what it would run; write nothing."""
    from . import plugins
    from .runner import check_telemetry_file, checked_out_dir, checked_run

    config_path = str(args.config)
    cfg, est_name = checked_run(
        cfg,
        config_path=config_path,
        telemetry_path=Path(args.telemetry) if args.telemetry else None,
        estimator=args.estimator,
        executor=args.executor,
        workers=args.workers,
    )
    out = checked_out_dir(cfg, Path(args.out) if args.out else None, config_path)
    field = "--telemetry" if args.telemetry else "telemetry.path"
    check_telemetry_file(cfg, config_path=config_path, path_field=field)
    if args.quiet:
        return 0
    resolved = plugins.get_estimator(est_name).name
    steps = sum(st.steps for st in cfg.studies)
    ex = cfg.executor
    where = f", {ex.address}" if ex.address else ""
    count = "one per CPU" if ex.workers is None else str(ex.workers)
    if ex.address:  # a running cluster has the workers it has
        count = "the cluster's"
    print(
        f"{args.config}: {len(cfg.studies)} studies, {steps} steps, seed {cfg.seed}, estimator "
        f"{resolved}, executor {ex.name}{where}, workers: {count}"
    )
    for st in cfg.studies:
        t = st.intervention
        graph = st.graph if isinstance(st.graph, str) else ",".join(st.graph)
        if getattr(plugins.get_domain(st.domain), "fixed_data", None) and "path" in st.params:
            data = f"file {st.params['path']}"  # the whole file, once: rows and steps mean nothing
            if st.params.get("columns"):
                data += f" (columns {', '.join(map(str, st.params['columns']))})"
        else:
            data = f"{st.steps} × {st.rows} rows"
        print(f"  {st.label}: {st.treatment} → {st.outcome}, {t.t0:g} → {t.t1:g}; {data}; graph {graph}")
    print(
        f"results would go to {out}/, telemetry appended to {cfg.telemetry.path}; nothing written (--dry-run)"
    )
    return 0


# --- estimate / discover -------------------------------------------------------------------------


def _data_params(args: argparse.Namespace) -> dict[str, Any]:
    """The csv domain's params for --data and --columns."""
    params: dict[str, Any] = {"path": str(args.data)}
    if args.columns is not None:
        params["columns"] = args.columns
    return params


def _load_data(args: argparse.Namespace) -> Any:
    """--data as the csv domain reads it; a problem with --columns says so."""
    from . import plugins

    plugins.setup()
    domain = plugins.get_domain("csv")
    try:
        return domain.load("-", 0, 0, _data_params(args))
    except UsageError as exc:
        if getattr(exc, "param", None) == "columns":
            raise type(exc)(f"--columns: {exc}") from None
        raise


def _columns(text: str) -> list[str]:
    """``--columns A,B,C``; a name with a comma in double quotes, as in a CSV header."""
    import csv

    try:
        names = [n.strip() for n in next(csv.reader([text], skipinitialspace=True))]
    except (csv.Error, StopIteration):
        raise argparse.ArgumentTypeError(f"cannot read {text!r}: give names separated by commas") from None
    if not all(names):
        raise argparse.ArgumentTypeError(f"an empty column name in {text!r}")
    return names


_columns.__name__ = "column list"


def _csv_study(args: argparse.Namespace, graph: str | list[str]) -> Any:
    from .config import NO_HYPOTHESIS, Intervention, StudyConfig

    return StudyConfig(
        domain="csv",
        hypothesis=NO_HYPOTHESIS,
        name=Path(args.data).name,
        treatment=args.treatment,
        outcome=args.outcome,
        params=_data_params(args),
        intervention=Intervention(args.t0, args.t1),
        graph=graph,
        alpha=args.alpha,
    )


def _check_columns(args: argparse.Namespace) -> None:
    """Read --data and check --treatment, --outcome and --graph against its columns, naming the
    option (the study checks after this name config fields)."""
    from .study import find_cycle
    from .types import Graph

    names = _load_data(args).table.names
    among = "--columns" if args.columns is not None else f"columns of {args.data}"
    for option, var in (("--treatment", args.treatment), ("--outcome", args.outcome)):
        if var not in names:
            raise UsageError(f"{option}: unknown variable {var!r}; {among}: {', '.join(names)}")
    if not args.graph:
        return
    comma = [n for n in names if "," in n]
    hint = (
        f"; a column name with a comma ({comma[0]!r}) cannot be written in --graph, whose edges "
        "are separated by commas: rename the column, or use --discover"
        if comma
        else ""
    )
    for item in (x.strip() for x in args.graph.split(",")):
        if not item:
            continue
        try:
            edge = Graph.parse(item)
        except ValueError as exc:
            raise UsageError(f"--graph: {exc}{hint}") from None
        unknown = [v for v in edge.nodes if v not in names]
        if unknown:
            # "a-b" reads as an undirected edge; with a name that is no column it is most likely
            # a mistyped "a->b", so say how edges are written rather than only "unknown variable"
            raise UsageError(
                f"--graph: cannot read edge {item!r}: write A->B (directed) or A--B (undirected) "
                f"between {among}; {unknown[0]!r} is not one (columns: {', '.join(names)}){hint}"
            )
    cycle = find_cycle(Graph.parse(args.graph, nodes=names))
    if cycle:
        raise UsageError(f"--graph: has a cycle: {' -> '.join(cycle)}; a causal graph must be acyclic")


def cmd_estimate(args: argparse.Namespace) -> int:
    from .config import CostModel
    from .runner import StepTask, preflight_study, run_step

    if args.graph and args.discover:
        raise UsageError("--graph and --discover exclude each other")
    if not args.graph and not args.discover:
        raise UsageError("give the causal graph with --graph 'A->B,B->C' or ask for --discover")
    if args.t0 == args.t1:
        raise UsageError("--t0 and --t1 must differ")
    if args.treatment == args.outcome:
        raise UsageError(f"--outcome: must differ from --treatment (both are {args.treatment!r})")
    with _stages(_want_progress(args)) as stage:
        stage(f"reading {args.data}")
        _check_columns(args)
        study = _csv_study(args, "discover" if args.discover else args.graph)
        stage("loading the estimator")  # causal-learn and DoWhy take seconds to import
        preflight_study(study, args.estimator, seed=args.seed, where="--data")
        task = StepTask(0, 0, study, 1, args.seed, args.estimator, CostModel(), "estimate")
        outcome = run_step(task, stage=stage)
    if outcome.error is not None:
        error = DmcaError(outcome.error)
        error.exit_code = outcome.exit_code  # bad data found inside the step is still bad input
        raise error
    result = {
        k: v for k, v in outcome.result.items() if k not in ("study", "domain", "hypothesis", "data", "step")
    }
    if args.json:
        print(json.dumps(result, indent=2, allow_nan=False))
    else:
        r = result
        print(
            f"effect of {r['treatment']} on {r['outcome']} (do {r['t1']:g} vs {r['t0']:g}): "
            f"{_num(r['causal_effect'], '.6g')}  95% CI [{_num(r['ci_low'], '.6g')}, {_num(r['ci_high'], '.6g')}]"
            f"{' (given the discovered graph)' if r.get('graph_source') == 'discovered' else ''}"
            f"{_ambiguity(r)}\n"
            f"adjustment set: {', '.join(r['adjustment_set']) or '(none)'}; reliability {_num(r['reliability_score'], '.2f')}; "
            f"SR9 {_num(r['SR9'], '.3f')}; DI2 {_num(r['DI2'], '.3f')}; estimator {r['estimator']}"
        )
    for warning in result.get("warnings", ()):
        print(f"dmca: warning: {warning}", file=sys.stderr)
    return 0


def _num(x: Any, spec: str) -> str:
    """``x`` formatted, or ``n/a`` for a figure that is not defined (null in the JSON: DI2 of a
    study whose halves cannot be compared)."""
    return "n/a" if x is None else format(x, spec)


def _ambiguity(r: dict[str, Any]) -> str:
    """``  (ambiguous: the discovered graph also allows 0)`` for an effect the graph does not pin
    down: the other effects its DAGs give (IDA reports the smallest in magnitude), each once as
    printed (several parent sets often give the same effect)."""
    if not r["ambiguous"]:
        return ""
    shown = _num(r["causal_effect"], ".6g")
    others: list[str] = []
    for x in r.get("effect_set") or []:
        text = _num(x, ".6g")
        if text == "-0":
            text = "0"
        if text != shown and text not in others:
            others.append(text)
    if not others:
        return "  (ambiguous)"
    graph = {"discovered": "the discovered graph", "given": "the given graph"}.get(
        r.get("graph_source"), "the graph"
    )
    return f"  (ambiguous: {graph} also allows {', '.join(others)})"


def cmd_discover(args: argparse.Namespace) -> int:
    from . import plugins
    from .runner import data_errors_named

    plugins.setup()
    estimator = plugins.get_estimator(args.estimator)
    with _stages(_want_progress(args)) as stage:
        stage(f"reading {args.data}")
        data = _load_data(args)
        stage(f"discovering the graph (PC over {data.table.n_cols} columns)")
        with data_errors_named(plugins.get_domain("csv"), _data_params(args)):
            graph = estimator.discover(data.table, args.alpha)
    out = graph.to_json()
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(str(graph) or "(no edges)")
    from .study import near_copies, near_copy_warning

    for names, r in near_copies(data.table):
        print(f"dmca: warning: {near_copy_warning(names, r)}", file=sys.stderr)
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    import csv
    import io

    from . import plugins

    plugins.setup()
    domain = plugins.get_domain(args.domain)
    hyps = tuple(domain.hypotheses())
    if not hyps:
        raise UsageError(f"domain {args.domain!r} reads data, it does not simulate")
    hypothesis = hyps[0] if args.hypothesis is None else args.hypothesis
    if hypothesis not in hyps:
        raise UsageError(
            f"--hypothesis: unknown hypothesis {hypothesis!r} for {args.domain}; valid: {', '.join(hyps)}"
        )
    out = Path(args.out) if args.out else None
    if out is not None and out.is_dir():
        raise UsageError(f"--out {out}: is a folder; give the CSV file's name")
    from .runner import checked_domain_data

    data = checked_domain_data(domain.load(hypothesis, args.rows, args.seed, {}), args.domain)
    bad = data.table.first_non_finite()
    if bad is not None:  # a simulator's bug: not written out as if it were data
        row, col = bad
        raise PluginError(
            f"domain {args.domain!r}: simulated a non-finite value ({float(data.table.values[row, col])!r}) "
            f"in column {data.table.names[col]!r}, data row {row + 1}"
        )
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(data.table.names)
    writer.writerows([f"{x:.10g}" for x in row] for row in data.table.values)
    if out is not None:
        from .errors import os_reason
        from .report import atomic_write

        try:
            atomic_write(out, buf.getvalue().encode())
        except OSError as exc:
            raise UsageError(f"--out {out}: cannot write: {os_reason(exc, out)}") from None
        if data.true_graph is not None:
            print(f"wrote {args.rows} rows to {args.out}; true graph: {data.true_graph}")
    else:
        sys.stdout.write(buf.getvalue())
    return 0


# --- plugins ---------------------------------------------------------------------------------------


def cmd_plugins(args: argparse.Namespace) -> int:
    from . import plugins

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # errors are listed below, not warned about twice
        infos = plugins.plugin_infos()
    if not args.all:
        infos = [i for i in infos if not i.builtin]
    if args.hook:
        valid = plugins.hook_names()
        if args.hook not in valid:
            raise UsageError(f"--hook: unknown hook {args.hook!r}; valid: {', '.join(valid)}")
        infos = [i for i in infos if args.hook in i.hooks]
    errors = plugins.load_errors
    if args.json:
        print(
            json.dumps(
                {
                    "plugins": [
                        {
                            "name": i.name,
                            "distribution": i.distribution,
                            "version": i.version,
                            "hooks": i.hooks,
                            "provides": i.provides,
                            **({"shadowed": i.shadowed} if i.shadowed else {}),
                        }
                        for i in infos
                    ],
                    "errors": [
                        {
                            "name": e.name,
                            "distribution": e.distribution,
                            "version": e.version,
                            "error": e.error,
                        }
                        for e in errors
                    ],
                },
                indent=2,
            )
        )
        return 0
    if not infos:
        print("no plugins" + ("" if args.all else " (add --all for the built-in ones)"))
    for i in infos:
        print(f"{i.name}  ({i.distribution} {i.version})")
        print(f"    hooks: {', '.join(i.hooks) or '-'}")
        if i.provides:  # the names users type: --estimator full, dmca keygen, domain: hello_linear
            print(f"    provides: {_provides_line(i.provides)}")
        for kind, names in i.shadowed.items():  # a name another plugin also gives, and wins
            for name, winner in names.items():
                print(f"    shadowed: {_provides_line({kind: [name]})} (the one of {winner} is used)")
    for e in errors:
        print(f"{e.name}  ({e.distribution} {e.version})  SKIPPED: {e.error}")
    return 0


_KINDS = {  # hook kind -> (one, several)
    "telemetry_sinks": ("telemetry sink", "telemetry sinks"),
    "material_models": ("material model", "material models"),
}


def _provides_line(provides: dict[str, list[str]]) -> str:
    parts = []
    for kind, names in provides.items():
        one, several = _KINDS.get(kind, (kind.removesuffix("s"), kind))
        parts.append(f"{one if len(names) == 1 else several} {', '.join(names)}")
    return "; ".join(parts)


# --- migrate-check -----------------------------------------------------------------------------------


def cmd_migrate_check(args: argparse.Namespace) -> int:
    from .migrate import check_paths

    findings, problems = check_paths([Path(p) for p in args.paths])
    for f in findings:
        print(f)
    for p in problems:
        print(f"dmca: {p}", file=sys.stderr)
    if problems and not findings:
        return 2
    if findings:
        print(
            f"{len(findings)} legacy FTI/λ use(s): DMCA never computes FTI or λ, SIDRCE does.",
            file=sys.stderr,
        )
        return 1
    if not args.quiet:
        print("no legacy FTI/λ use found")
    return 0


# --- parser ------------------------------------------------------------------------------------------


# estimators are named by what they register, not by their plugin (causal_full registers `full`)
_ESTIMATORS = (
    "auto (the best installed), full (plugin causal_full), fallback (plugin causal_fallback) "
    "or another plugin's; `dmca plugins` lists the installed ones"
)


def build_parser(extra: dict[str, Any] | None = None) -> argparse.ArgumentParser:
    parser = _Parser(prog="dmca", description="DMCA, the Dark Matter Causal Analyzer.")
    parser.add_argument("--version", action="version", version=f"dmca {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("run", help="run the studies of an experiment config")
    p.add_argument("config", help="experiment YAML, e.g. config/experiment.yaml")
    p.add_argument("--out", help="results folder (default: the config's output, 'results')")
    p.add_argument(
        "--telemetry", help="operations telemetry file to append to (default: the config's telemetry.path)"
    )
    p.add_argument("--estimator", help=f"{_ESTIMATORS} (default: the config's estimator)")
    p.add_argument(
        "--executor",
        help="local (built in) or dask (plugin dask_executor); `dmca plugins` lists the installed "
        "ones (default: the config's, 'local')",
    )
    p.add_argument(
        "--workers", type=_int_at_least(1), help="worker processes (default: the config's, else one per CPU)"
    )
    p.add_argument("--address", help="Dask scheduler address, e.g. tcp://host:8786 (default: the config's)")
    p.add_argument("--seed", type=_seed, help="seed of every draw (default: the config's seed)")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="check the config and plugins as a run would, list the studies, write nothing",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar, no summary line")
    p.set_defaults(func=cmd_run)

    def data_args(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--data",
            required=True,
            help="CSV file with a header line, '#' comment lines allowed (Parquet when pyarrow is installed)",
        )
        p.add_argument(
            "--columns",
            type=_columns,
            help="use only these columns, e.g. 'depth,exposure,counts' (default: all; the others may "
            "hold anything, e.g. text or IDs); a name with a comma in double quotes",
        )
        p.add_argument("--alpha", type=_alpha, default=0.01, help="PC significance level (default 0.01)")
        p.add_argument("--estimator", default="auto", help=f"{_ESTIMATORS} (default: auto)")
        p.add_argument("--json", action="store_true", help="print JSON")
        p.add_argument("--quiet", "-q", action="store_true", help="no progress display on a terminal")

    p = sub.add_parser("estimate", help="estimate one causal effect on your own data")
    data_args(p)
    p.add_argument("--treatment", required=True)
    p.add_argument("--outcome", required=True)
    p.add_argument(
        "--graph",
        help="edges separated by commas, A->B directed, A--B undirected, e.g. 'Z->T,Z->Y,T->Y' "
        "(a column name with a comma cannot be written here: rename it or use --discover)",
    )
    p.add_argument("--discover", action="store_true", help="discover the graph with PC")
    p.add_argument("--t0", type=_finite_float, default=0.0, help="control value of the treatment (default 0)")
    p.add_argument("--t1", type=_finite_float, default=1.0, help="treated value of the treatment (default 1)")
    p.add_argument(
        "--seed",
        type=_seed,
        default=0,
        help="seed of the random draws: refutations, bootstrap, the halves of DI2 (default 0)",
    )
    p.set_defaults(func=cmd_estimate)

    p = sub.add_parser("discover", help="discover a causal graph (CPDAG) from your own data with PC")
    data_args(p)
    p.set_defaults(func=cmd_discover)

    p = sub.add_parser("simulate", help="write a simulated domain's data as CSV (to try estimate/discover)")
    p.add_argument("domain", help="a simulated domain, e.g. direct_lab or cosmology")
    p.add_argument(
        "--hypothesis",
        help="one of the domain's hypotheses (default: the domain's first, e.g. WIMP for direct_lab)",
    )
    p.add_argument("--rows", type=_int_at_least(1), default=2000)
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--out", help="CSV file to write (default: standard output)")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("plugins", help="list installed plugins, their hooks and load errors")
    p.add_argument("--all", action="store_true", help="include DMCA's built-in plugins")
    p.add_argument("--hook", help="only plugins implementing this hook")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_plugins)

    p = sub.add_parser("migrate-check", help="find legacy FTI/λ code (DMCA never computes them)")
    p.add_argument("paths", nargs="+", help="Python files or folders")
    p.add_argument("--quiet", "-q", action="store_true")
    p.set_defaults(func=cmd_migrate_check)

    for name, command in (extra or {}).items():
        if name in sub.choices:
            continue  # built-in commands cannot be shadowed
        p = sub.add_parser(name, help=command.help)
        command.configure(p)
        p.set_defaults(func=command.run)
    return parser


def _forkserver_ahead(argv: Sequence[str]) -> tuple[str, ...] | None:
    """What a forkserver started now should preload beyond the study code, or None for none.

    A forkserver is wanted when ``argv`` is a ``dmca run`` that will start worker processes on this
    machine: the built-in local pool with more than one worker (from a forkserver), or a Dask
    LocalCluster (no address), whose workers also want ``distributed`` and what the Dask plugin's
    preload module does for them (a forkserver skips a module that is not installed). Read from
    the flags and a plain look at the config's ``executor`` section; anything unusual answers None
    (the run then starts its workers when it needs them, as it always can, and the real parsing
    reports any error)."""
    # --dry-run runs no step; it is the only option of `run` that starts with --d (abbreviations too)
    if not argv or argv[0] != "run" or any(a.startswith("--d") for a in argv):
        return None
    import yaml

    # no type conversion and no error output here: bad flags are the real parser's to report
    peek = argparse.ArgumentParser(add_help=False, allow_abbrev=False, exit_on_error=False)
    peek.add_argument("config", nargs="?")
    for flag in ("--executor", "--workers", "--out", "--estimator", "--address"):
        peek.add_argument(flag)
    try:
        args, _ = peek.parse_known_args(list(argv[1:]))
        with open(args.config, encoding="utf-8") as f:
            section = (yaml.safe_load(f) or {}).get("executor") or {}
        name = args.executor or section.get("name", "local")
        workers = int(args.workers) if args.workers is not None else section.get("workers")
        method = (section.get("options") or {}).get("start_method", "forkserver")
        address = args.address or section.get("address") or (section.get("options") or {}).get("address")
    except (
        argparse.ArgumentError,
        SystemExit,
        OSError,
        TypeError,
        ValueError,
        AttributeError,
        RecursionError,  # nested hundreds deep: the real parser says so in one line
        yaml.YAMLError,
    ):
        return None
    if name == "dask":
        from .default_plugins.local_executor import DASK_FORKSERVER_PRELOAD

        return None if address else DASK_FORKSERVER_PRELOAD
    if name != "local" or method != "forkserver":
        return None
    if workers is None:
        from .default_plugins.local_executor import default_workers

        workers = default_workers()
    return () if type(workers) is int and workers > 1 else None


def main(argv: Sequence[str] | None = None) -> int:
    warnings.formatwarning = _warning_line  # type: ignore[assignment]
    argv = sys.argv[1:] if argv is None else list(argv)
    preload = _forkserver_ahead(argv)
    if preload is not None:  # before the imports below, which its server does in parallel
        from .default_plugins.local_executor import start_forkserver

        start_forkserver(preload)
    from . import plugins

    run: Callable[[argparse.Namespace], int]
    code = 0
    try:
        try:
            extra = plugins.commands()
        except Warning:  # `python -W error` raised a skipped plugin's warning, once all had loaded
            if argv[:1] != ["plugins"]:  # which `dmca plugins` lists rather than stops at
                raise
            extra = plugins.commands()
        args = build_parser(extra).parse_args(argv)
        run = args.func
        code = int(run(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, where it is handled, not at interpreter exit
        return code
    except BrokenPipeError:  # the reader went away (`| head`)
        drop_stdout()
        return code
    except DmcaError as exc:
        print(f"dmca: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        from .interrupts import Terminated

        kept = getattr(exc, "dmca_kept", None)  # set by a run that wrote what had finished
        note = f"; {kept}" if kept else ""
        if isinstance(exc, Terminated):  # SIGTERM: the shell's code for it, 128 + 15
            print(f"dmca: terminated{note}", file=sys.stderr)
            return 143
        print(f"dmca: interrupted{note}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
