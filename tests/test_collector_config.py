"""Static checks of collector-config/: the Collector, compose, Tempo, Prometheus
and Grafana files agree with each other and with the names the package emits.

Every attribute name is checked against ``alephant_otel._names``, so renaming
an attribute in the package without updating the configs fails here. When an
``otelcol-contrib`` binary is on PATH, the Collector configs
are also run through ``otelcol-contrib validate``; otherwise that test skips.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pytest
import yaml

from alephant_otel import _names as n

CONFIG_DIR = Path(__file__).resolve().parent.parent / "collector-config"
COLLECTOR_FILES = ("otelcol.yaml", "otelcol.tail-sampling.yaml")
YAML_FILES = sorted(p for p in CONFIG_DIR.rglob("*") if p.suffix in {".yaml", ".yml"})
JSON_FILES = sorted(CONFIG_DIR.rglob("*.json"))
DASHBOARD = CONFIG_DIR / "grafana" / "dashboards" / "alephant.json"

#: Every span attribute / event name the package defines.
PACKAGE_ATTRS = frozenset(
    v for k, v in vars(n).items() if k.startswith(("ATTR_", "GEN_AI_")) and isinstance(v, str) and "." in v
)
#: Unbounded ids: never a metric dimension.
UNBOUNDED = frozenset(
    {
        n.ATTR_SESSION_ID,
        n.ATTR_SESSION_NAME,
        n.ATTR_RUN_ID,
        n.ATTR_RUN_PARENT_ID,
        n.ATTR_REQUEST_ID,
        n.GEN_AI_CONVERSATION_ID,
        n.GEN_AI_RESPONSE_ID,
    }
)
#: Metric dimensions allowed: the package's own metric dimensions, plus the
#: three-value alephant.span.kind enum used to select request spans.
ALLOWED_DIMENSIONS = frozenset(n.METRIC_DIMENSIONS) | {n.ATTR_SPAN_KIND}
#: Labels spanmetrics always adds, plus Prometheus' own.
BUILTIN_LABELS = frozenset({"service_name", "span_name", "span_kind", "status_code", "le", "job", "instance"})
GEN_AI_USAGE_ATTRS = frozenset(v for k, v in vars(n).items() if k.startswith("GEN_AI_USAGE_"))

KNOWN_TYPES = {
    "receivers": {"otlp"},
    "processors": {"memory_limiter", "batch", "tail_sampling", "transform", "deltatocumulative"},
    "exporters": {"otlp_grpc", "otlp_http", "otlp", "otlphttp", "prometheus", "debug", "clickhouse"},
    "connectors": {"spanmetrics", "signaltometrics", "forward"},
}
#: connector type -> (pipeline type it exports from, pipeline type it feeds).
CONNECTOR_SIGNALS = {"spanmetrics": ("traces", "metrics"), "signaltometrics": ("traces", "metrics")}
COMPONENT_ID = re.compile(r"^[a-z][a-z0-9_]*(/[A-Za-z0-9_.\-]+)?$")
OTTL_ATTR = re.compile(r'attributes\["([^"]+)"\]')
TRACEQL_ATTR = re.compile(r"\bspan\.([A-Za-z_][A-Za-z0-9_.]*)")


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def collector(name: str) -> dict[str, Any]:
    doc = load_yaml(CONFIG_DIR / name)
    assert isinstance(doc, dict)
    return doc


def ctype(component_id: str) -> str:
    return component_id.split("/", 1)[0]


def prom_label(attr: str) -> str:
    """Attribute name -> Prometheus label name (UnderscoreEscaping: every invalid char -> _)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", attr)


def port(endpoint: str) -> int:
    return int(endpoint.rsplit(":", 1)[1].split("/", 1)[0])


def url_port(url: str) -> int:
    parsed = urlparse(url)
    assert parsed.port is not None, url
    return parsed.port


# --- Parsing -----------------------------------------------------------------


def test_config_tree_has_the_expected_files() -> None:
    names = {p.relative_to(CONFIG_DIR).as_posix() for p in YAML_FILES + JSON_FILES}
    expected = {
        *COLLECTOR_FILES,
        "compose.yaml",
        "tempo.yaml",
        "prometheus.yml",
        "grafana/provisioning/datasources/datasources.yaml",
        "grafana/provisioning/dashboards/dashboards.yaml",
        "grafana/dashboards/alephant.json",
    }
    assert expected <= names
    assert (CONFIG_DIR / "README.md").is_file()


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: p.relative_to(CONFIG_DIR).as_posix())
def test_yaml_parses(path: Path) -> None:
    doc = load_yaml(path)
    assert isinstance(doc, dict)
    assert doc


@pytest.mark.parametrize("path", JSON_FILES, ids=lambda p: p.relative_to(CONFIG_DIR).as_posix())
def test_json_parses(path: Path) -> None:
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(doc, dict)
    assert doc


# --- Collector pipelines -----------------------------------------------------------


@pytest.mark.parametrize("name", COLLECTOR_FILES)
def test_pipelines_reference_only_defined_components(name: str) -> None:
    cfg = collector(name)
    defined = {kind: set(cfg.get(kind) or {}) for kind in KNOWN_TYPES}
    pipelines: dict[str, dict[str, list[str]]] = cfg["service"]["pipelines"]
    assert pipelines
    used: dict[str, set[str]] = {kind: set() for kind in KNOWN_TYPES}
    for pipeline_id, pipeline in pipelines.items():
        assert COMPONENT_ID.match(pipeline_id), pipeline_id
        assert ctype(pipeline_id) in {"traces", "metrics", "logs"}, pipeline_id
        assert pipeline.get("receivers"), f"{pipeline_id} has no receivers"
        assert pipeline.get("exporters"), f"{pipeline_id} has no exporters"
        for rid in pipeline["receivers"]:
            assert rid in defined["receivers"] | defined["connectors"], f"{pipeline_id}: undefined receiver {rid}"
            used["connectors" if rid in defined["connectors"] else "receivers"].add(rid)
        for pid in pipeline.get("processors") or []:
            assert pid in defined["processors"], f"{pipeline_id}: undefined processor {pid}"
            used["processors"].add(pid)
        for eid in pipeline["exporters"]:
            assert eid in defined["exporters"] | defined["connectors"], f"{pipeline_id}: undefined exporter {eid}"
            used["connectors" if eid in defined["connectors"] else "exporters"].add(eid)
    for kind, ids in defined.items():
        for cid in ids:
            assert COMPONENT_ID.match(cid), f"{kind}: {cid!r} is not type[/name]"
            assert ctype(cid) in KNOWN_TYPES[kind], f"{kind}: unknown component type {ctype(cid)!r}"
        assert ids == used[kind], f"{kind} defined but unused: {ids - used[kind]}"
    # memory_limiter first in every pipeline fed by a real receiver, batch last
    # (the processors' own advice); a pipeline fed only by a connector was limited upstream.
    for pipeline_id, pipeline in pipelines.items():
        procs = pipeline.get("processors") or []
        if set(pipeline["receivers"]) & defined["receivers"]:
            assert procs, pipeline_id
            assert procs[0] == "memory_limiter", pipeline_id
        if "batch" in procs:
            assert procs[-1] == "batch", pipeline_id


@pytest.mark.parametrize("name", COLLECTOR_FILES)
def test_every_connector_joins_two_pipelines(name: str) -> None:
    cfg = collector(name)
    pipelines = cfg["service"]["pipelines"]
    connectors = set(cfg["connectors"])
    assert {"spanmetrics", "signaltometrics"} <= connectors
    for cid in connectors:
        exported_by = {p for p, spec in pipelines.items() if cid in spec["exporters"]}
        received_by = {p for p, spec in pipelines.items() if cid in spec["receivers"]}
        assert exported_by, f"connector {cid} is never an exporter"
        assert received_by, f"connector {cid} is never a receiver"
        assert exported_by.isdisjoint(received_by), f"connector {cid} loops within one pipeline"
        if ctype(cid) in CONNECTOR_SIGNALS:
            src, dst = CONNECTOR_SIGNALS[ctype(cid)]
            assert {ctype(p) for p in exported_by} == {src}, cid
            assert {ctype(p) for p in received_by} == {dst}, cid
        if ctype(cid) == "forward":
            assert {ctype(p) for p in exported_by} == {ctype(p) for p in received_by}, cid


@pytest.mark.parametrize("name", COLLECTOR_FILES)
def test_traces_reach_tempo_and_jaeger_and_metrics_reach_prometheus(name: str) -> None:
    cfg = collector(name)
    pipelines = cfg["service"]["pipelines"]
    trace_exporters = {e for p, s in pipelines.items() if ctype(p) == "traces" for e in s["exporters"]}
    assert {"otlp_grpc/tempo", "otlp_grpc/jaeger"} <= trace_exporters
    metric_pipelines = [s for p, s in pipelines.items() if ctype(p) == "metrics"]
    assert any("prometheus" in s["exporters"] and "spanmetrics" in s["receivers"] for s in metric_pipelines)
    assert cfg["processors"]["memory_limiter"]["check_interval"], "memory_limiter needs a non-zero check_interval"


def test_spans_feed_the_metrics_before_tail_sampling() -> None:
    cfg = collector("otelcol.tail-sampling.yaml")
    pipelines = cfg["service"]["pipelines"]
    sampling = [p for p, s in pipelines.items() if "tail_sampling" in (s.get("processors") or [])]
    assert len(sampling) == 1
    for cid in ("spanmetrics", "signaltometrics"):
        feeding = [p for p, s in pipelines.items() if cid in s["exporters"]]
        assert feeding, cid
        assert sampling[0] not in feeding, f"{cid} must see spans before sampling"
    assert "tail_sampling" not in collector("otelcol.yaml")["processors"]


# --- Attribute names ------------------------------------------------------------


def spanmetrics_dimensions(cfg: dict[str, Any]) -> list[str]:
    return [d["name"] for d in cfg["connectors"]["spanmetrics"]["dimensions"]]


def signaltometrics_defs(cfg: dict[str, Any]) -> list[dict[str, Any]]:
    defs = cfg["connectors"]["signaltometrics"]["spans"]
    assert defs
    return defs


def sampling_policies(cfg: dict[str, Any]) -> list[dict[str, Any]]:
    return cfg["processors"]["tail_sampling"]["policies"]


@pytest.mark.parametrize("name", COLLECTOR_FILES)
def test_metric_dimensions_are_package_names_and_bounded(name: str) -> None:
    cfg = collector(name)
    dims = set(spanmetrics_dimensions(cfg))
    for d in signaltometrics_defs(cfg):
        keys = {a["key"] for a in d["attributes"]}
        assert keys == {n.GEN_AI_REQUEST_MODEL, n.ATTR_AGENT_ID, n.ATTR_SESSION_PATH}, d["name"]
        # signaltometrics skips a span that lacks a listed attribute without a default.
        assert all("default_value" in a for a in d["attributes"]), d["name"]
        dims |= keys
    assert {n.GEN_AI_REQUEST_MODEL, n.ATTR_AGENT_ID, n.ATTR_SESSION_PATH} <= dims
    assert dims <= PACKAGE_ATTRS, dims - PACKAGE_ATTRS
    assert dims <= ALLOWED_DIMENSIONS, dims - ALLOWED_DIMENSIONS
    assert not dims & UNBOUNDED, f"unbounded ids as metric dimensions: {dims & UNBOUNDED}"


@pytest.mark.parametrize("name", COLLECTOR_FILES)
def test_signaltometrics_sums_the_per_request_cost_and_usage(name: str) -> None:
    defs = signaltometrics_defs(collector(name))
    summed: set[str] = set()
    for d in defs:
        referenced = set(OTTL_ATTR.findall(" ".join([*d.get("conditions", []), d["sum"]["value"]])))
        assert referenced, d["name"]
        assert referenced <= PACKAGE_ATTRS, referenced - PACKAGE_ATTRS
        summed |= set(OTTL_ATTR.findall(d["sum"]["value"]))
        # Never the roll-ups: summing alephant.total.* across spans double counts.
        assert not any(a.startswith("alephant.total.") for a in referenced), d["name"]
    assert summed == {n.ATTR_COST_USD} | GEN_AI_USAGE_ATTRS
    intercepted = [d for d in defs if any(n.ATTR_INTERCEPTED in c for c in d.get("conditions", []))]
    assert len(intercepted) == 1


def test_tail_sampling_keeps_errors_policy_events_and_costly_traces() -> None:
    policies = sampling_policies(collector("otelcol.tail-sampling.yaml"))
    by_type: dict[str, list[dict[str, Any]]] = {}
    for p in policies:
        by_type.setdefault(p["type"], []).append(p[p["type"]])
    assert by_type["status_code"][0]["status_codes"] == ["ERROR"]
    assert {(b["key"], b["value"]) for b in by_type["boolean_attribute"]} == {(n.ATTR_INTERCEPTED, True)}
    span_conditions = [c for o in by_type["ottl_condition"] for c in o.get("span", [])]
    event_conditions = [c for o in by_type["ottl_condition"] for c in o.get("spanevent", [])]
    assert f'name == "{n.EVENT_POLICY}"' in event_conditions
    cost_attrs = {a for c in span_conditions for a in OTTL_ATTR.findall(c)}
    assert cost_attrs == {n.ATTR_COST_USD, n.ATTR_TOTAL_COST_USD}
    assert 0 < by_type["probabilistic"][0]["sampling_percentage"] < 100
    for kind in ("numeric_attribute", "string_attribute"):
        for spec in by_type.get(kind, []):
            assert spec["key"] in PACKAGE_ATTRS, spec["key"]


# --- Dashboard -----------------------------------------------------------------------


def dashboard() -> dict[str, Any]:
    doc = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert isinstance(doc, dict)
    return doc


def walk(node: Any) -> list[Any]:
    found = [node]
    if isinstance(node, dict):
        for v in node.values():
            found += walk(v)
    elif isinstance(node, list):
        for v in node:
            found += walk(v)
    return found


def promql_exprs() -> list[str]:
    doc = dashboard()
    exprs = [t["expr"] for p in doc["panels"] for t in p.get("targets", []) if "expr" in t]
    exprs += [v["definition"] for v in doc["templating"]["list"] if v.get("type") == "query"]
    assert exprs
    return exprs


def traceql_queries() -> list[str]:
    """TraceQL in the Tempo panels and in every link URL (decoded)."""
    doc = dashboard()
    queries = [t["query"] for p in doc["panels"] for t in p.get("targets", []) if t.get("queryType") == "traceql"]
    for node in walk(doc):
        if isinstance(node, dict) and isinstance(node.get("url"), str):
            queries.append(unquote(node["url"]))
    assert queries
    return queries


def _strip_strings(expr: str) -> str:
    return re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)


def promql_metric_names(expr: str) -> set[str]:
    """Metric names: identifiers directly followed by a selector or a range, or in label_values()."""
    bare = _strip_strings(expr)
    names = set(re.findall(r"([A-Za-z_:][A-Za-z0-9_:]*)\s*[{\[]", bare))
    names |= set(re.findall(r"label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*,", bare))
    return names - {"by", "without", "on", "ignoring"}


def promql_label_names(expr: str) -> set[str]:
    bare = _strip_strings(expr)
    labels: set[str] = set()
    for selector in re.findall(r"\{([^}]*)\}", bare):
        labels |= set(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)", selector))
    for grouping in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", bare):
        labels |= {x.strip() for x in grouping.split(",") if x.strip()}
    labels |= set(re.findall(r"label_values\(\s*[A-Za-z_:][A-Za-z0-9_:]*\s*,\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)", bare))
    return labels


def test_dashboard_promql_labels_are_package_attributes() -> None:
    allowed = {prom_label(a): a for a in ALLOWED_DIMENSIONS}
    labels = set().union(*(promql_label_names(e) for e in promql_exprs()))
    assert {prom_label(n.ATTR_AGENT_ID), prom_label(n.ATTR_SESSION_PATH), prom_label(n.GEN_AI_REQUEST_MODEL)} <= labels
    unknown = labels - BUILTIN_LABELS - set(allowed)
    assert not unknown, f"PromQL labels that no package attribute produces: {unknown}"
    assert not labels & {prom_label(a) for a in UNBOUNDED}


def test_dashboard_traceql_uses_package_attributes() -> None:
    attrs: set[str] = set()
    for q in traceql_queries():
        attrs |= set(TRACEQL_ATTR.findall(q))
    assert n.ATTR_SESSION_ID in attrs
    assert attrs <= PACKAGE_ATTRS, attrs - PACKAGE_ATTRS
    overridden = {
        o["matcher"]["options"] for p in dashboard()["panels"] for o in p.get("fieldConfig", {}).get("overrides", [])
    }
    assert overridden
    assert overridden <= PACKAGE_ATTRS, overridden - PACKAGE_ATTRS


def test_dashboard_links_a_session_to_its_tempo_search() -> None:
    links = [
        node["url"]
        for node in walk(dashboard())
        if isinstance(node, dict) and isinstance(node.get("url"), str) and "explore" in node["url"]
    ]
    assert links
    panel_link = re.compile(r"\{ span\." + re.escape(n.ATTR_SESSION_ID) + r' = \\"\$\{__value\.raw\}\\" \}')
    assert any(panel_link.search(unquote(u)) for u in links), "no data link to the Tempo search of a session"
    for u in links:
        panes = json.loads(unquote(u.split("panes=", 1)[1]).replace("${__value.raw}", "x").replace("${session}", "x"))
        for pane in panes.values():
            assert pane["datasource"] == "tempo"
            assert all(q["queryType"] == "traceql" for q in pane["queries"])


# --- Metric names: connector outputs -> Prometheus -------------------------------------


def prom_unit_suffix(unit: str) -> str:
    """Prometheus unit suffix (OTel->Prometheus compatibility spec, as otlptranslator does it).

    Assumption, for the prometheus exporter's ``translation_strategy:
    UnderscoreEscapingWithSuffixes`` pinned in otelcol.yaml: annotations in
    braces (``{token}``, ``{USD}``) are dropped, ``s`` -> ``seconds``,
    ``ms`` -> ``milliseconds``, anything else is kept with invalid characters
    replaced by ``_``.
    """
    unit = re.sub(r"\{[^}]*\}", "", unit).strip()
    return {"s": "seconds", "ms": "milliseconds", "By": "bytes", "1": ""}.get(unit, prom_label(unit))


def prom_names(name: str, unit: str, kind: str) -> set[str]:
    base = prom_label(name)
    suffix = prom_unit_suffix(unit)
    if suffix and not base.endswith("_" + suffix):
        base += "_" + suffix
    if kind == "counter":
        return {base + "_total"}
    if kind == "histogram":
        return {base + "_bucket", base + "_sum", base + "_count"}
    return {base}


def connector_metric_names(cfg: dict[str, Any]) -> set[str]:
    sm = cfg["connectors"]["spanmetrics"]
    namespace = sm["namespace"]  # set explicitly: the default moved in 0.109.0
    names = prom_names(f"{namespace}.calls", "", "counter")
    names |= prom_names(f"{namespace}.duration", sm["histogram"]["unit"], "histogram")
    statements = [s for st in cfg["processors"]["transform/monotonic"]["metric_statements"] for s in st["statements"]]
    monotonic = [
        re.compile(r.replace("\\\\", "\\"))
        for s in statements
        for r in re.findall(r'IsMatch\(metric\.name, "([^"]+)"\)', s)
    ]
    assert monotonic
    for d in signaltometrics_defs(cfg):
        assert "sum" in d, d["name"]
        # Without the transform the sums stay non-monotonic and the exporter drops (delta) or gauges them.
        assert any(r.search(d["name"]) for r in monotonic), f"{d['name']} is not marked monotonic"
        names |= prom_names(d["name"], d.get("unit", ""), "counter")
    return names


@pytest.mark.parametrize("name", COLLECTOR_FILES)
def test_dashboard_metrics_are_produced_by_the_connectors(name: str) -> None:
    cfg = collector(name)
    assert cfg["exporters"]["prometheus"]["translation_strategy"] == "UnderscoreEscapingWithSuffixes"
    produced = connector_metric_names(cfg)
    used = set().union(*(promql_metric_names(e) for e in promql_exprs()))
    assert {"traces_span_metrics_duration_seconds_bucket", "alephant_spans_cost_usd_total"} <= used
    assert used <= produced, f"dashboard queries metrics nobody produces: {used - produced}"


def test_prometheus_name_translation_assumption() -> None:
    assert prom_names("alephant.spans.cost.usd", "{USD}", "counter") == {"alephant_spans_cost_usd_total"}
    assert prom_names("traces.span.metrics.duration", "s", "histogram") >= {
        "traces_span_metrics_duration_seconds_bucket"
    }
    assert prom_names("alephant.spans.usage.input_tokens", "{token}", "counter") == {
        "alephant_spans_usage_input_tokens_total"
    }


# --- Ports and endpoints ----------------------------------------------------------------


def sdk_default_ports() -> tuple[int, int]:
    """(gRPC, HTTP) ports of the OTLP exporters' defaults in the installed SDK."""
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import DEFAULT_ENDPOINT

    grpc = GrpcExporter()
    try:
        # The gRPC exporter has no public default constant; it keeps the resolved endpoint here.
        grpc_endpoint = str(grpc._endpoint)
    finally:
        grpc.shutdown()
    # Depending on the SDK version it is "http://localhost:4317" or "localhost:4317".
    return port(grpc_endpoint.rstrip("/")), url_port(DEFAULT_ENDPOINT)


def test_package_defaults_match_the_collector_receivers(monkeypatch: pytest.MonkeyPatch) -> None:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    from alephant_otel.setup import _install

    for var in [k for k in os.environ if k.startswith("OTEL_EXPORTER_OTLP")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    grpc_port, http_port = sdk_default_ports()
    assert (grpc_port, http_port) == (4317, 4318)

    exporters = _install._env_exporters()
    assert len(exporters) == 1
    assert isinstance(exporters[0], GrpcExporter), "package default protocol is gRPC"
    for e in exporters:
        e.shutdown()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    exporters = _install._env_exporters()
    assert len(exporters) == 1
    assert isinstance(exporters[0], HttpExporter)
    for e in exporters:
        e.shutdown()

    for name in COLLECTOR_FILES:
        protocols = collector(name)["receivers"]["otlp"]["protocols"]
        assert port(protocols["grpc"]["endpoint"]) == grpc_port, name
        assert port(protocols["http"]["endpoint"]) == http_port, name
        assert protocols["grpc"]["endpoint"].startswith("0.0.0.0:"), "a container must listen on all interfaces"

    published = compose_published_ports("otel-collector")
    assert {grpc_port, http_port} <= published


def compose() -> dict[str, Any]:
    doc = load_yaml(CONFIG_DIR / "compose.yaml")
    assert isinstance(doc, dict)
    return doc


def compose_published_ports(service: str) -> set[int]:
    ports = compose()["services"][service].get("ports") or []
    published: set[int] = set()
    for spec in ports:
        host, _, container = str(spec).rpartition(":")
        assert host == container, f"{service}: publish {spec} on the same port"
        published.add(int(container))
    return published


def test_collector_exporters_reach_the_compose_services() -> None:
    services = compose()["services"]
    tempo = load_yaml(CONFIG_DIR / "tempo.yaml")
    tempo_grpc = port(tempo["distributor"]["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"])
    for name in COLLECTOR_FILES:
        exporters = collector(name)["exporters"]
        host, p = exporters["otlp_grpc/tempo"]["endpoint"].rsplit(":", 1)
        assert host in services
        assert int(p) == tempo_grpc
        host, p = exporters["otlp_grpc/jaeger"]["endpoint"].rsplit(":", 1)
        assert host in services
        assert int(p) == 4317
        assert port(exporters["prometheus"]["endpoint"]) in compose_published_ports("otel-collector")
    prom = load_yaml(CONFIG_DIR / "prometheus.yml")
    targets = [t for job in prom["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]]
    exporter_port = port(collector("otelcol.yaml")["exporters"]["prometheus"]["endpoint"])
    assert f"otel-collector:{exporter_port}" in targets
    assert tempo["server"]["http_listen_port"] in compose_published_ports("tempo")


def test_grafana_datasources_point_at_the_compose_services() -> None:
    services = compose()["services"]
    sources = {
        d["uid"]: d for d in load_yaml(CONFIG_DIR / "grafana/provisioning/datasources/datasources.yaml")["datasources"]
    }
    assert {"prometheus", "tempo", "jaeger"} <= set(sources)
    tempo = load_yaml(CONFIG_DIR / "tempo.yaml")
    expected_ports = {"prometheus": 9090, "tempo": tempo["server"]["http_listen_port"], "jaeger": 16686}
    for uid, p in expected_ports.items():
        parsed = urlparse(sources[uid]["url"])
        assert parsed.hostname in services, sources[uid]["url"]
        assert parsed.port == p, sources[uid]["url"]
    uids = {n_["uid"] for n_ in walk(dashboard()) if isinstance(n_, dict) and "uid" in n_ and "type" in n_}
    assert uids <= set(sources), uids - set(sources)


def test_compose_mounts_exist() -> None:
    def resolve(src: str) -> str:
        return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", src)

    mounted: set[Path] = set()
    for service, spec in compose()["services"].items():
        for vol in spec.get("volumes") or []:
            src = resolve(str(vol)).split(":", 1)[0]
            if src.startswith("."):
                path = (CONFIG_DIR / src).resolve()
                assert path.exists(), f"{service} mounts missing {src}"
                mounted.add(path)
    assert (CONFIG_DIR / "otelcol.yaml").resolve() in mounted
    assert (CONFIG_DIR / "grafana/dashboards").resolve() in mounted
    dash_provider = load_yaml(CONFIG_DIR / "grafana/provisioning/dashboards/dashboards.yaml")["providers"][0]
    grafana_mounts = {str(v).split(":")[1] for v in compose()["services"]["grafana"]["volumes"]}
    assert dash_provider["options"]["path"] in grafana_mounts


def test_readme_points_the_app_at_published_ports() -> None:
    text = (CONFIG_DIR / "README.md").read_text(encoding="utf-8")
    endpoints = re.findall(r"OTEL_EXPORTER_OTLP_ENDPOINT=(\S+)", text)
    assert endpoints
    published = compose_published_ports("otel-collector")
    for e in endpoints:
        assert url_port(e.strip("`'\"")) in published, e


# --- The real validator, when present --------------------------------------------------


@pytest.mark.parametrize("name", COLLECTOR_FILES)
def test_otelcol_validate(name: str) -> None:
    binary = shutil.which("otelcol-contrib")  # the core `otelcol` lacks the contrib components
    if binary is None:
        pytest.skip("otelcol-contrib is not installed; the checks above are static")
    proc = subprocess.run(
        [binary, "validate", f"--config={CONFIG_DIR / name}"], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr


# --- ClickHouse: the exporter, the server, the Grafana datasource --------------------------------

#: The clickhouse exporter's documented options at contrib 0.159.0 (the image compose.yaml pins):
#: exporter/clickhouseexporter/config.schema.yaml (contrib commit fff7223ebcd897edbace6f83a72a776867a971f4),
#: plus the exporterhelper options it embeds (timeout, retry_on_failure; sending_queue is listed).
CLICKHOUSE_OPTIONS = frozenset(
    {
        "async_insert",
        "cluster_name",
        "compress",
        "connection_params",
        "create_schema",
        "database",
        "endpoint",
        "logs_table_name",
        "metrics_table_name",
        "metrics_tables",
        "password",
        "sending_queue",
        "table_engine",
        "tls",
        "traces_table_name",
        "ttl",
        "username",
        "timeout",
        "retry_on_failure",
    }
)
CLICKHOUSE_COMPRESS = frozenset({"none", "zstd", "lz4", "gzip", "deflate", "br", "true"})
DURATION = re.compile(r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$")


@pytest.mark.parametrize("name", COLLECTOR_FILES)
def test_clickhouse_exporter_uses_documented_options_and_gets_every_span(name: str) -> None:
    config = collector(name)
    ch = config["exporters"]["clickhouse"]
    assert set(ch) <= CLICKHOUSE_OPTIONS, set(ch) - CLICKHOUSE_OPTIONS
    assert ch["compress"] in CLICKHOUSE_COMPRESS
    assert DURATION.match(ch["ttl"]) and DURATION.match(ch["timeout"])
    assert isinstance(ch["create_schema"], bool) and isinstance(ch["async_insert"], bool)
    # The names alephant-otel reads by default: database from the URL, table otel_traces.
    assert ch["traces_table_name"] == "otel_traces" and ch["database"] == "otel"
    # The password comes from the environment, never written in the file.
    assert ch["password"] == "${env:CLICKHOUSE_PASSWORD}"
    endpoint = urlparse(ch["endpoint"])
    assert endpoint.scheme == "tcp" and endpoint.hostname in compose()["services"] and endpoint.port == 9000
    # Fed by a pipeline the receiver feeds before any sampling: session totals count every request.
    feeding = [p for p in config["service"]["pipelines"].values() if "clickhouse" in p["exporters"]]
    assert len(feeding) == 1 and feeding[0]["receivers"] == ["otlp"]
    assert not any(ctype(x) == "tail_sampling" for x in feeding[0].get("processors", []))


def test_compose_runs_clickhouse_and_grafana_reads_it() -> None:
    services = compose()["services"]
    ch = services["clickhouse"]
    assert re.match(r"^clickhouse/clickhouse-server:\d+\.\d+$", ch["image"])
    env = dict(str(e).split("=", 1) for e in ch["environment"])
    assert env["CLICKHOUSE_DB"] == "otel" and env["CLICKHOUSE_USER"] == "otel"
    assert 8123 in compose_published_ports("clickhouse")
    assert "clickhouse" in services["otel-collector"]["depends_on"]
    collector_env = dict(str(e).split("=", 1) for e in services["otel-collector"]["environment"])
    assert collector_env["CLICKHOUSE_PASSWORD"] == env["CLICKHOUSE_PASSWORD"]
    grafana_env = dict(str(e).split("=", 1) for e in services["grafana"]["environment"])
    assert "grafana-clickhouse-datasource" in grafana_env["GF_PLUGINS_PREINSTALL"].split(",")
    sources = {
        d["uid"]: d for d in load_yaml(CONFIG_DIR / "grafana/provisioning/datasources/datasources.yaml")["datasources"]
    }
    src = sources["clickhouse"]
    assert src["type"] == "grafana-clickhouse-datasource"
    assert src["jsonData"]["host"] == "clickhouse" and src["jsonData"]["port"] == 8123
    assert src["jsonData"]["protocol"] == "http" and src["jsonData"]["defaultDatabase"] == "otel"


def test_dashboard_has_the_rollup_panels() -> None:
    panels = [p for p in dashboard()["panels"] if p["datasource"]["uid"] == "clickhouse"]
    titles = " | ".join(p["title"] for p in panels)
    assert "Top sessions by cost" in titles and "Cost by agent" in titles and "Cost by path" in titles
    for p in panels:
        sql = p["targets"][0]["rawSql"]
        assert "otel.otel_traces_sessions" in sql and "Merge(" in sql
