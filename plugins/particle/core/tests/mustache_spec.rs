//! Runs every test case of the mustache spec files (`interpolation`,
//! `sections`, `inverted`, `comments`, `delimiters`), read from the spec
//! directory at test time, with the case's `partials` when it has some.
//! No case is skipped.
//!
//! The directory is `$EDGEHOOK_MUSTACHE_SPEC` if set, else the first
//! `shared/mustache-spec` found walking up from this crate, else
//! `/work/shared/mustache-spec`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use edgehook_particle::template::{Template, TemplateError};
use serde_json::Value;

const ENV: &str = "EDGEHOOK_MUSTACHE_SPEC";
const FALLBACK: &str = "/work/shared/mustache-spec";

fn spec_dir() -> PathBuf {
    let mut looked = Vec::new();
    if let Some(dir) = std::env::var_os(ENV) {
        let dir = PathBuf::from(dir);
        assert!(dir.is_dir(), "{ENV}={} is not a directory", dir.display());
        return dir;
    }
    for ancestor in Path::new(env!("CARGO_MANIFEST_DIR")).ancestors() {
        let dir = ancestor.join("shared/mustache-spec");
        if dir.is_dir() {
            return dir;
        }
        looked.push(dir);
    }
    let fallback = PathBuf::from(FALLBACK);
    if fallback.is_dir() {
        return fallback;
    }
    looked.push(fallback);
    panic!(
        "mustache spec directory not found; looked in:\n  {}\nset {ENV} to the directory that holds the spec's *.json files",
        looked
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join("\n  ")
    );
}

/// The case's `partials` object, each parsed; the error names the partial.
fn partials(case: &Value) -> Result<HashMap<String, Template>, (String, TemplateError)> {
    let Some(partials) = case.get("partials") else {
        return Ok(HashMap::new());
    };
    let partials = partials
        .as_object()
        .unwrap_or_else(|| panic!("`partials` is not an object: {partials}"));
    partials
        .iter()
        .map(|(name, source)| {
            let source = source
                .as_str()
                .unwrap_or_else(|| panic!("partial {name:?} is not a string: {source}"));
            Template::parse(source)
                .map(|t| (name.clone(), t))
                .map_err(|e| (name.clone(), e))
        })
        .collect()
}

#[test]
fn mustache_spec() {
    let dir = spec_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();

    let (mut ran, mut with_partials, mut failures) = (0, 0, Vec::new());
    for file in &files {
        let text = std::fs::read_to_string(file)
            .unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
        let spec: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", file.display()));
        let name_of_file = file.file_name().unwrap_or_default().to_string_lossy();
        let cases = spec["tests"]
            .as_array()
            .unwrap_or_else(|| panic!("{} has no `tests` array", file.display()));
        for case in cases {
            let name = case["name"].as_str().unwrap_or("?");
            ran += 1;
            let template = case["template"].as_str().unwrap_or_default();
            let expected = case["expected"].as_str().unwrap_or_default();
            if case.get("partials").is_some() {
                with_partials += 1;
            }
            let got = match (Template::parse(template), partials(case)) {
                (Ok(t), Ok(partials)) => t.render_with_partials(&[&case["data"]], &partials),
                (Err(e), _) => format!("<parse error: {e}>"),
                (_, Err((partial, e))) => format!("<parse error in partial {partial:?}: {e}>"),
            };
            if got != expected {
                failures.push(format!(
                    "{name_of_file}: {name}\n  template: {template:?}\n  data:     {}\n  expected: {expected:?}\n  got:      {got:?}",
                    case["data"]
                ));
            }
        }
    }
    eprintln!(
        "mustache spec: {ran} cases run ({with_partials} with partials) from {} files in {}; {} failed",
        files.len(),
        dir.display(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {ran} mustache spec cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        ran > 100,
        "only {ran} spec cases ran from {}",
        dir.display()
    );
}
