"""``config/experiment.yaml``: attrs classes, structured by cattrs, with one-line errors.

A bad file is reported as ``FILE:LINE: key.path: problem`` (``studies[1].treatment: required``,
``telemetry.batch.max_records: expected int, got 'ten'``); unknown keys get a suggestion.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
import typing
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import attrs
import cattrs
import yaml
from cattrs.cols import list_structure_factory
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError, IterableValidationError
from cattrs.gen import make_dict_structure_fn

from .errors import ConfigError, DmcaError


@attrs.define
class BatchConfig:
    max_records: int = 100
    max_seconds: float = 5.0


@attrs.define
class TelemetryConfig:
    sink: str = "jsonl"
    path: str = "ops_telemetry.jsonl"
    batch: BatchConfig = attrs.field(factory=BatchConfig)
    gzip: bool = False
    encryption: Literal["none", "line", "batch"] = "none"
    fsync: bool = False


@attrs.define
class ExecutorConfig:
    name: str = "local"
    workers: int | None = None  # None: one per CPU
    address: str | None = None
    options: dict[str, Any] = attrs.field(factory=dict)


@attrs.define
class CostModel:
    """Prices that turn measured CPU time and memory into ``infra_cost_usd``."""

    usd_per_cpu_hour: float = 0.048
    usd_per_gb_hour: float = 0.006


@attrs.define
class Intervention:
    t0: float = 0.0
    t1: float = 1.0


# the hypothesis of a study that names none: the csv domain's (it has none), or, until
# fill_hypotheses runs, a study of a domain whose only hypothesis is then filled in
NO_HYPOTHESIS = "-"


@attrs.define
class StudyConfig:
    domain: str
    treatment: str
    outcome: str
    hypothesis: str = NO_HYPOTHESIS
    name: str | None = None
    rows: int = 2000
    params: dict[str, Any] = attrs.field(factory=dict)
    intervention: Intervention = attrs.field(factory=Intervention)
    # "truth": the domain's true DAG; "discover": PC; otherwise edges "A->B,B->C"
    graph: str | list[str] = "truth"
    alpha: float = 0.01
    steps: int = 1
    # True when _name_studies made the name (not a config key: init=False keeps cattrs off it)
    _generated_name: bool = attrs.field(default=False, init=False, repr=False, eq=False)
    # True when the config wrote rows, even as the default (a domain with fixed data refuses it)
    rows_given: bool = attrs.field(default=False, init=False, repr=False, eq=False)

    @property
    def label(self) -> str:
        """Its ``name``; else ``domain/hypothesis (k=v, ...)`` with its params, or for a domain
        reading a file (no hypothesis, a ``path`` param: ``csv``) ``domain: path``. The params
        are part of it because SIDRCE, grouping the telemetry of many runs, must tell a WIMP
        study at 50 GeV from one at 100 GeV, and the studies of different files, apart."""
        if self.name:
            return self.name
        rest = dict(self.params)
        path = rest.get("path") if self.hypothesis == NO_HYPOTHESIS else None
        if isinstance(path, str) and path:
            del rest["path"]
            base = f"{self.domain}: {path}"
        else:
            base = f"{self.domain}/{self.hypothesis}"
        return f"{base} ({params_text(rest)})" if rest else base


def params_text(params: Mapping[str, Any]) -> str:
    """``k=v, ...`` in the config's order; a fingerprint when that would make a label too long."""
    parts = []
    for k, v in params.items():
        shown = v if isinstance(v, (str, int, float)) else _bounded(_tokens(v, {}), _PARAMS_TEXT_MAX)
        parts.append(f"{k}={shown}")
    text = ", ".join(parts)
    if len(text) <= _PARAMS_TEXT_MAX:
        return text
    digest = hashlib.sha256()
    for token in _tokens(dict(params), {}):
        digest.update(token.encode())
    return f"params {digest.hexdigest()[:10]}"


def _tokens(value: Any, seen: dict[int, int]) -> Iterator[str]:
    """``value`` as compact JSON, piece by piece; a container met again (a YAML alias, even one
    inside itself) is ``*n`` the second time, so nine levels of nine aliases are not 9**9 pieces."""
    if isinstance(value, Mapping | list):
        if id(value) in seen:
            yield f"*{seen[id(value)]}"
            return
        seen[id(value)] = len(seen)
        mapping = isinstance(value, Mapping)
        yield "{" if mapping else "["
        for n, item in enumerate(value.items() if mapping else value):
            if n:
                yield ","
            if mapping:
                yield f"{json.dumps(str(item[0]))}:"
                item = item[1]
            yield from _tokens(item, seen)
        yield "}" if mapping else "]"
    else:
        yield json.dumps(value, default=str)


def _bounded(tokens: Iterator[str], limit: int) -> str:
    """The pieces joined, stopping once past ``limit`` characters (enough to tell it is too long)."""
    out: list[str] = []
    size = 0
    for token in tokens:
        out.append(token)
        size += len(token)
        if size > limit:
            break
    return "".join(out)


_PARAMS_TEXT_MAX = 60


@attrs.define
class ExperimentConfig:
    experiment: str = "dmca"
    seed: int = 0
    estimator: str = "auto"
    output: str = "results"
    executor: ExecutorConfig = attrs.field(factory=ExecutorConfig)
    telemetry: TelemetryConfig = attrs.field(factory=TelemetryConfig)
    cost_model: CostModel = attrs.field(factory=CostModel)
    studies: list[StudyConfig] = attrs.field(factory=list)


# --- strict scalars: YAML's "ten" must not become an int, nor 1.5 silently become 1 --------------


def _describe(value: Any) -> str:
    if isinstance(value, Mapping):
        return "a mapping"
    if value is None:
        return "nothing"
    return repr(value) if isinstance(value, str) else f"{type(value).__name__} {value!r}"


def _int(value: Any, _: type) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected int, got {_describe(value)}")
    return value


def _float(value: Any, _: type) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected number, got {_describe(value)}")
    try:
        x = float(value)
    except OverflowError:  # an int too large for a float
        x = math.inf
    # YAML reads .nan and .inf; no field means anything by them, and they would only fail late
    # (a NaN intervention breaks results.json after the whole run)
    if not math.isfinite(x):
        raise TypeError("must be a finite number")
    return x


def _bool(value: Any, _: type) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected true or false, got {_describe(value)}")
    return value


def _str(value: Any, _: type) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected text, got {_describe(value)}")
    return value


def _graph(value: Any, _: type) -> str | list[str]:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise TypeError(f"expected 'truth', 'discover' or edges like 'A->B,B->C', got {_describe(value)}")


def _optional_int(value: Any, _: type) -> int | None:
    return None if value is None else _int(value, int)


def _optional_str(value: Any, _: type) -> str | None:
    return None if value is None else _str(value, str)


def _mapping(value: Any, _: type) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"expected a mapping, got {_describe(value)}")
    return dict(value)


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True)

    # cattrs calls .keys() on whatever stands where a section belongs and iterates any iterable
    # where a list belongs: check the shape first, so `studies: [cosmology]` or `studies: {a: 1}`
    # gets a plain message instead of "'str' object has no attribute 'keys'"
    def section_hook(cl: type) -> Any:
        inner = make_dict_structure_fn(cl, conv)
        what = "a study (a mapping with domain, treatment, outcome)" if cl is StudyConfig else "a mapping"

        def hook(value: Any, t: type) -> Any:
            if not isinstance(value, Mapping):
                raise TypeError(f"expected {what}, got {_describe(value)}")
            return inner(value, t)

        return hook

    def list_hook(t: type) -> Any:
        inner = list_structure_factory(t, conv)

        def hook(value: Any, typ: type) -> Any:
            if not isinstance(value, list):
                raise TypeError(f"must be a list (one '- ' item each), got {_describe(value)}")
            return inner(value, typ)

        return hook

    conv.register_structure_hook_factory(attrs.has, section_hook)
    conv.register_structure_hook_factory(lambda t: typing.get_origin(t) is list, list_hook)
    conv.register_structure_hook(int, _int)
    conv.register_structure_hook(float, _float)
    conv.register_structure_hook(bool, _bool)
    conv.register_structure_hook(str, _str)
    # unions and generics are not classes: dispatch on equality instead
    special = {
        int | None: _optional_int,
        str | None: _optional_str,
        str | list[str]: _graph,
        dict[str, Any]: _mapping,
        Literal["none", "line", "batch"]: lambda v, _: _choice(v, ("none", "line", "batch")),
    }
    for typ, hook in special.items():
        conv.register_structure_hook_func(lambda t, typ=typ: t == typ, hook)
    return conv


def _choice(value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise TypeError(f"expected one of {', '.join(choices)}, got {_describe(value)}")
    return value


converter = _make_converter()


# --- error messages ---------------------------------------------------------------------------


def _fields_of(cls: type | None) -> list[str]:
    if cls is None or not attrs.has(cls):
        return []
    return [f.name for f in attrs.fields(cls) if f.init]  # init=False fields are no config keys


def _walk(exc: BaseException, path: str, cls: type | None) -> Iterator[tuple[str, str]]:
    """Yield ``(key path, problem)`` for each leaf of a cattrs validation error tree."""
    if isinstance(exc, ForbiddenExtraKeysError):
        valid = _fields_of(exc.cl)
        for key in sorted(exc.extra_fields):
            near = difflib.get_close_matches(key, valid, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else f"; valid keys: {', '.join(valid)}"
            yield (f"{path}.{key}" if path else key), f"unknown key{hint}"
        return
    if isinstance(exc, ClassValidationError):
        with_notes, without = exc.group_exceptions()
        for sub in without:
            yield from _walk(sub, path, cls)
        for sub, note in with_notes:
            name = getattr(note, "name", "?")
            sub_path = f"{path}.{name}" if path else name
            if isinstance(sub, KeyError):
                yield sub_path, "required"
            else:
                yield from _walk(sub, sub_path, getattr(note, "type", None))
        return
    if isinstance(exc, IterableValidationError):
        with_notes, without = exc.group_exceptions()
        for sub in without:
            yield from _walk(sub, path, None)
        for sub, note in with_notes:
            yield from _walk(sub, f"{path}[{getattr(note, 'index', '?')}]", None)
        return
    if isinstance(exc, BaseExceptionGroup):
        for sub in exc.exceptions:
            yield from _walk(sub, path, cls)
        return
    yield path or "(top level)", str(exc) or type(exc).__name__


def _line_index(node: yaml.Node, path: str = "") -> Iterator[tuple[str, int]]:
    """Map each key path of a composed YAML document to its 1-based line.

    An alias is its anchor's node again, walked again under the alias's path, except from inside
    itself (an anchor used in itself would recurse forever) and, past a budget of nodes, not
    twice (nine levels of nine nested aliases, a "billion laughs" file, are 9**9 nodes to walk):
    such a key has the line of the closest key above it that was indexed.
    """
    seen: set[int] = set()
    inside: set[int] = set()
    walked = 0

    def walk(node: yaml.Node, path: str) -> Iterator[tuple[str, int]]:
        nonlocal walked
        key = id(node)
        if key in inside or (key in seen and walked > 100_000 + 4 * len(seen)):
            return
        seen.add(key)
        inside.add(key)
        walked += 1
        try:
            if isinstance(node, yaml.MappingNode):
                for key_node, value_node in node.value:
                    sub = f"{path}.{key_node.value}" if path else str(key_node.value)
                    yield sub, key_node.start_mark.line + 1
                    yield from walk(value_node, sub)
            elif isinstance(node, yaml.SequenceNode):
                for i, item in enumerate(node.value):
                    sub = f"{path}[{i}]"
                    yield sub, item.start_mark.line + 1
                    yield from walk(item, sub)
        finally:
            inside.discard(key)

    yield from walk(node, path)


def _line_for(lines: Mapping[str, int], path: str) -> int | None:
    # a missing key has no line of its own: point at the closest enclosing one that exists
    while path:
        if path in lines:
            return lines[path]
        cut = max(path.rfind("."), path.rfind("["))
        path = path[:cut] if cut > 0 else ""
    return None


def _where(source: str, lines: Mapping[str, int], path: str) -> str:
    """``source:LINE`` for ``path`` (or the closest key above it that has a line), else ``source``."""
    line = _line_for(lines, path)
    return f"{source}:{line}" if line else source


class _DuplicateKey(Exception):
    def __init__(self, key: Any, line: int) -> None:
        super().__init__(key, line)
        self.key, self.line = key, line


# libyaml's parser where PyYAML was built with it: ~5x faster on a sweep of thousands of studies
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # type: ignore[assignment]


class _UniqueKeyLoader(_SafeLoader):  # type: ignore[misc,valid-type]
    """SafeLoader that refuses a key given twice in one mapping (plain YAML keeps the last one,
    so a repeated ``rows:`` would silently override the first)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *base` then overriding a merged key is what merges are for
            key = self.construct_object(key_node, deep=True)
            try:
                if key in seen:
                    raise _DuplicateKey(key, key_node.start_mark.line + 1)
                seen.add(key)
            except TypeError:
                pass  # an unhashable key: SafeLoader's own error says so
        return super().construct_mapping(node, deep=deep)


def _compose_and_load(text: str) -> tuple[yaml.Node | None, Any]:
    """The document's node tree (for line numbers) and its data, from one parse."""
    loader = _UniqueKeyLoader(text)  # a SafeLoader: safe
    try:
        node = loader.get_single_node()
        return node, (loader.construct_document(node) if node is not None else None)
    finally:
        loader.dispose()


def _syntax_error_line(exc: yaml.MarkedYAMLError, text: str) -> int | None:
    """The 1-based line a person would fix for a YAML syntax error.

    The parser's ``problem_mark`` is where it noticed the problem, often the line after the
    mistake: a key without its ``:`` or a quote never closed is noticed at the next line or at
    the end of the file, and a missing ``,`` or closing bracket of a multi-line ``[...]``/``{...}``
    at the next item. The ``context_mark`` is where the construct being read began.
    """
    problem, context = exc.problem_mark, exc.context_mark
    if problem is None:
        return context.line + 1 if context is not None else None
    if context is None:
        return problem.line + 1
    what, why = exc.context or "", exc.problem or ""
    # a key with no ':' (libyaml: "while scanning a simple key"), a quote that never closes
    if "simple key" in what or ("quoted scalar" in what and "end of stream" in why):
        return context.line + 1
    # a flow collection whose ',' or closing bracket is missing, noticed at the first token of a
    # later line (or at the end of the file): it belongs at the end of the last line with content
    if "flow" in what:
        lines = text.splitlines()
        before = lines[problem.line][: problem.column] if problem.line < len(lines) else ""
        if not before.strip(" \t-"):
            line = min(problem.line, len(lines)) - 1
            floor = min(context.line, line)
            while line > floor and not lines[line].split("#", 1)[0].strip():
                line -= 1
            return max(line, 0) + 1
    return problem.line + 1


def parse_config(text: str, source: str = "<config>") -> ExperimentConfig:
    """Parse and structure a config; raise :class:`ConfigError` with one line on any problem."""
    try:
        return _parse_config(text, source)
    except RecursionError:  # the YAML composer and the walks below recurse once per level
        raise ConfigError(
            f"{source}: nested too deeply (over {_MAX_NESTING} levels of lists or mappings)"
        ) from None


_MAX_NESTING = 500
_BRACKETS = re.compile(r"[\[\]{}]")
# what opens a block level within a line: "- - x", "? ? x" (a level across lines needs indentation)
_BLOCK_OPENERS = re.compile(r"(?:^|\s)[-?](?=\s|$)", re.MULTILINE)
_OPEN_TOKENS = (
    yaml.BlockSequenceStartToken,
    yaml.BlockMappingStartToken,
    yaml.FlowSequenceStartToken,
    yaml.FlowMappingStartToken,
)
_CLOSE_TOKENS = (yaml.BlockEndToken, yaml.FlowSequenceEndToken, yaml.FlowMappingEndToken)


def _nested_too_deeply(text: str) -> bool:
    """Whether ``text`` nests lists or mappings past :data:`_MAX_NESTING` levels: libyaml's C
    parser recurses once per level without Python's check (a 60 KB file of 25,000 ``[`` ended the
    process). A cheap bound first (brackets, indentation, ``-``/``?`` per line; it counts those in
    comments and strings too); past it, the depth from the pure-Python scanner's tokens, which does
    not recurse and knows comments and strings."""
    # an upper bound: every flow level is a bracket, and a block level opens on a line either
    # further indented or after a "-"/"?" (or one mapping key) on it
    depth = flow = block = 0
    for m in _BRACKETS.finditer(text):
        depth = depth + 1 if m.group() in "[{" else max(depth - 1, 0)
        flow = max(flow, depth)
    for line in text.splitlines():
        indent = len(line) - len(line.lstrip(" "))
        block = max(block, indent + len(_BLOCK_OPENERS.findall(line)) + 1)
    if flow + block <= _MAX_NESTING:
        return False
    depth = 0
    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            if isinstance(token, _OPEN_TOKENS):
                depth += 1
                if depth > _MAX_NESTING:
                    return True
            elif isinstance(token, _CLOSE_TOKENS):
                depth -= 1
    except yaml.YAMLError:
        return False  # the real parser says what is wrong, in one line
    return False


def _parse_config(text: str, source: str) -> ExperimentConfig:
    if _nested_too_deeply(text):
        raise RecursionError
    try:
        node, data = _compose_and_load(text)
    except _DuplicateKey as exc:
        raise ConfigError(f"{source}:{exc.line}: duplicate key {exc.key!r}") from None
    except yaml.MarkedYAMLError as exc:
        found = _syntax_error_line(exc, text)
        line = f":{found}" if found is not None else ""
        raise ConfigError(f"{source}{line}: YAML syntax error: {exc.problem or exc.context}") from None
    except yaml.reader.ReaderError as exc:  # its str() is two lines, with an offset in the text
        # the reader stops at the first character it refuses, so that character's first occurrence
        # is the one (libyaml counts the offset in UTF-8 bytes, PyYAML in characters)
        char = exc.character if isinstance(exc.character, int) else -1
        at = text.find(chr(char)) if char >= 0 else -1
        line = f":{text.count(chr(10), 0, at) + 1}" if at >= 0 else ""
        raise ConfigError(f"{source}{line}: YAML error: character #x{char:04x}: {exc.reason}") from None
    except yaml.YAMLError as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"{source}: YAML error: {first}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {type(data).__name__}")
    lines = dict(_line_index(node)) if node is not None else {}
    try:
        cfg = converter.structure(data, ExperimentConfig)
    except Exception as exc:  # cattrs raises exception groups; turn the first leaf into one line
        problems = list(_walk(exc, "", ExperimentConfig))
        path, problem = problems[0] if problems else ("(top level)", str(exc))
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ConfigError(f"{_where(source, lines, path)}: {path}: {problem}{more}") from None
    _check_values(cfg, source, lines)
    for i, st in enumerate(cfg.studies):
        st.rows_given = f"studies[{i}].rows" in lines
    _name_studies(cfg)
    return cfg


def _name_studies(cfg: ExperimentConfig) -> None:
    """Give unnamed studies that would share a label (``domain/hypothesis``, or ``csv: path``)
    one of their own.

    Results, the summary and the forest plot are keyed by label: two studies of one domain and
    hypothesis (other treatments, or a repeat) must not be merged into one. They become
    ``domain/hypothesis T→Y``, and ``… #k`` (k from 1, in config order) if that still repeats.
    Explicit names are never changed, and no generated label takes one.
    """
    taken = {st.name for st in cfg.studies if st.name is not None}
    unnamed = [st for st in cfg.studies if st.name is None]
    plain = Counter(st.label for st in unnamed)
    rest = []
    for st in unnamed:
        if plain[st.label] == 1 and st.label not in taken:
            taken.add(st.label)  # unique already: keeps domain/hypothesis
        else:
            rest.append(st)
    longer = Counter(f"{st.label} {st.treatment}→{st.outcome}" for st in rest)
    last: dict[str, int] = {}  # the k a base's latest study took: a sweep repeats one base 1000s of times
    for st in rest:
        base = f"{st.label} {st.treatment}→{st.outcome}"
        k = last.get(base, 0)
        name = base if k == 0 else f"{base} #{k}"
        while (longer[base] > 1 and k == 0) or name in taken:
            k += 1
            name = f"{base} #{k}"
        st.name = name
        st._generated_name = True
        last[base] = k
        taken.add(name)


def fill_hypotheses(cfg: ExperimentConfig, domains: Mapping[str, Any]) -> None:
    """Give each study that names no hypothesis its domain's only one, when it has exactly one
    (``domains``: the installed domains by name), and label the studies again.

    A domain with several hypotheses is left to the preflight check, which asks for one; the csv
    domain (none) keeps ``NO_HYPOTHESIS``. Labels were made when the file was parsed, before the
    domains were known: ``hello_linear/-`` must become ``hello_linear/toy``, and two studies that
    now share a label must get labels of their own.
    """
    filled = False
    for st in cfg.studies:
        domain = domains.get(st.domain) if st.hypothesis == NO_HYPOTHESIS else None
        if domain is None:
            continue  # named one, or an unknown domain (the preflight check reports it)
        hyps = tuple(domain.hypotheses())
        if len(hyps) == 1:
            st.hypothesis = hyps[0]
            filled = True
    if not filled:
        return
    for st in cfg.studies:
        if st._generated_name:
            st.name, st._generated_name = None, False
    _name_studies(cfg)


def _check_values(cfg: ExperimentConfig, source: str, lines: Mapping[str, int]) -> None:
    def bad(path: str, problem: str) -> ConfigError:
        return ConfigError(f"{_where(source, lines, path)}: {path}: {problem}")

    if not cfg.studies:
        raise bad("studies", "at least one study is required")
    if cfg.seed < 0:  # numpy's generators take only non-negative seeds
        raise bad("seed", f"must not be negative, got {cfg.seed}")
    if cfg.telemetry.batch.max_records < 1:
        raise bad("telemetry.batch.max_records", "must be at least 1")
    if cfg.telemetry.batch.max_seconds <= 0:
        raise bad("telemetry.batch.max_seconds", "must be positive")
    if cfg.executor.workers is not None and cfg.executor.workers < 1:
        raise bad("executor.workers", "must be at least 1")
    for name in ("usd_per_cpu_hour", "usd_per_gb_hour"):
        if getattr(cfg.cost_model, name) < 0:
            raise bad(f"cost_model.{name}", "must not be negative")
    for i, st in enumerate(cfg.studies):
        for path, value in _numbers(st.params, f"studies[{i}].params"):
            if not math.isfinite(value):  # params are free-form, so the float hook never saw them
                raise bad(path, "must be a finite number")
        if st.rows < 3:
            raise bad(f"studies[{i}].rows", "must be at least 3")
        if st.steps < 1:
            raise bad(f"studies[{i}].steps", "must be at least 1")
        if not 0 < st.alpha < 1:
            raise bad(f"studies[{i}].alpha", "must lie strictly between 0 and 1")
        if st.intervention.t0 == st.intervention.t1:
            raise bad(f"studies[{i}].intervention", "t0 and t1 must differ")
        if st.treatment == st.outcome:
            raise bad(f"studies[{i}].outcome", "must differ from the treatment")
    first: dict[str, int] = {}
    for i, st in enumerate(cfg.studies):
        if st.name is not None and first.setdefault(st.name, i) != i:
            raise bad(f"studies[{i}].name", f"{st.name!r} is already the name of studies[{first[st.name]}]")


def _numbers(value: Any, path: str, seen: set[int] | None = None) -> Iterator[tuple[str, float]]:
    """Every float inside a free-form value (a study's params), with its key path.

    A YAML alias makes one object appear at many paths (nine aliases nine deep: 9^9 paths), or
    inside itself: each container is walked once, at the first path that reaches it.
    """
    if isinstance(value, float):
        yield path, value
        return
    if not isinstance(value, Mapping | list):
        return
    seen = set() if seen is None else seen
    if id(value) in seen:
        return
    seen.add(id(value))
    items = value.items() if isinstance(value, Mapping) else enumerate(value)
    for k, v in items:
        yield from _numbers(v, f"{path}.{k}" if isinstance(value, Mapping) else f"{path}[{k}]", seen)


_FIELD = re.compile(
    r"([A-Za-z_]\w*(?:\[\d+\])*(?:\.[A-Za-z_][\w-]*(?:\[\d+\])*)*): "
)  # params keys may have '-'


def locate(source: str, field: str) -> str:
    """``source:LINE`` for a key path of the config file ``source``, or ``source`` alone.

    Checks that need the plugins (names of estimators, domains, variables) run after the config
    is parsed, so the file is read again to find the line; only an error needs it.
    """
    try:
        node, _ = _compose_and_load(Path(source).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, _DuplicateKey):
        return source
    return _where(source, dict(_line_index(node)) if node is not None else {}, field)


def located(exc: DmcaError, source: str) -> DmcaError:
    """``exc`` with ``source:LINE:`` in front when its message starts with a config key path
    (``studies[0].domain: unknown domain ...``); as it is otherwise (``--estimator: ...``)."""
    message = str(exc)
    match = _FIELD.match(message)
    if match is None or match.group(1).split(".")[0].split("[")[0] not in _fields_of(ExperimentConfig):
        return exc
    try:
        return type(exc)(f"{locate(source, match.group(1))}: {message}")
    except TypeError:  # an error class that takes other arguments: leave it as it is
        return exc


def load_config(path: str | Path) -> ExperimentConfig:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    return parse_config(text, str(path))
