//! Reading definitions: defaults, every field, and errors that name their field.

use serde_json::json;

use super::*;

fn error(definition: Value) -> DefinitionError {
    Webhook::from_json(&definition).expect_err("definition should be refused")
}

const URL: &str = "https://example.com/in";

#[test]
fn minimal_definition_gets_the_defaults() {
    let hook = Webhook::from_json(&json!({"event": "temp", "url": URL})).unwrap();
    assert_eq!(hook.event(), "temp");
    assert_eq!(hook.url(), URL);
    assert_eq!(hook.method, Method::Post);
    assert_eq!(hook.body, Body::Default);
    assert!(hook.reject_unauthorized());
    assert!(!hook.disabled());
    assert_eq!(hook.name(), None);
    assert_eq!(hook.device_id(), None);
    assert_eq!(hook.secret(), None);
    assert!(!hook.needs.event_json);
}

#[test]
fn every_field_is_read() {
    let hook = Webhook::from_json(&json!({
        "name": "Trigger alert", "eventName": "temp", "url": "https://{{host}}/x",
        "requestType": "put", "json": {"a": "{{{PARTICLE_EVENT_JSON}}}"},
        "query": {"q": 1}, "headers": {"X-A": true}, "auth": {"username": "u"},
        "noDefaults": true, "responseTemplate": {"a": "{{b}}"}, "responseTopic": "r",
        "errorResponseTopic": "e", "unchunked": true, "dataUrlResponseEvent": true,
        "rejectUnauthorized": false, "deviceid": "3f00", "disabled": true,
        "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "id": "x", "created_at": "y", "mydevices": true, "integration_type": "Webhook",
        "access_token": null, "product_id": 1, "productIdOrSlug": "p", "counter": 3,
        "logs": [], "errors": [],
    }))
    .unwrap();
    assert_eq!(hook.name(), Some("Trigger alert"));
    assert_eq!(hook.method, Method::Put);
    assert_eq!(hook.device_id(), Some("3f00"));
    assert!(hook.disabled() && !hook.reject_unauthorized() && hook.unchunked);
    assert!(hook.no_defaults && hook.data_url);
    assert!(hook.needs.event_json);
    assert_eq!(hook.secret().map(<[u8]>::len), Some(24));
    assert_eq!(hook.query[0].value.source(), "1");
    assert_eq!(hook.headers[0].value.source(), "true");
    assert_eq!(hook.auth.as_ref().map(|a| a.password.source()), Some(""));
}

#[test]
fn syntax_errors_and_non_objects() {
    let err = Webhook::from_slice(b"{\"event\": ").unwrap_err();
    assert_eq!(err.field, "");
    assert!(err.reason.starts_with("not valid JSON"), "{err}");
    assert_eq!(error(json!([1])).field, "");
}

#[test]
fn errors_name_their_field() {
    let cases = [
        (json!({"url": URL}), "event", "missing"),
        (json!({"event": "", "url": URL}), "event", "empty"),
        (json!({"eventName": "", "url": URL}), "eventName", "empty"),
        (
            json!({"event": "a", "eventName": "b", "url": URL}),
            "eventName",
            "same setting",
        ),
        (json!({"event": "t"}), "url", "missing"),
        (
            json!({"event": "t", "url": "example.com"}),
            "url",
            "absolute",
        ),
        (
            json!({"event": "t", "url": "{{u}}/x"}),
            "url",
            "must start with http",
        ),
        (
            json!({"event": "t", "url": "http://{{u"}),
            "url",
            "unclosed tag",
        ),
        (
            json!({"event": "t", "url": URL, "requestType": "PATCH"}),
            "requestType",
            "GET, POST, PUT or DELETE",
        ),
        (
            json!({"event": "t", "url": URL, "json": {}, "form": {}}),
            "json",
            "`json` and `form` cannot both be set",
        ),
        (
            json!({"event": "t", "url": URL, "form": {}, "body": ""}),
            "form",
            "`form` and `body` cannot both be set",
        ),
        (
            json!({"event": "t", "url": URL, "json": 5}),
            "json",
            "object or a string",
        ),
        (
            json!({"event": "t", "url": URL, "requestType": "GET", "json": {}}),
            "json",
            "use `query`",
        ),
        (
            json!({"event": "t", "url": URL, "requestType": "delete", "body": "x"}),
            "body",
            "DELETE request has no body",
        ),
        (
            json!({"event": "t", "url": URL, "json": {"coordinates": {"lat": "{{#lat}}"}}}),
            "json.coordinates.lat",
            "unclosed section",
        ),
        (
            json!({"event": "t", "url": URL, "headers": {"X-Sender": "{{/x}}"}}),
            "headers.X-Sender",
            "never opened",
        ),
        (
            json!({"event": "t", "url": URL, "query": {"q": ["a"]}}),
            "query.q",
            "string, number or boolean",
        ),
        (
            json!({"event": "t", "url": URL, "form": "a=b"}),
            "form",
            "expected an object",
        ),
        (
            json!({"event": "t", "url": URL, "noDefaults": "yes"}),
            "noDefaults",
            "invalid type",
        ),
        (
            json!({"event": 5, "url": URL}),
            "event",
            "invalid type: integer `5`, expected a string",
        ),
        (
            json!({"event": "t", "url": URL, "auth": {"user": "u"}}),
            "auth",
            "unknown field `user`",
        ),
        (
            json!({"event": "t", "url": URL, "colour": "red"}),
            "colour",
            "unknown field; known fields are name, event,",
        ),
        (
            json!({"event": "t", "url": URL, "secret": "abc"}),
            "secret",
            "whsec_",
        ),
        (
            json!({"event": "t", "url": URL, "secret": "whsec_!!"}),
            "secret",
            "not base64",
        ),
        (
            json!({"event": "t", "url": URL, "responseTemplate": 1}),
            "responseTemplate",
            "string or an object",
        ),
        (
            json!({"event": "t", "url": URL, "responseTopic": "{{> p}}"}),
            "responseTopic",
            "partials (`{{> p}}`) are not supported in webhooks",
        ),
        (
            json!({"event": "t", "url": "https://h/{{>path}}"}),
            "url",
            "partials (`{{>path}}`) are not supported in webhooks",
        ),
        (
            json!({"event": "t", "url": URL, "body": "a\n  {{> x}}\n"}),
            "body",
            "partials (`{{> x}}`) are not supported in webhooks at line 2, column 3",
        ),
        (
            json!({"event": "t", "url": URL, "headers": {"X": "{{=<% %>=}}<%> x%>"}}),
            "headers.X",
            "partials (`<%> x%>`) are not supported in webhooks",
        ),
    ];
    for (definition, field, reason) in cases {
        let err = error(definition.clone());
        assert_eq!(err.field, field, "{definition} -> {err}");
        assert!(err.reason.contains(reason), "{definition} -> {err}");
    }
}

#[test]
fn null_fields_are_unset_and_empty_device_ids_are_none() {
    let hook = Webhook::from_json(&json!({
        "event": "t", "url": URL, "json": null, "deviceID": "", "headers": null
    }))
    .unwrap();
    assert_eq!(hook.body, Body::Default);
    assert_eq!(hook.device_id(), None);
}
