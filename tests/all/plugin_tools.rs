//! The plugin author's tools: `plugin test` offline, and `plugin new`
//! scaffolding a crate that builds, tests and runs.

use std::path::Path;
use std::process::Command;

use clap::Parser as _;

use edgehook::offline::{TestRun, run};
use edgehook_tests::{STATEFUL, THINGSPEAK};

fn test_run(wasm: &str, config: Option<&Path>, response: Option<&Path>) -> TestRun {
    TestRun {
        wasm: wasm.into(),
        event: "temp".into(),
        data: r#"{"temp": 19.25}"#.into(),
        device: "dev-9".into(),
        group: None,
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

    let here = Path::new("");
    let report = run(test_run(THINGSPEAK, Some(&manifest), Some(&answer)), here)
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

    let without_response = run(test_run(THINGSPEAK, Some(&manifest), None), here)
        .await
        .unwrap();
    assert!(
        without_response.contains("--response"),
        "{without_response}"
    );

    let missing = run(test_run("/nonexistent/x.wasm", None, None), here)
        .await
        .unwrap_err();
    assert!(
        format!("{missing:#}").contains("/nonexistent/x.wasm"),
        "{missing:#}"
    );
}

/// What the plugin keeps, and which auth the host adds (never its secret),
/// are part of the report.
#[tokio::test(flavor = "multi_thread")]
async fn plugin_test_shows_the_key_value_state_and_the_auth_but_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("stateful.toml");
    std::fs::write(
        &manifest,
        "event = \"kv/\"\nallowed_hosts = [\"api.example.com\"]\n\
         [config]\nurl = \"https://api.example.com/in\"\n\
         [auth]\ntype = \"bearer\"\ntoken = \"never-shown\"\n",
    )
    .unwrap();
    let run_of = TestRun {
        event: "kv/count".into(),
        data: String::new(),
        ..test_run(STATEFUL, Some(&manifest), None)
    };
    let report = run(run_of, Path::new("")).await.unwrap();
    assert!(report.contains("device=1 total=1"), "{report}");
    assert!(
        report.contains("key-value state, its own bucket:\ntotal = 1"),
        "{report}"
    );
    assert!(
        report.contains("key-value state, the bucket of device dev-9:\nevents = 1"),
        "{report}"
    );
    assert!(report.contains("the bearer auth"), "{report}");
    assert!(!report.contains("never-shown"), "{report}");
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
    // The crate's own target/ is the workspace's scaffold-test directory,
    // so that the paths its README prints are the real ones and the build
    // is kept between runs.
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/scaffold-test");
    std::fs::create_dir_all(&target).unwrap();
    std::os::unix::fs::symlink(target.canonicalize().unwrap(), krate.join("target")).unwrap();
    let cargo = |args: &[&str]| {
        let status = Command::new(env!("CARGO"))
            .args(args)
            .current_dir(&krate)
            .env_remove("CARGO_TARGET_DIR")
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

    // The README's `plugin test` line, run as printed from the crate's
    // directory: it finds the wasm and the manifest by itself.
    let readme = std::fs::read_to_string(krate.join("README.md")).unwrap();
    let line = readme
        .lines()
        .find(|l| l.starts_with("edgehook plugin test "))
        .expect("the README prints a plugin test line");
    let words = line.split_whitespace().map(|w| w.trim_matches('\''));
    let printed = PrintedTest::try_parse_from(words.skip(1)).unwrap();
    let report = run(printed.run.clone(), &krate).await.unwrap();
    assert!(
        report.starts_with("request:\nPOST https://example.com/in\n"),
        "{report}"
    );
    assert!(report.contains(r#""data":{"c":21.5}"#), "{report}");

    // It leaves the answer to the host: a 2xx body on hook-response, any
    // other status on hook-error.
    std::fs::write(krate.join("answer.txt"), "thanks").unwrap();
    for (status, expected) in [
        (200, "hook-response/temp/0 (6 bytes)\nthanks"),
        (503, "hook-error/temp/0 (16 bytes)\nerror status 503"),
    ] {
        let mut with_response = printed.run.clone();
        with_response.response = Some("answer.txt".into());
        with_response.status = status;
        let report = run(with_response, &krate).await.unwrap();
        assert!(report.contains(expected), "{expected} in {report}");
    }
}

/// `edgehook plugin …` as the command line parses it.
#[derive(clap::Parser)]
struct PrintedTest {
    #[arg(value_parser = ["test"])]
    _command: String,
    #[command(flatten)]
    run: TestRun,
}
