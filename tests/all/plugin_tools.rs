//! The plugin author's tools: `plugin test` offline, and `plugin new`
//! scaffolding a crate that builds, tests and runs.

use std::path::Path;
use std::process::Command;

use edgehook::offline::{TestRun, run};
use edgehook_tests::THINGSPEAK;

fn test_run(wasm: &str, config: Option<&Path>, response: Option<&Path>) -> TestRun {
    TestRun {
        wasm: wasm.into(),
        event: "temp".into(),
        data: r#"{"temp": 19.25}"#.into(),
        device: "dev-9".into(),
        config: config.map(Path::to_path_buf),
        response: response.map(Path::to_path_buf),
        status: 200,
        chunk_size: 512,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn plugin_test_prints_the_request_and_the_device_events() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("thingspeak.toml");
    std::fs::write(
        &manifest,
        "event = \"temp\"\nallowed_hosts = [\"api.thingspeak.com\"]\n[config]\napi_key = \"K\"\nfields = { temp = \"field1\" }\n",
    )
    .unwrap();
    let answer = dir.path().join("answer.txt");
    std::fs::write(&answer, "4711").unwrap();

    let report = run(test_run(THINGSPEAK, Some(&manifest), Some(&answer)))
        .await
        .unwrap();
    assert!(
        report.contains("POST https://api.thingspeak.com/update"),
        "{report}"
    );
    assert!(report.contains("field1=19.25"), "{report}");
    assert!(report.contains("devices/dev-9/hook-sent/temp"), "{report}");
    assert!(
        report.contains("devices/dev-9/hook-response/temp/0 (4 bytes)\n4711"),
        "{report}"
    );

    let without_response = run(test_run(THINGSPEAK, Some(&manifest), None))
        .await
        .unwrap();
    assert!(
        without_response.contains("--response"),
        "{without_response}"
    );

    let missing = run(test_run("/nonexistent/x.wasm", None, None))
        .await
        .unwrap_err();
    assert!(
        format!("{missing:#}").contains("/nonexistent/x.wasm"),
        "{missing:#}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scaffolded_plugin_builds_passes_its_test_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../guest-sdk")
        .canonicalize()
        .unwrap();
    let krate = edgehook::scaffold::new_plugin(
        dir.path(),
        "my-hook",
        edgehook::scaffold::SdkSource::Path(sdk),
    )
    .unwrap();
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/scaffold-test");
    let cargo = |args: &[&str]| {
        let status = Command::new(env!("CARGO"))
            .args(args)
            .current_dir(&krate)
            .env("CARGO_TARGET_DIR", &target)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .status()
            .unwrap();
        assert!(
            status.success(),
            "cargo {args:?} failed in the scaffolded crate"
        );
    };
    cargo(&["test", "--quiet"]);
    cargo(&["build", "--release", "--target", "wasm32-wasip2"]);
    let wasm = target.join("wasm32-wasip2/release/my_hook.wasm");
    let report = run(test_run(
        wasm.to_str().unwrap(),
        Some(&krate.join("my-hook.toml")),
        None,
    ))
    .await;
    let report = report.unwrap();
    assert!(report.starts_with("request:\nPOST "), "{report}");
}
