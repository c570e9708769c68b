//! `docs/grafana/`: the Grafana dashboard (`edgehook.json`) and the
//! Prometheus alert rules (`alerts.yml`) use only metrics a host exposes.
//! Every `edgehook_…` name in either file, and every name a selector's `{`
//! follows in their PromQL, must be a family a real host declares on
//! `GET /metrics` (its `# TYPE` line), the `_bucket`, `_sum` or `_count` of
//! such a histogram, or Prometheus's own `up`. The host runs on a NATS
//! cluster, so that the `edgehook_jetstream_*` families are there too.
//! Besides: the alerts for a host down, a webhook failing, the queue
//! filling, a plugin trapping and broker refusals are there, every alert
//! with its `for`, a `severity`, a `summary` and a `description`; and the
//! dashboard's panel ids are unique, every panel but a row with queries.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use yaml_rust2::{Yaml, YamlLoader};

use crate::support::{HostProcess, HostUnderTest, NatsCluster, WAIT, host_dir, metric_in};

/// The one metric the files may use that edgehook does not expose:
/// Prometheus's own, for `EdgehookDown` and the dashboard's *Up*.
const PROMETHEUS_OWN: &str = "up";

/// The keys whose string values are PromQL: a target's or a rule's `expr`,
/// a template variable's `query` and `definition`.
const PROMQL_KEYS: [&str; 3] = ["expr", "query", "definition"];

/// The alerts `alerts.yml` must have, by name.
const REQUIRED_ALERTS: [&str; 5] = [
    "EdgehookDown",
    "EdgehookWebhookFailing",
    "EdgehookQueueFilling",
    "EdgehookPluginTrapping",
    "EdgehookBrokerRefusals",
];

/// The text of `docs/grafana/{file}`.
fn doc(file: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../docs/grafana")
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `edgehook.json`, parsed.
fn dashboard() -> serde_json::Value {
    serde_json::from_str(&doc("edgehook.json")).expect("edgehook.json is JSON")
}

/// `alerts.yml`, parsed: its one document.
fn alerts_file() -> Yaml {
    let docs = YamlLoader::load_from_str(&doc("alerts.yml")).expect("alerts.yml is YAML");
    let [file] = &docs[..] else {
        panic!("alerts.yml holds one YAML document, not {}", docs.len());
    };
    file.clone()
}

/// The rules of every group of `file`.
fn rules(file: &Yaml) -> Vec<&Yaml> {
    file["groups"]
        .as_vec()
        .expect("alerts.yml has a list of groups")
        .iter()
        .flat_map(|group| {
            group["rules"]
                .as_vec()
                .unwrap_or_else(|| panic!("group {:?} has a list of rules", group["name"]))
        })
        .collect()
}

/// Every string of `value`, with the key of the object it is in (that of
/// the enclosing object for the strings of a list).
fn json_strings<'a>(value: &'a serde_json::Value, key: &'a str, out: &mut Vec<(&'a str, &'a str)>) {
    match value {
        serde_json::Value::String(text) => out.push((key, text)),
        serde_json::Value::Array(items) => {
            for item in items {
                json_strings(item, key, out);
            }
        }
        serde_json::Value::Object(map) => {
            for (key, item) in map {
                json_strings(item, key, out);
            }
        }
        _ => {}
    }
}

/// [`json_strings`] of a YAML document.
fn yaml_strings<'a>(value: &'a Yaml, key: &'a str, out: &mut Vec<(&'a str, &'a str)>) {
    match value {
        Yaml::String(text) => out.push((key, text)),
        Yaml::Array(items) => {
            for item in items {
                yaml_strings(item, key, out);
            }
        }
        Yaml::Hash(map) => {
            for (key, item) in map {
                yaml_strings(item, key.as_str().unwrap_or_default(), out);
            }
        }
        _ => {}
    }
}

/// Whether `c` may be part of a metric name.
fn in_name(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// The metric names in `strings` (key, text): every `edgehook_…`
/// identifier of any text, and in PromQL every identifier right before a
/// `{` (a selector's metric, whatever its prefix).
fn metric_names(strings: &[(&str, &str)]) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (key, text) in strings {
        names.extend(
            text.split(|c| !in_name(c))
                .filter(|word| word.starts_with("edgehook_"))
                .map(str::to_owned),
        );
        if PROMQL_KEYS.contains(key) {
            for (at, _) in text.match_indices('{') {
                let before = &text[..at];
                let start = before.rfind(|c| !in_name(c)).map_or(0, |i| i + 1);
                let name = &before[start..];
                if name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
                    names.insert(name.to_owned());
                }
            }
        }
    }
    names
}

/// The families `text` (of `/metrics`) declares: name → type.
fn families(text: &str) -> BTreeMap<&str, &str> {
    text.lines()
        .filter_map(|line| line.strip_prefix("# TYPE ")?.split_once(' '))
        .collect()
}

/// Whether `name` is a family of `families`, a histogram's series, or
/// [`PROMETHEUS_OWN`].
fn exposed(families: &BTreeMap<&str, &str>, name: &str) -> bool {
    name == PROMETHEUS_OWN
        || families.contains_key(name)
        || ["_bucket", "_sum", "_count"].iter().any(|suffix| {
            name.strip_suffix(suffix)
                .and_then(|base| families.get(base))
                .is_some_and(|kind| *kind == "histogram" || *kind == "summary")
        })
}

/// The `/metrics` text of `host` once JetStream has answered it (the
/// shared consumer's families are there only then).
async fn metrics_with_jetstream(host: &HostProcess) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let text = host.metrics().await;
        if metric_in(&text, "edgehook_jetstream_up") == 1 {
            return text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "JetStream never answered the host:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_and_the_alert_rules_use_only_metrics_a_host_exposes() {
    let dashboard = dashboard();
    let mut in_dashboard = Vec::new();
    json_strings(&dashboard, "", &mut in_dashboard);
    let alerts = alerts_file();
    let mut in_alerts = Vec::new();
    yaml_strings(&alerts, "", &mut in_alerts);

    let cluster = NatsCluster::start(3).await;
    let dir = host_dir();
    let mut args = cluster.host_flags();
    args.extend(["--mqtt-listen".to_owned(), "127.0.0.1:0".to_owned()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let host = HostProcess::start(dir.path(), &args).await;
    let text = metrics_with_jetstream(&host).await;
    let families = families(&text);

    let mut missing = Vec::new();
    for (file, strings) in [("edgehook.json", in_dashboard), ("alerts.yml", in_alerts)] {
        let names = metric_names(&strings);
        assert!(
            names.iter().any(|name| name.starts_with("edgehook_")),
            "no edgehook metric found in docs/grafana/{file}"
        );
        missing.extend(
            names
                .into_iter()
                .filter(|name| !exposed(&families, name))
                .map(|name| format!("{name} (docs/grafana/{file})")),
        );
    }
    assert!(
        missing.is_empty(),
        "metrics a host does not expose on GET /metrics: {missing:?}; it has {:?}",
        families.keys()
    );
}

#[test]
fn every_alert_has_a_for_a_severity_and_a_summary() {
    let file = alerts_file();
    let rules = rules(&file);
    let mut names = BTreeSet::new();
    for rule in rules {
        let name = rule["alert"]
            .as_str()
            .unwrap_or_else(|| panic!("every rule is an alert: {rule:?}"));
        assert!(names.insert(name), "{name} is defined twice");
        assert!(
            rule["expr"].as_str().is_some_and(|e| !e.trim().is_empty()),
            "{name} has an expr"
        );
        assert!(
            rule["for"].as_str().is_some_and(|f| !f.is_empty()),
            "{name} has a `for`"
        );
        let severity = rule["labels"]["severity"].as_str();
        assert!(
            matches!(severity, Some("critical" | "warning" | "info")),
            "{name} has a severity, critical, warning or info: {severity:?}"
        );
        for annotation in ["summary", "description"] {
            assert!(
                rule["annotations"][annotation]
                    .as_str()
                    .is_some_and(|a| !a.trim().is_empty()),
                "{name} has a {annotation}"
            );
        }
    }
    for required in REQUIRED_ALERTS {
        assert!(names.contains(required), "{required} in alerts.yml");
    }
}

#[test]
fn the_dashboard_panels_have_unique_ids_and_queries() {
    /// Every panel of `panels`, a collapsed row's own panels included.
    fn all<'a>(panels: &'a serde_json::Value, out: &mut Vec<&'a serde_json::Value>) {
        for panel in panels.as_array().expect("a list of panels") {
            out.push(panel);
            if let Some(inner) = panel.get("panels") {
                all(inner, out);
            }
        }
    }
    let dashboard = dashboard();
    let mut panels = Vec::new();
    all(&dashboard["panels"], &mut panels);
    let mut ids = BTreeSet::new();
    for panel in panels {
        let title = &panel["title"];
        let id = panel["id"]
            .as_u64()
            .unwrap_or_else(|| panic!("panel {title} has a numeric id"));
        assert!(ids.insert(id), "panel id {id} ({title}) is not unique");
        if panel["type"] != "row" {
            let targets = panel["targets"].as_array().map(Vec::as_slice);
            assert!(
                targets.is_some_and(|t| {
                    !t.is_empty()
                        && t.iter()
                            .all(|t| t["expr"].as_str().is_some_and(|e| !e.is_empty()))
                }),
                "panel {title} has queries, each with its expr"
            );
        }
    }
}
