//! Requests of events: the default data, each body type, headers, auth and the render limits.

use serde_json::json;

use super::*;

const EVENT: Event<'static> = Event {
    id: "ev-1",
    device_id: "dev-1",
    name: "temp",
    data: br#"{"t": 21.5, "who": "a b"}"#,
    published_at: "2026-01-01T00:00:00.000Z",
    product_id: None,
};

fn request(definition: Value) -> Request {
    Webhook::from_json(&definition)
        .unwrap()
        .request(&EVENT)
        .unwrap()
}

fn body(request: &Request) -> &str {
    std::str::from_utf8(&request.body).unwrap()
}

const DEFAULT_FORM: &str = "event=temp&data=%7B%22t%22%3A%2021.5%2C%20%22who%22%3A%20%22a%20b%22%7D&published_at=2026-01-01T00%3A00%3A00.000Z&coreid=dev-1";

#[test]
fn no_body_type_posts_the_defaults_as_a_form() {
    let r = request(json!({"event": "t", "url": "https://x.test/in"}));
    assert_eq!(r.method, Method::Post);
    assert_eq!(r.url, "https://x.test/in");
    assert_eq!(r.headers, [("content-type".into(), FORM.into())]);
    assert_eq!(body(&r), DEFAULT_FORM);
}

#[test]
fn a_template_over_the_render_limits_is_an_error_not_a_cut_body() {
    let nested = format!("{}x{}", "{{#a}}".repeat(8), "{{/a}}".repeat(8));
    let event = Event {
        data: br#"{"a": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}"#,
        ..EVENT
    };
    for (field, definition) in [
        (
            "body",
            json!({"event": "t", "url": "https://x.test/in", "body": nested}),
        ),
        (
            "json",
            json!({"event": "t", "url": "https://x.test/in", "json": {"k": nested}}),
        ),
        (
            "query.q",
            json!({"event": "t", "url": "https://x.test/in", "query": {"q": nested}}),
        ),
    ] {
        let err = Webhook::from_json(&definition)
            .unwrap()
            .request(&event)
            .unwrap_err();
        assert_eq!(err.field(), field);
        assert!(err.reason().contains("renders too much"), "{err}");
    }
}

#[test]
fn no_defaults_and_no_body_type_sends_nothing() {
    let r = request(json!({"event": "t", "url": "https://x.test/in", "noDefaults": true}));
    assert!(r.headers.is_empty() && r.body.is_empty());
}

#[test]
fn get_and_delete_put_the_defaults_in_the_query_after_the_users() {
    for method in ["GET", "delete"] {
        let r = request(json!({
            "event": "t", "url": "https://x.test/in?k=1", "requestType": method,
            "query": {"t": "{{t}}", "data": "mine"}
        }));
        assert_eq!(
            r.url,
            "https://x.test/in?k=1&data=mine&t=21.5&event=temp&published_at=2026-01-01T00%3A00%3A00.000Z&coreid=dev-1"
        );
        assert!(r.body.is_empty() && r.headers.is_empty());
    }
}

#[test]
fn post_with_query_keeps_the_default_form() {
    let r = request(json!({"event": "t", "url": "https://x.test/in", "query": {"a": "b"}}));
    assert_eq!(r.url, "https://x.test/in?a=b");
    assert_eq!(body(&r), DEFAULT_FORM);
}

#[test]
fn form_fields_then_the_defaults_the_user_did_not_set() {
    let r = request(json!({
        "event": "t", "url": "https://x.test/in", "requestType": "PUT",
        "form": {"z": "{{who}}", "event": "mine", "a": 1}
    }));
    assert_eq!(r.method, Method::Put);
    assert_eq!(
        body(&r),
        "a=1&event=mine&z=a%20b&data=%7B%22t%22%3A%2021.5%2C%20%22who%22%3A%20%22a%20b%22%7D&published_at=2026-01-01T00%3A00%3A00.000Z&coreid=dev-1"
    );
}

#[test]
fn json_object_with_defaults_merged_under_the_users_keys() {
    let r = request(json!({
        "event": "t", "url": "https://x.test/in",
        "json": {"temp": "{{t}}", "n": 1.0, "data": "{{{who}}}"}
    }));
    assert_eq!(
        r.headers,
        [
            ("accept".into(), JSON.into()),
            ("content-type".into(), JSON.into())
        ]
    );
    assert_eq!(
        body(&r),
        r#"{"coreid":"dev-1","data":"a b","event":"temp","n":1,"published_at":"2026-01-01T00:00:00.000Z","temp":"21.5"}"#
    );
}

#[test]
fn json_string_renders_then_parses() {
    let r = request(json!({
        "event": "t", "url": "https://x.test/in", "noDefaults": true,
        "json": "{\"t\": {{t}}, \"list\": [{{t}}]}"
    }));
    assert_eq!(body(&r), r#"{"list":[21.5],"t":21.5}"#);
    let r = request(json!({
        "event": "t", "url": "https://x.test/in", "json": "[{{t}}]"
    }));
    assert_eq!(body(&r), "[21.5]", "defaults only merge into objects");
    let err = Webhook::from_json(&json!({
        "event": "t", "url": "https://x.test/in", "json": "{\"t\": {{missing}} }"
    }))
    .unwrap()
    .request(&EVENT)
    .unwrap_err();
    assert_eq!(err.field(), "json");
    assert!(
        err.reason()
            .starts_with("json template rendered invalid JSON: "),
        "{err}"
    );
}

#[test]
fn custom_body_as_rendered_without_content_type() {
    let r = request(json!({
        "event": "t", "url": "https://x.test/in", "body": "t={{t}} <{{who}}>"
    }));
    assert_eq!(body(&r), "t=21.5 <a b>");
    assert!(r.headers.is_empty());
}

#[test]
fn headers_replace_defaults_of_the_same_name_and_auth_is_basic() {
    let r = request(json!({
        "event": "t", "url": "https://x.test/in", "json": {},
        "headers": {"Content-Type": "application/vnd+json", "X-{{PARTICLE_EVENT_NAME}}": "{{who}}"},
        "auth": {"username": "{{PARTICLE_DEVICE_ID}}", "password": "p:w"}
    }));
    assert_eq!(
        r.headers,
        [
            ("accept".into(), JSON.into()),
            (
                "authorization".into(),
                format!("Basic {}", STANDARD.encode("dev-1:p:w"))
            ),
            ("Content-Type".into(), "application/vnd+json".into()),
            ("X-temp".into(), "a b".into()),
        ]
    );
}

#[test]
fn bad_rendered_headers_are_errors() {
    let hook = |headers: Value| {
        Webhook::from_json(&json!({"event": "t", "url": "https://x.test/", "headers": headers}))
            .unwrap()
            .request(&EVENT)
    };
    let err = hook(json!({"X {{who}}": "v"})).unwrap_err();
    assert_eq!(err.field(), "headers.X {{who}}");
    let err = Webhook::from_json(&json!({
        "event": "t",
        "url": "https://x.test/",
        "headers": {"X-Api-Key": "key-sekrit-{{{v}}}"},
    }))
    .unwrap()
    .request(&Event {
        data: br#"{"v": "a\r\nInjected: 1"}"#,
        ..EVENT
    })
    .unwrap_err();
    assert_eq!(err.field(), "headers.X-Api-Key");
    assert!(err.reason().contains("line break"), "{err}");
    assert!(
        !err.to_string().contains("sekrit"),
        "the value is no part of {err}"
    );
    assert!(hook(json!({"X-Ok": "{{who}}"})).is_ok());
}

#[test]
fn url_renders_raw_as_written() {
    let r =
        request(json!({"event": "t", "url": "https://x.test/{{{who}}}/{{t}}", "noDefaults": true}));
    assert_eq!(r.url, "https://x.test/a b/21.5");
}
