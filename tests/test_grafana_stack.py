"""The Grafana stack without Docker: compose, Dockerfile and provisioning are checked for what can
be checked for real. Infinity targets are run against the real SIDRCE app (under uvicorn, with a
token and sample telemetry) and Prometheus expressions are matched against its real ``/metrics``:
a field renamed on either side fails here."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

import httpx
import pytest
import yaml
from dashboard_support import REPO, running_sidrce, write_telemetry
from prometheus_client.parser import text_string_to_metric_families

from sidrce.cli import parser as sidrce_parser

COMPOSE = REPO / "docker-compose.yml"
DS = REPO / "grafana/provisioning/datasources/ds.yml"
PROVIDERS = REPO / "grafana/provisioning/dashboards/dash.yml"
DASHBOARD = REPO / "grafana/provisioning/dashboards/json/dmca_finops.json"
INFINITY = "yesoreyeram-infinity-datasource"
TOKEN = "grafana-test-token-77ab"
VAR = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(?::?[-?][^}]*)?\}")


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE)


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def datasources() -> dict[str, dict[str, Any]]:
    return {ds["uid"]: ds for ds in load_yaml(DS)["datasources"]}


def expand_default(text: str) -> str:
    """Compose interpolation with every variable unset: ``${X:-d}`` -> d, ``${X}`` -> ''."""
    return re.sub(r"\$\{[A-Z_][A-Z0-9_]*(?::?-([^}]*))?\}", lambda m: m.group(1) or "", text)


def mounts(service: str) -> dict[str, tuple[Path, bool]]:
    """Container path -> (host path in the repo, read-only) of the service's bind mounts."""
    out = {}
    for spec in compose()["services"][service].get("volumes", []):
        host, container, *opts = expand_default(spec).split(":")
        if host.startswith((".", "/")):
            out[container] = ((REPO / host).resolve(), "ro" in opts)
    return out


def host_path(service: str, container_path: str) -> Path:
    """Where a path inside the service's container comes from in the repo."""
    target = PurePosixPath(container_path)
    for mount, (host, _) in mounts(service).items():
        if target == PurePosixPath(mount) or PurePosixPath(mount) in target.parents:
            return host / target.relative_to(mount)
    raise AssertionError(f"{container_path} of service {service} is not mounted from the repo")


def walk_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for p in panels:
        yield p
        yield from walk_panels(p.get("panels", []))


def targets() -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, target) for every panel target and every query variable."""
    dash = dashboard()
    for p in walk_panels(dash["panels"]):
        for t in p.get("targets", []):
            yield f"panel {p['title']!r}", {"datasource": p.get("datasource"), **t}
    for v in dash["templating"]["list"]:
        if v.get("type") == "query":
            q = v["query"]
            t = q["infinityQuery"] if isinstance(q, dict) and q.get("queryType") == "infinity" else q
            yield (
                f"variable {v['name']!r}",
                {"datasource": v["datasource"], **(t if isinstance(t, dict) else {})},
            )


# --- a small gjson: the path syntax the Infinity backend parser applies first ------------------------
def gjson(doc: Any, path: str) -> Any:
    """Resolve a gjson dot path (keys, array indexes, ``#`` for a length); KeyError if absent.
    Other gjson syntax is refused, so a dashboard that starts using it fails here, not silently."""
    if path == "":
        return doc
    cur = doc
    for part in path.split("."):
        if re.search(r"[*?|@\\#]", part) and part != "#":
            raise AssertionError(f"selector {path!r}: only plain gjson paths are checked here")
        if isinstance(cur, list):
            if part == "#":
                cur = len(cur)
            elif part.isdigit() and int(part) < len(cur):
                cur = cur[int(part)]
            else:
                raise KeyError(path)
        elif isinstance(cur, dict) and part in cur:
            cur = cur[part]
        else:
            raise KeyError(path)
    return cur


def check_column(value: Any, column: dict[str, Any], where: str) -> None:
    kind = column.get("type", "string")
    if kind == "number":
        assert isinstance(value, int | float) and not isinstance(value, bool), (
            f"{where}: {value!r} is no number"
        )
    elif kind == "string":
        assert isinstance(value, str) and value, f"{where}: {value!r} is no string"
    elif kind == "timestamp":
        assert isinstance(value, str), f"{where}: {value!r} is no time"
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    else:
        raise AssertionError(f"{where}: column type {kind!r} not checked here")


# --- compose, Dockerfile, .env.example --------------------------------------------------------------
def test_compose_services_images_and_secrets() -> None:
    c = compose()
    services = c["services"]
    assert set(services) == {"sidrce", "grafana", "prometheus"}
    m = re.fullmatch(r"grafana/grafana:(\d+)\.(\d+)\.(\d+)", services["grafana"]["image"])
    assert m and (int(m[1]), int(m[2])) >= (12, 1), (
        "Grafana pinned to 12.1 or later: GF_PLUGINS_PREINSTALL_SYNC came with grafana/grafana#105292"
    )
    assert re.fullmatch(r"prom/prometheus:v\d+\.\d+\.\d+", services["prometheus"]["image"])
    genv = services["grafana"]["environment"]
    assert INFINITY in genv["GF_PLUGINS_PREINSTALL_SYNC"].split(",")
    assert VAR.fullmatch(genv["GF_SECURITY_ADMIN_PASSWORD"]), "the admin password comes from .env"
    assert services["sidrce"]["build"] == "."

    # every variable the compose file reads is documented in .env.example, and nothing more
    used = set(VAR.findall(COMPOSE.read_text(encoding="utf-8")))
    listed = {
        line.split("=", 1)[0]
        for line in (REPO / ".env.example").read_text().splitlines()
        if re.match(r"[A-Z_][A-Z0-9_]*=", line)
    }
    assert used == listed, f"only in compose: {used - listed}; only in .env.example: {listed - used}"
    assert {"SIDRCE_AES_KEY", "SIDRCE_TOKEN", "GRAFANA_ADMIN_PASSWORD"} <= listed
    for name in ("SIDRCE_TOKEN", "SIDRCE_AES_KEY", "GRAFANA_ADMIN_PASSWORD"):
        value = next(
            line.split("=", 1)[1]
            for line in (REPO / ".env.example").read_text().splitlines()
            if line.startswith(name + "=")
        )
        assert value == "", f".env.example must not ship a value for {name}"
    assert ".env" in (REPO / ".gitignore").read_text().split()

    # telemetry: mounted read-only, and the file SIDRCE follows lies in that mount
    tele = services["sidrce"]["environment"]["SIDRCE_TELEMETRY"]
    ((mount, (host, ro)),) = mounts("sidrce").items()
    assert ro and host.is_dir()
    assert PurePosixPath(mount) in PurePosixPath(expand_default(tele)).parents


def test_dockerfile_builds_from_files_that_exist_and_runs_sidrce_serve() -> None:
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    copies = [  # from the build context (not --from=another stage)
        shlex.split(line)[1:-1]
        for line in text.splitlines()
        if line.startswith("COPY ") and not line.startswith("COPY --from=")
    ]
    sources = [s for srcs in copies for s in srcs]
    assert {"pyproject.toml", "setup.py", "plugins/aes_gcm"} <= set(sources)
    for src in sources:
        assert (REPO / src).exists(), f"Dockerfile copies {src}, which is not in the repo"
    # wheels built where a C compiler is, for the line scanner; the final stage installs them
    built = re.search(r"pip wheel ([^\\&\n]+)", text)[1].split()
    assert "." in built and "./plugins/aes_gcm" in built and "gcc" in text
    assert "pip install /wheels/*.whl" in text and "import sidrce._linescan, dmca_aes_gcm._envscan" in text
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", text, re.M)[1])
    assert cmd[:2] == ["sidrce", "serve"]
    args = sidrce_parser().parse_args(cmd[1:])  # the real CLI accepts the command
    assert (args.host, args.port) == ("0.0.0.0", 8080)
    # the image sets where the telemetry is; compose points it into the read-only mount
    assert re.search(r"SIDRCE_TELEMETRY=/telemetry/", text)

    ignore = [
        ln.strip() for ln in (REPO / ".dockerignore").read_text().splitlines() if ln.strip() and ln[0] != "#"
    ]
    assert ignore[0] == "*", ".dockerignore starts by excluding everything"
    allowed = {ln[1:].rstrip("/") for ln in ignore if ln.startswith("!")}
    for src in sources:
        assert src.rstrip("/") in allowed, f".dockerignore keeps {src} out of the build context"
    assert not any(a.startswith((".env", "ops_telemetry", "results")) for a in allowed)


def test_prometheus_config_scrapes_sidrce_with_the_token() -> None:
    c = compose()
    prom = c["services"]["prometheus"]
    command = " ".join(prom["command"]) if isinstance(prom["command"], list) else prom["command"]
    config_in_container = re.search(r"--config\.file=(\S+)", command)[1]
    cfg = load_yaml(host_path("prometheus", config_in_container))
    (job,) = cfg["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    (target,) = job["static_configs"][0]["targets"]
    host, port = target.split(":")
    assert host in c["services"] and host == "sidrce" and int(port) == 8080
    assert job["authorization"]["type"] == "Bearer"
    token_file = job["authorization"]["credentials_file"]
    # the service writes SIDRCE_TOKEN to exactly that file before Prometheus starts
    assert f"> {token_file}" in command and "$$SIDRCE_TOKEN" in command
    assert "SIDRCE_TOKEN" in prom["environment"]


def test_grafana_provisioning_files_exist_and_agree() -> None:
    c = compose()
    g = c["services"]["grafana"]
    assert host_path("grafana", "/etc/grafana/provisioning/datasources/ds.yml") == DS.resolve()
    (provider,) = load_yaml(PROVIDERS)["providers"]
    folder = host_path("grafana", provider["options"]["path"])
    assert DASHBOARD.resolve() in folder.glob("*.json")
    assert (
        host_path("grafana", g["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])
        == DASHBOARD.resolve()
    )
    assert all(ro for _, ro in mounts("grafana").values())

    ds = datasources()
    inf = next(d for d in ds.values() if d["type"] == INFINITY)
    prom = next(d for d in ds.values() if d["type"] == "prometheus")
    url = httpx.URL(inf["url"])
    assert url.host == "sidrce" and url.port == 8080
    assert inf["url"] in inf["jsonData"]["allowedHosts"]
    assert inf["jsonData"]["httpHeaderName1"] == "Authorization"
    assert inf["secureJsonData"]["httpHeaderValue1"] == "Bearer ${SIDRCE_TOKEN}"
    assert "SIDRCE_TOKEN" in g["environment"]  # Grafana expands it from its own environment
    purl = httpx.URL(prom["url"])
    assert purl.host == "prometheus" and purl.port == 9090


def test_dashboard_panels_use_provisioned_datasources() -> None:
    dash = dashboard()
    assert dash["title"] == "DMCA FinOps (SIDRCE)"
    ds = datasources()
    ids = [p["id"] for p in walk_panels(dash["panels"])]
    assert len(ids) == len(set(ids))
    boxes = [(p["title"], p["gridPos"]) for p in dash["panels"]]
    assert [b["y"] for _, b in boxes] == sorted(b["y"] for _, b in boxes), "panels listed top to bottom"
    for i, (t1, a) in enumerate(boxes):
        assert a["x"] + a["w"] <= 24, t1
        for t2, b in boxes[i + 1 :]:
            apart = (
                a["x"] + a["w"] <= b["x"]
                or b["x"] + b["w"] <= a["x"]
                or a["y"] + a["h"] <= b["y"]
                or b["y"] + b["h"] <= a["y"]
            )
            assert apart, f"panels {t1!r} and {t2!r} overlap"
    kinds = set()
    for where, t in targets():
        d = t["datasource"]
        assert d["uid"] in ds, f"{where}: datasource uid {d['uid']!r} is not provisioned"
        assert d["type"] == ds[d["uid"]]["type"], where
        kinds.add(d["type"])
        if d["type"] == INFINITY:
            assert t["parser"] == "backend" and t["type"] == "json" and t["source"] == "url", where
    assert kinds == {INFINITY, "prometheus"}
    for p in walk_panels(dash["panels"]):
        if p["type"] != "row":
            assert p["datasource"]["uid"] in ds, p["title"]
    # every panel that shows an FTI carries the grade bounds 1.00 and 1.05
    fti_panels = [
        p
        for p in walk_panels(dash["panels"])
        if any(
            c["selector"] in ("fti", "fti_avg") for t in p.get("targets", []) for c in t.get("columns", [])
        )
        or any(t.get("expr") == "sidrce_fti" for t in p.get("targets", []))
    ]
    assert len(fti_panels) >= 3
    for p in fti_panels:
        cfg = p["fieldConfig"]
        steps = [cfg["defaults"].get("thresholds")] + [
            prop["value"] for o in cfg["overrides"] for prop in o["properties"] if prop["id"] == "thresholds"
        ]
        values = [[s["value"] for s in t["steps"]] for t in steps if t]
        assert [None, 1.0, 1.05] in values, p["title"]


# --- against the real SIDRCE app ------------------------------------------------------------------
@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path = tmp_path_factory.mktemp("grafana") / "ops.jsonl"
    write_telemetry(path, per_group=30)
    with running_sidrce(path, {"SIDRCE_TOKEN": TOKEN}) as base:
        yield base


def test_infinity_targets_resolve_in_the_real_report(live: str) -> None:
    inf = next(d for d in datasources().values() if d["type"] == INFINITY)
    # the header Grafana sends, with SIDRCE_TOKEN expanded as Grafana does
    headers = {
        inf["jsonData"]["httpHeaderName1"]: inf["secureJsonData"]["httpHeaderValue1"].replace(
            "${SIDRCE_TOKEN}", TOKEN
        )
    }
    variables: dict[str, str] = {}
    checked = 0

    def run(where: str, t: dict[str, Any]) -> list[dict[str, Any]]:
        assert t["url_options"]["method"] == "GET"
        params = {
            p["key"]: re.sub(r"\$(\w+)", lambda m: variables[m[1]], p["value"])
            for p in t["url_options"].get("params", [])
        }
        with httpx.Client(base_url=live, timeout=10) as c:
            assert c.get(t["url"], params=params).status_code == 401, f"{where}: served without the token"
            r = c.get(t["url"], params=params, headers=headers)
        assert r.status_code == 200, f"{where}: GET {t['url']} {params} -> {r.status_code} {r.text}"
        try:
            root = gjson(r.json(), t["root_selector"])
        except KeyError:
            raise AssertionError(f"{where}: root selector {t['root_selector']!r} not in the report") from None
        rows = root if isinstance(root, list) else [root]
        assert rows and all(isinstance(row, dict) for row in rows), (
            f"{where}: {t['root_selector']!r} has no rows"
        )
        filled: set[str] = set()
        for row in rows:
            for col in t["columns"]:
                try:
                    value = gjson(row, col["selector"])
                except KeyError:
                    raise AssertionError(f"{where}: column {col['selector']!r} not in the report") from None
                if value is None:  # a figure the report leaves undefined: Grafana shows an empty cell
                    continue
                filled.add(col["selector"])
                check_column(value, col, f"{where}: column {col['selector']!r}")
        # ... but every column has a value in some row of the sample telemetry
        assert filled == {col["selector"] for col in t["columns"]}, f"{where}: columns always null"
        return rows

    all_targets = list(targets())
    for where, t in all_targets:  # variables first: panels use their values
        if where.startswith("variable") and t["datasource"]["type"] == INFINITY:
            rows = run(where, t)
            name = where.split("'")[1]
            variables[name] = gjson(rows[0], t["columns"][0]["selector"])
            checked += 1
    assert set(variables) == {"domain", "hypothesis"}
    for where, t in all_targets:
        if where.startswith("panel") and t["datasource"]["type"] == INFINITY:
            rows = run(where, t)
            checked += 1
            if t["root_selector"].startswith("groups.0"):  # a filtered report: exactly the chosen group
                assert len(rows) > 1, f"{where}: the group's series has points"
    assert checked >= 10


def test_prometheus_expressions_name_metrics_sidrce_exposes(live: str) -> None:
    text = httpx.get(f"{live}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10).text
    labels: dict[str, set[str]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            labels.setdefault(s.name, set()).update(s.labels)
    exprs = [(w, t) for w, t in targets() if t["datasource"]["type"] == "prometheus"]
    assert len(exprs) >= 8
    for where, t in exprs:
        names = set(re.findall(r"\bsidrce_[a-z0-9_]+\b", t["expr"]))
        assert names, f"{where}: {t['expr']!r} names no SIDRCE metric"
        for name in names:
            assert name in labels, f"{where}: {name} is not in /metrics"
        grouped = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", t.get("legendFormat", "")))
        grouped |= {g.strip() for by in re.findall(r"by\s*\(([^)]*)\)", t["expr"]) for g in by.split(",")}
        for label in grouped:
            assert any(label in labels[n] for n in names), f"{where}: no label {label!r} on {names}"
