//! Per-request cost of the auth the host does: the headers of one request
//! for each `auth` type that needs no network (a cached token's are a
//! clone). Run with `cargo bench -p edgehook-tests --bench auth`.

use std::hint::black_box;
use std::time::SystemTime;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use edgehook::auth::{AuthSpec, Authorizer};
use edgehook::exchange::{Answer, HookRequest};
use serde_json::json;

fn auth_headers(c: &mut Criterion) {
    let request = HookRequest {
        method: http::Method::POST,
        url: "https://abcdefghij.lambda-url.eu-west-1.on.aws/ingest?source=edge"
            .parse()
            .unwrap(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: Bytes::from_static(br#"{"device":"3f002b000000000000000000","value":"21.5"}"#),
        answer: Answer::Plugin,
    };
    for spec in [
        json!({"type": "basic", "username": "u", "password": "p"}),
        json!({"type": "aws-sigv4", "region": "eu-west-1", "service": "lambda",
               "access_key_id": "AKIDEXAMPLE", "secret_access_key": "wJalrXUtnFEMI/K7MDENG"}),
        json!({"type": "azure-sas", "resource_uri": "hub.azure-devices.net/devices/d1",
               "key": "bXlzZWNyZXRrZXlteXNlY3JldGtleW15c2VjcmV0a2V5MTI="}),
    ] {
        let auth = Authorizer::new(AuthSpec::parse(&spec).unwrap().unwrap());
        c.bench_function(&format!("auth headers, {}", auth.kind()), |b| {
            b.iter(|| {
                auth.headers(black_box(&request), SystemTime::now())
                    .unwrap()
            });
        });
    }
}

criterion_group!(benches, auth_headers);
criterion_main!(benches);
