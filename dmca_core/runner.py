"""``dmca run``: every study × step through the executor, one telemetry record per step.

The driver checks everything it can before anything is written (plugins, domains, hypotheses,
variables, encryption), then fans the steps out to the executor. Workers return their results and
telemetry records; the driver alone writes telemetry, so batching and encryption sequence numbers
hold whatever the executor.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import json
import math
import os
import traceback
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from . import plugins
from .config import NO_HYPOTHESIS, CostModel, ExperimentConfig, StudyConfig, fill_hypotheses, locate, located
from .errors import DataError, DmcaError, OutputError, PluginError, UsageError, first_line, os_reason
from .opsmeter import FitMeter, measure_step
from .plugin_checks import one_line
from .types import DomainData, Graph, Table, Truth

SCHEMA_VERSION = 1


@attrs.frozen
class StepTask:
    """One study step, small and picklable: what a worker needs to run it."""

    index: int
    study_index: int
    study: StudyConfig
    step: int
    seed: int
    estimator: str
    cost_model: CostModel
    run_id: str


@attrs.define
class StepOutcome:
    index: int
    result: dict[str, Any]
    telemetry: dict[str, Any]
    error: str | None = None
    exit_code: int = 1  # of the error: 2 for bad input (a UsageError or DataError), as the CLI exits


def step_seed(seed: int, study_index: int, step: int) -> int:
    """A seed per (experiment seed, study, step), independent of how steps are scheduled."""
    return int(np.random.SeedSequence([seed, study_index, step]).generate_state(1)[0])


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def intervention_label(study: StudyConfig) -> str:
    iv = study.intervention
    return f"do({study.treatment}={iv.t1:g} vs {iv.t0:g})"


def checked_domain_data(data: Any, domain: str) -> DomainData:
    """What a domain's ``load`` returned, if it is what the core reads (a DomainData with a Table,
    a true graph over its columns without a cycle); else one line naming the domain."""
    if not isinstance(data, DomainData) or not isinstance(data.table, Table):
        what = (
            type(data.table).__name__ + " as its table"
            if isinstance(data, DomainData)
            else type(data).__name__
        )
        raise PluginError(f"domain {domain!r}: load returned {what}, not DomainData with a Table")
    graph = data.true_graph
    if graph is not None and not isinstance(graph, Graph):
        raise PluginError(f"domain {domain!r}: its true graph is {type(graph).__name__}, not a Graph")
    missing = [v for v in graph.nodes if v not in data.table.names] if graph is not None else []
    if missing:
        raise PluginError(
            f"domain {domain!r}: its true graph names {', '.join(map(repr, missing))}, not in its data"
        )
    if graph is not None:
        from .study import find_cycle

        cycle = find_cycle(graph)
        if cycle:
            raise PluginError(f"domain {domain!r}: its true graph has a cycle: {' -> '.join(cycle)}")
    return data


def resolve_graph(spec: str | list[str], data: DomainData, where: str) -> Graph | None:
    """The study's graph: the domain's true DAG, ``None`` (discover), or the user's edges."""
    if spec == "discover":
        return None
    if spec == "truth":
        if data.true_graph is None:
            raise UsageError(f"{where}.graph: this domain has no true graph; give edges or 'discover'")
        return data.true_graph
    return user_graph(spec, data.table.names, where)


def user_graph(spec: str | list[str], nodes: Sequence[str], where: str) -> Graph:
    """The edges a study gives, read against ``nodes``; a cycle is refused here, before any step."""
    from .study import find_cycle

    try:
        graph = Graph.parse(spec, nodes=nodes)
    except ValueError as exc:
        raise UsageError(f"{where}.graph: {exc}") from None
    cycle = find_cycle(graph)
    if cycle:
        raise UsageError(f"{where}.graph: has a cycle: {' -> '.join(cycle)}; a causal graph must be acyclic")
    return graph


def _finite(x: Any) -> Any:
    """JSON has no NaN or infinity: report them as null, also inside a refutation's figures (a
    refit on a singular subset is NaN there; json.dumps then refused the whole results file)."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


def _row_head(task: StepTask) -> dict[str, Any]:
    """The fields that name a step in results.json, whatever became of it."""
    study = task.study
    iv = study.intervention
    head: dict[str, Any] = {"study": study.label, "domain": study.domain, "hypothesis": study.hypothesis}
    if study.domain == "csv" and "path" in study.params:
        # the file a csv study read, as the config gives it (a named study's label does not say)
        head["data"] = str(study.params["path"])
    return {
        **head,
        "step": task.step,
        "outcome": study.outcome,  # a failed step's row says what it was to estimate, too
        "seed": task.seed,
        "intervention": {"treatment": study.treatment, "t0": iv.t0, "t1": iv.t1},
    }


_prepared: set[str] = set()  # estimators whose prepare() ran in this process


def _prepare_estimator(name: str) -> str | None:
    """The estimator's one-time set-up (``prepare``, if it has one), once per process, before a
    step is measured: otherwise each worker's first step was charged seconds of imports (DoWhy),
    and the FinOps grade of a study depended on which of its steps a worker ran first. Returns
    why ``prepare`` failed (the step then fails with it), else None. A failure is not kept: the
    next step tries again (a notebook that installs the missing package goes on)."""
    if name in _prepared:
        return None
    try:
        plugins.setup()
        prepare = getattr(plugins.get_estimator(name), "prepare", None)
    except Exception:  # noqa: BLE001 - the measured step below meets the same error and reports it
        return None
    if prepare is not None:
        try:
            prepare()
        except Exception as exc:  # noqa: BLE001 - a plugin's set-up may fail in any way
            return f"estimator {name!r}: its prepare() raised {type(exc).__name__}: {one_line(exc)}"
    _prepared.add(name)
    return None


def run_step(task: StepTask, stage: Callable[[str], None] | None = None) -> StepOutcome:
    """Run one study step; failures are returned, not raised, so the other steps go on.
    ``stage`` is told what starts next (a progress display; only in the driver's process)."""
    from .heap import keep_freed_memory
    from .study import ROUNDING, run_study

    keep_freed_memory()  # once per process, wherever the step runs (driver, pool or Dask worker)
    unprepared = _prepare_estimator(task.estimator)

    study = task.study
    where = f"studies[{task.study_index}]"
    row = _row_head(task)
    meter = FitMeter()
    error = None
    exit_code = 1
    result = truth = None
    estimator_name = task.estimator
    with measure_step(meter) as usage:
        try:
            plugins.setup()
            domain = plugins.get_domain(study.domain)
            estimator = plugins.get_estimator(task.estimator)
            estimator_name = estimator.name
            if unprepared is not None:
                raise PluginError(unprepared)
            if stage is not None:
                stage(f"loading the {study.domain} data")
            data = checked_domain_data(
                domain.load(study.hypothesis, study.rows, task.seed, study.params), study.domain
            )
            graph = resolve_graph(study.graph, data, where)
            with data_errors_named(domain, study.params):
                result = run_study(
                    data.table,
                    treatment=study.treatment,
                    outcome=study.outcome,
                    t0=study.intervention.t0,
                    t1=study.intervention.t1,
                    graph=graph,
                    alpha=study.alpha,
                    estimator=estimator,
                    seed=task.seed,
                    meter=meter,
                    stage=stage,
                )
            truth = data.truth(study.treatment, study.outcome, study.intervention.t0, study.intervention.t1)
            if truth is not None and not isinstance(truth, Truth):  # read below, outside this try
                raise PluginError(
                    f"domain {study.domain!r}: its truth_fn returned {type(truth).__name__}, not a Truth"
                )
        except DmcaError as exc:
            error, exit_code = str(exc), exc.exit_code
        except Exception as exc:  # a study that raises is reported as failed; the run goes on
            error = f"{type(exc).__name__}: {exc}"
            if os.environ.get("DMCA_DEBUG"):
                traceback.print_exc()
    ops = usage[0]
    cost = ops.cost_usd(task.cost_model.usd_per_cpu_hour, task.cost_model.usd_per_gb_hour)
    row["estimator"] = estimator_name
    if error is None and result is not None:
        row["status"] = "ok"
        row.update(result.to_json())
        if truth is not None:
            row["truth"] = {"effect": truth.effect, "mc_se": truth.mc_se, "draws": truth.draws}
            # the refutations' rounding slack: an exact fit's interval is rounding-wide, and may
            # miss a true effect of exactly 2 by a few ulps
            slack = ROUNDING * abs(result.causal_effect)
            row["truth_in_ci"] = bool(result.ci_low - slack <= truth.effect <= result.ci_high + slack)
    else:
        row["status"] = "failed"
        row["error"] = error
    row["ops"] = {
        "wall_seconds": ops.wall_seconds,
        "cpu_seconds": ops.cpu_seconds,
        "peak_mem_mb": ops.peak_mem_bytes / 2**20,
        "fits": ops.fits,
        "qps": ops.qps,
        "latency_p95_ms": ops.latency_p95_ms,
        "infra_cost_usd": cost,
    }
    record: dict[str, Any] = {
        "domain": study.domain,
        "hypothesis": study.hypothesis,
        "step": task.step,
        "intervention": intervention_label(study),
        # with the intervention, what tells one study's effects from another's in SIDRCE's groups
        "study": study.label,
        "outcome": study.outcome,
        "infra_cost_usd": cost,
        "qps": ops.qps,
        "latency_p95_ms": ops.latency_p95_ms,
        "ts": utc_now(),
        "run_id": task.run_id,
        "schema_version": SCHEMA_VERSION,
        "estimator": estimator_name,
        "cpu_seconds": ops.cpu_seconds,
        "wall_seconds": ops.wall_seconds,
        "peak_mem_mb": ops.peak_mem_bytes / 2**20,
        "fits": ops.fits,
    }
    if result is not None and error is None:
        for key in ("causal_effect", "ci_low", "ci_high", "reliability_score", "SR9", "DI2"):
            record[key] = getattr(result, key)
    record = {k: _finite(v) for k, v in record.items() if _finite(v) is not None}
    return StepOutcome(task.index, {k: _finite(v) for k, v in row.items()}, record, error, exit_code)


def _check_variables(study: StudyConfig, valid: tuple[str, ...], where: str) -> None:
    for key in ("treatment", "outcome"):
        name = getattr(study, key)
        if name not in valid:
            raise UsageError(f"{where}.{key}: unknown variable {name!r}; valid: {', '.join(valid)}")


def preflight_study(study: StudyConfig, estimator: str, *, seed: int, where: str) -> None:
    """Check one study's plugins, hypothesis, variables and graph before it runs."""
    plugins.setup()
    plugins.get_estimator(estimator)
    try:
        domain = plugins.get_domain(study.domain)
    except DmcaError as exc:
        raise UsageError(f"{where}.domain: {exc}") from None
    hyps = tuple(domain.hypotheses())
    if hyps:
        if study.hypothesis == NO_HYPOTHESIS:  # fill_hypotheses gave a domain's only one already
            raise UsageError(
                f"{where}.hypothesis: required for domain {study.domain!r}; valid: {', '.join(hyps)}"
            )
        if study.hypothesis not in hyps:
            raise UsageError(
                f"{where}.hypothesis: unknown hypothesis {study.hypothesis!r} for {study.domain}; "
                f"valid: {', '.join(hyps)}"
            )
        check = getattr(domain, "check", None)
        if check is not None:
            try:
                check(study.hypothesis, study.params)
            except UsageError as exc:
                raise UsageError(f"{where}.params: {exc}") from None
            except Exception as exc:  # noqa: BLE001 - a plugin's bug: one line naming it, not a traceback
                raise PluginError(
                    f"{where}.params: domain {study.domain!r}'s check raised {type(exc).__name__}: {exc}"
                ) from None
        valid = tuple(domain.variables(study.hypothesis))
        _check_variables(study, valid, where)
        from .study import min_rows

        need = min_rows(len(valid))
        if study.rows < need:  # else every step would fail on it
            raise UsageError(
                f"{where}.rows: {study.rows}; a study of {study.domain} ({len(valid)} columns) needs at least {need}"
            )
        if study.graph not in ("truth", "discover"):
            user_graph(study.graph, valid, where)
    else:
        fixed = getattr(domain, "fixed_data", None)
        if fixed:
            _check_fixed_data(study, str(fixed), where)
        # user data: read it once here so a bad file stops the run before it starts
        try:
            data = checked_domain_data(
                domain.load(study.hypothesis, study.rows, seed, study.params), study.domain
            )
        except UsageError as exc:  # names the file, column and line; a config's study, too
            if not where.startswith("studies["):
                raise  # `dmca estimate --data`: the file is the whole input
            # the param the domain says the error is about, else the file's
            param = getattr(exc, "param", "path" if "path" in study.params else None)
            key = f"{where}.params.{param}" if param else f"{where}.params"
            raise type(exc)(f"{key}: {exc}") from None
        _check_variables(study, data.table.names, where)
        resolve_graph(study.graph, data, where)


def _check_fixed_data(study: StudyConfig, does: str, where: str) -> None:
    """A domain whose data are fixed (``fixed_data``, e.g. "reads the whole file": the user's
    file) takes no hypothesis, rows or repeated steps: each would only relabel, be ignored, or
    repeat one estimate as if it were a replication."""
    name = study.domain
    if study.hypothesis != NO_HYPOTHESIS:
        raise UsageError(
            f"{where}.hypothesis: the {name} domain {does} and takes no hypothesis "
            f"(results would be labelled {name}/{study.hypothesis}); leave hypothesis out"
        )
    if study.rows_given or study.rows != attrs.fields(StudyConfig).rows.default:
        raise UsageError(f"{where}.rows: the {name} domain {does}; leave rows out")
    if study.steps != 1:
        raise UsageError(
            f"{where}.steps: the {name} domain {does} at every step, so {study.steps} steps would "
            "repeat one estimate; leave steps out"
        )


@contextlib.contextmanager
def data_errors_named(domain: Any, params: Mapping[str, Any]) -> Iterator[None]:
    """A :class:`DataError` about data already loaded (too few rows, a collinear column, a row of
    leverage 1) as the domain names it: a domain of user data has ``name_data_error(message,
    params) -> str``, which puts its file (and a row's file line) in front."""
    try:
        yield
    except DataError as exc:
        name = getattr(domain, "name_data_error", None)
        if name is None:
            raise
        raise DataError(name(str(exc), params)) from None


def _named(field: str, get: Callable[..., Any], *args: Any) -> Any:
    """``get(*args)``, with a plugin lookup's error prefixed by the setting it came from."""
    try:
        return get(*args)
    except PluginError as exc:
        raise PluginError(f"{field}: {exc}") from None


def preflight(
    cfg: ExperimentConfig,
    estimator: str,
    *,
    estimator_field: str = "estimator",
    executor_field: str = "executor.name",
    before_materials: Callable[[], None] | None = None,
) -> None:
    """Fail on bad input before anything runs or is written. ``*_field``: how the user gave the
    estimator and the executor (a config key, or the command-line option that overrode it).

    ``before_materials``: called once every check that reads no material's form factor has
    passed, before the studies whose domain reads one are checked (their check computes a
    missing form factor): ``dmca run`` prepares the materials there, through its executor."""
    plugins.setup()
    fill_hypotheses(cfg, plugins.domains())  # before any label is used: results are keyed by it
    _named(estimator_field, plugins.get_estimator, estimator)
    executor = _named(executor_field, plugins.get_executor, cfg.executor.name)
    check = getattr(executor, "check", None)
    if check is not None:  # bad executor settings stop the run before the telemetry file opens
        check(cfg.executor.workers, executor_options(cfg))
    _named("telemetry.sink", plugins.get_sink, cfg.telemetry.sink)
    if cfg.telemetry.encryption != "none":
        _named(f"telemetry.encryption: {cfg.telemetry.encryption}", plugins.get_encryptor)
    later = []
    for i, study in enumerate(cfg.studies):
        if before_materials is not None and study_materials(study):
            later.append(i)
            continue
        preflight_study(study, estimator, seed=cfg.seed, where=f"studies[{i}]")
    if later:
        before_materials()  # type: ignore[misc]
    for i in later:
        preflight_study(cfg.studies[i], estimator, seed=cfg.seed, where=f"studies[{i}]")


def checked_out_dir(cfg: ExperimentConfig, out_dir: Path | None, config_path: str) -> Path:
    """The results folder (``--out``, else the config's ``output``), proven writable; creates nothing."""
    out = Path(out_dir or cfg.output)
    try:
        _check_out_dir(out, "--out" if out_dir else "output")
    except UsageError as exc:
        if out_dir:
            raise
        # the file is read again for the line only now: a sweep's config can take 0.3 s to parse
        raise UsageError(f"{locate(config_path, 'output')}: {exc}") from None
    return out


def check_telemetry_file(
    cfg: ExperimentConfig, *, config_path: str, path_field: str, environ: Mapping[str, str] | None = None
) -> None:
    """What opening the telemetry file would refuse, found without opening or creating anything
    (``dmca run --dry-run``): the encryption key, and, for the built-in ``jsonl`` sink, a path
    that is a folder or cannot be written. A plugin's sink is only known to work once opened."""
    from .default_plugins.jsonl_sink import JsonlSink
    from .report import check_output_dir
    from .telemetry.emitter import cannot_open

    tel = cfg.telemetry
    path = Path(tel.path)
    try:
        if tel.encryption != "none":
            environ = os.environ if environ is None else environ
            plugins.get_encryptor().writer(tel.encryption, gzip=tel.gzip, environ=environ)
        if not isinstance(plugins.get_sink(tel.sink), JsonlSink):
            return
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        if path.exists():
            if not os.access(path, os.W_OK):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        else:
            check_output_dir(path.parent)  # the sink creates the missing folders, as the run's
    except OSError as exc:  # the line the emitter gives when it cannot open the file
        raise located(cannot_open(path_field, path, exc), config_path) from None
    except DmcaError as exc:
        raise located(exc, config_path) from None


def _check_out_dir(path: Path, name: str) -> None:
    """Fail now, not after the whole run, when the results folder cannot take files."""
    from .errors import os_reason
    from .report import check_output_dir

    try:
        check_output_dir(path)
    except OSError as exc:
        raise UsageError(f"{name} {path}: cannot write there: {os_reason(exc, path)}") from None


def prepare_materials(
    studies: Sequence[Any], executor: str, workers: int | None, options: Mapping[str, Any]
) -> list[str]:
    """Have the form factors the studies read ready before the run: a material model with
    ``prepare(map_groups)`` computes what it lacks (PySCF's Δk groups) through the run's executor,
    whose name and settings :func:`preflight` has checked. Returns the materials prepared. An
    unknown material or a study's bad params are left for the studies' checks to report, located."""
    needed: list[str] = []
    for study in studies:
        needed += [n for n in study_materials(study) if n not in needed]
    ex = plugins.get_executor(executor)

    def map_groups(fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        return ex.map(fn, items, workers=workers, options=options, on_result=lambda i, r: None)

    prepared = []
    for name in needed:
        try:
            model = plugins.get_material_model(name)
        except DmcaError:
            continue
        prepare = getattr(model, "prepare", None)
        if prepare is None:
            continue
        try:
            prepare(map_groups)
        except (DmcaError, KeyboardInterrupt):
            raise
        except Exception as exc:  # noqa: BLE001 - PySCF out of memory, a group failing in a worker
            raise PluginError(
                f"material {name!r}: preparing its form factor failed: {type(exc).__name__}: {first_line(exc)}"
            ) from None
        prepared.append(name)
    return prepared


def study_materials(study: Any) -> tuple[str, ...]:
    """The materials whose form factor ``study`` reads (its domain's optional ``materials``);
    none when the domain is unknown or its params are bad (the checks report those)."""
    try:
        listing = getattr(plugins.get_domain(study.domain), "materials", None)
        return tuple(str(n) for n in listing(study.hypothesis, study.params)) if listing is not None else ()
    except Exception:  # noqa: BLE001 - reported by the checks, located
        return ()


def executor_options(cfg: ExperimentConfig) -> dict[str, Any]:
    options = dict(cfg.executor.options)
    if cfg.executor.address:
        options["address"] = cfg.executor.address
    return options


def lost_step(task: StepTask, error: str) -> StepOutcome:
    """The outcome of a step whose worker never returned: failed, with nothing measured."""
    row = _row_head(task) | {"estimator": task.estimator, "status": "failed", "error": error}
    return StepOutcome(task.index, row, {}, error)


def plan(cfg: ExperimentConfig, estimator: str, run_id: str) -> list[StepTask]:
    tasks = []
    for i, study in enumerate(cfg.studies):
        for step in range(1, study.steps + 1):
            tasks.append(
                StepTask(
                    len(tasks),
                    i,
                    study,
                    step,
                    step_seed(cfg.seed, i, step),
                    estimator,
                    cfg.cost_model,
                    run_id,
                )
            )
    return tasks


@attrs.define
class RunSummary:
    run_id: str
    out_dir: Path
    telemetry_path: Path
    outcomes: list[StepOutcome]
    estimator: str

    #: set when no step finished and the folder's results of an earlier run were left in place:
    #: what the CLI says about them ("keeps the results of run … (… steps ok)")
    kept_earlier: str | None = None

    @property
    def failed(self) -> list[StepOutcome]:
        return [o for o in self.outcomes if o.error is not None]

    @property
    def ok(self) -> int:
        return len(self.outcomes) - len(self.failed)


def earlier_results(out: Path) -> str | None:
    """What an earlier run left in ``out`` that a run with no finished step must not replace.

    A run whose every step failed (a broken plugin, Ctrl-C before the first step came back) has
    nothing to add; replacing the folder's results would lose a good run's for a list of errors
    that stderr has already shown. Results with no finished step of their own are replaced.
    """
    try:
        earlier = json.loads((out / "results.json").read_bytes())
        steps_ok, run = earlier["steps_ok"], earlier["run_id"]
    except (OSError, ValueError, TypeError, KeyError, RecursionError):  # none, or not ours
        return None
    if type(steps_ok) is not int or steps_ok < 1 or not isinstance(run, str):  # not a dmca run's
        return None
    return f"keeps the results of the earlier run {run} ({steps_ok} steps ok)"


def checked_run(
    cfg: ExperimentConfig,
    *,
    config_path: str,
    telemetry_path: Path | None = None,
    estimator: str | None = None,
    executor: str | None = None,
    workers: int | None = None,
    before_materials: Callable[[ExperimentConfig], None] | None = None,
) -> tuple[ExperimentConfig, str]:
    """``cfg`` with the command line's overrides, checked as :func:`run_experiment` checks it
    before its first step (plugins, studies, executor settings), with FILE:LINE in its errors;
    and the estimator name asked for. Writes nothing (``dmca run --dry-run`` stops here)."""
    if executor:
        cfg = attrs.evolve(cfg, executor=attrs.evolve(cfg.executor, name=executor))
    if workers is not None:
        cfg = attrs.evolve(cfg, executor=attrs.evolve(cfg.executor, workers=workers))
    if telemetry_path is not None:
        cfg = attrs.evolve(cfg, telemetry=attrs.evolve(cfg.telemetry, path=str(telemetry_path)))
    est_name = estimator or cfg.estimator
    try:
        preflight(
            cfg,
            est_name,
            estimator_field="--estimator" if estimator else "estimator",
            executor_field="--executor" if executor else "executor.name",
            before_materials=None if before_materials is None else lambda: before_materials(cfg),
        )
    except DmcaError as exc:
        raise located(exc, config_path) from None
    return cfg, est_name


def run_experiment(
    cfg: ExperimentConfig,
    *,
    config_path: str,
    out_dir: Path | None = None,
    telemetry_path: Path | None = None,
    estimator: str | None = None,
    executor: str | None = None,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    environ: Mapping[str, str] | None = None,
) -> RunSummary:
    """Run every step of ``cfg``; write results and telemetry. Raises for bad input, and
    ``KeyboardInterrupt`` (:class:`~dmca_core.interrupts.Terminated` for SIGTERM) after writing
    the results of the steps that finished when the run is interrupted."""
    from .interrupts import Interrupts, Terminated, held
    from .report import write_outputs
    from .telemetry import TelemetryEmitter

    environ = os.environ if environ is None else environ
    path_field = "--telemetry" if telemetry_path is not None else "telemetry.path"  # for its errors

    def before_materials(checked: ExperimentConfig) -> None:
        # a domain's check builds its simulator, which reads the material's form factor and
        # would compute a missing one there, in this process alone: it is made first, through
        # the executor, once everything a typo could break has been checked (minutes of PySCF,
        # or a cluster's connection, before a refusal would be lost)
        checked_out_dir(checked, out_dir, config_path)
        check_telemetry_file(checked, config_path=config_path, path_field=path_field, environ=environ)
        ex = checked.executor
        prepare_materials(checked.studies, ex.name, ex.workers, executor_options(checked))

    cfg, est_name = checked_run(
        cfg,
        config_path=config_path,
        telemetry_path=telemetry_path,
        estimator=estimator,
        executor=executor,
        workers=workers,
        before_materials=before_materials,
    )
    out = checked_out_dir(cfg, out_dir, config_path)
    resolved = plugins.get_estimator(est_name).name
    run_id = uuid.uuid4().hex[:12]
    tasks = plan(cfg, resolved, run_id)
    if progress is not None:  # the total is known now: "0/64", not "0/?" until a batch returns
        progress(0, len(tasks))
    tel = cfg.telemetry
    telemetry_path = Path(tel.path)
    outcomes: list[StepOutcome | None] = [None] * len(tasks)
    done = 0
    started = utc_now()
    interrupted: KeyboardInterrupt | None = None
    unfinished: str | None = None  # why the steps without an outcome have none, once the map ends
    write_error: OutputError | None = None  # the telemetry file could not be written
    try:  # opens the file: a folder, a missing key, a read-only disk are one line with FILE:LINE
        opened = TelemetryEmitter(
            telemetry_path,
            sink=tel.sink,
            max_records=tel.batch.max_records,
            max_seconds=tel.batch.max_seconds,
            gzip=tel.gzip,
            encryption=tel.encryption,
            fsync=tel.fsync,
            environ=environ,
            path_field=path_field,
        )
    except DmcaError as exc:
        raise located(exc, config_path) from None
    if tel.encryption == "none" and plugins.encryption_key_set(environ):
        warnings.warn(
            f"dmca: warning: {telemetry_path}: telemetry written in plaintext (telemetry.encryption: "
            "none) while a telemetry key is set; SIDRCE refuses plaintext records while it has the "
            "key (set telemetry.encryption: line or batch)",
            RuntimeWarning,
            stacklevel=2,
        )
    with (
        opened as emitter,
        Interrupts(),  # after the emitter's own SIGTERM hook, so that ours is on top
    ):

        def cannot_write(exc: OSError) -> OutputError:
            return OutputError(
                f"{path_field}: {telemetry_path}: cannot write: {os_reason(exc, telemetry_path)}"
            )

        def on_result(i: int, outcome: StepOutcome) -> None:
            nonlocal done
            with held():  # a step's result and its telemetry line, or neither
                outcomes[i] = outcome
                try:
                    emitter.emit(outcome.telemetry)
                except OSError as exc:  # a full disk: the run stops, and keeps what finished
                    raise cannot_write(exc) from None
                done += 1
            if progress is not None:
                progress(done, len(tasks))

        ex = plugins.get_executor(cfg.executor.name)
        try:
            ex.map(
                run_step,
                tasks,
                workers=cfg.executor.workers,
                options=executor_options(cfg),
                on_result=on_result,
            )
        except (UsageError, PluginError):
            raise
        except OutputError as exc:
            write_error = exc
            unfinished = f"the run stopped: {exc}"
        except DmcaError as exc:  # workers lost: report the steps that never came back as failed
            unfinished = str(exc)
        except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: keep what finished, then stop
            interrupted = exc
            why = "terminated" if isinstance(exc, Terminated) else "interrupted"
            unfinished = f"the run was {why} before this step finished"
        if unfinished is not None:
            for task in tasks:
                if outcomes[task.index] is None:
                    outcomes[task.index] = lost_step(task, unfinished)
        # the run's record is completed whole: a signal from here on waits for the telemetry to
        # be closed and the results written (a second Ctrl-C used to cut the forest plot)
        done = False
        try:
            with held():
                try:
                    emitter.close()
                except OSError as exc:  # the last batch: the results are still written
                    write_error = write_error or cannot_write(exc)
                final = [o for o in outcomes if o is not None]
                summary = RunSummary(run_id, out, telemetry_path, final, resolved)
                summary.kept_earlier = None if summary.ok else earlier_results(out)
                if summary.kept_earlier is None:
                    write_outputs(summary, cfg, config_path=config_path, started=started, finished=utc_now())
                done = True
        except KeyboardInterrupt as exc:
            if not done:  # a third signal does not wait: nothing to say about the results
                raise
            interrupted = interrupted or exc  # held during the write, delivered now: say what was kept
    kept = len(summary.outcomes) - len(summary.failed)
    where = f"results in {out}/" if summary.kept_earlier is None else f"{out}/ {summary.kept_earlier}"
    what_is_kept = f"{kept} of {len(summary.outcomes)} steps finished; {where}"
    if write_error is not None:
        raise OutputError(f"{write_error}; {what_is_kept}")
    if interrupted is not None:
        interrupted.dmca_kept = what_is_kept  # type: ignore[attr-defined] # the CLI's last line
        raise interrupted
    return summary
