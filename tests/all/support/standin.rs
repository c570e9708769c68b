//! The vendor stand-in (`tests/standins/vendors.py`) as a child process:
//! AWS, Azure IoT Hub, Google, an OAuth 2 server, InfluxDB and Slack on
//! loopback, checking each vendor's wire format and verifying signatures
//! and tokens with code that is not ours (botocore, PyJWT, Microsoft's
//! SAS algorithm). Killed on drop.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::{WAIT, http_request};

/// A running stand-in.
pub struct Standin {
    addr: SocketAddr,
    _child: Child,
    _config: tempfile::NamedTempFile,
}

impl Standin {
    /// Starts the stand-in with `config` (one JSON section per vendor).
    pub async fn start(config: &Value) -> Self {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), config.to_string()).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("standins/vendors.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg("--config")
            .arg(file.path())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 runs the stand-in (scripts/test installs it)");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(WAIT, lines.next_line())
            .await
            .expect("the stand-in says where it listens")
            .unwrap()
            .expect("the stand-in started (are botocore, PyJWT and cryptography installed?)");
        let addr = line
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line: {line}"));
        Self {
            addr,
            _child: child,
            _config: file,
        }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Every vendor request it got, each with its `verdict`.
    pub async fn log(&self) -> Vec<Value> {
        let (status, log) = http_request(self.addr, "GET", "/_log", None, "").await;
        assert_eq!(status, 200);
        serde_json::from_value(log).unwrap()
    }

    /// How many requests `vendor` got.
    pub async fn count(&self, vendor: &str) -> u64 {
        let path = format!("/_count?vendor={vendor}");
        let (_, count) = http_request(self.addr, "GET", &path, None, "").await;
        count.as_u64().unwrap()
    }

    /// Calls one of its controls (`/_revoke`, `/_fail_token?count=N`).
    pub async fn control(&self, path: &str) {
        let (status, body) = http_request(self.addr, "POST", path, None, "").await;
        assert!(status < 300, "{path}: {status} {body}");
    }
}
