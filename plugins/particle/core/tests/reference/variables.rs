//! The reference's variable substitution: dotted names, escaping, the
//! predefined variables and the custom ones from JSON event data.

use super::*;

// ## Variable substitution

const EXAMPLE_DATA: &[u8] = br#"{
    "a": {
        "aa":"testing",
        "ab":1234
    },
    "b": "xxx",
    "c": [
        {
            "ca":"first",
            "cb":123
        },
        {
            "ca":"second",
            "cb":456
        }
    ]
}"#;

#[test]
fn variable_substitution_table() {
    let table = [
        ("{{{a.aa}}}", "testing"),
        ("{{{a.ab}}}", "1234"),
        ("{{{b}}}", "xxx"),
        ("{{{c.0.ca}}}", "first"),
        ("{{{c.1.cb}}}", "456"),
        ("{{#b}}{{{b}}}{{/b}}{{^b}}Missing{{/b}}", "xxx"),
        ("{{#z}}{{{z}}}{{/z}}{{^z}}Missing{{/z}}", "Missing"),
        ("{{#c}}{{{ca}}}~{{/c}}", "first~second~"),
    ];
    for (template, expected) in table {
        // As a request body over the event's data…
        let r = request(
            json!({"event": "t", "url": "https://example.com/", "body": template}),
            "t",
            EXAMPLE_DATA,
        );
        assert_eq!(text(&r.body), expected, "body {template}");
        // …and as a response template over the response.
        let hook = webhook(json!({
            "event": "t", "url": "https://example.com/", "responseTemplate": template
        }));
        let replies = hook.replies(&event("t", b""), &ok(EXAMPLE_DATA)).unwrap();
        assert_eq!(text(&replies[0].payload), expected, "response {template}");
    }
}

#[test]
fn double_braces_escape_html_and_triple_braces_do_not() {
    let data = br#"{"x": "a & b < c > d \" e ' f"}"#;
    let r = request(
        json!({"event": "t", "url": "https://example.com/", "body": "{{x}}|{{{x}}}|{{& x}}"}),
        "t",
        data,
    );
    assert_eq!(
        text(&r.body),
        "a &amp; b &lt; c &gt; d &quot; e &#39; f|a & b < c > d \" e ' f|a & b < c > d \" e ' f"
    );
}

#[test]
fn predefined_variables() {
    let r = request(
        json!({
            "event": "t", "url": "https://example.com/",
            "body": "{{{PARTICLE_DEVICE_ID}}} {{{PARTICLE_EVENT_NAME}}} {{{PARTICLE_EVENT_VALUE}}} {{{PARTICLE_PUBLISHED_AT}}} {{{PARTICLE_EVENT_ID}}} [{{{PRODUCT_ID}}}] {{{SPARK_CORE_ID}}} {{{SPARK_EVENT_NAME}}} {{{SPARK_EVENT_VALUE}}} {{{SPARK_PUBLISHED_AT}}}\n{{{PARTICLE_EVENT_JSON}}}\n{{{PARTICLE_EVENT_BASE64}}}"
        }),
        "t",
        b"v",
    );
    let json = r#"{"name":"t","data":"v","ttl":60,"published_at":"2017-02-01T21:08:05.763Z","coreid":"3f002b000000000000000000"}"#;
    assert_eq!(
        text(&r.body),
        format!(
            "{DEVICE} t v {PUBLISHED_AT} 01J0000000000000000000000 [] {DEVICE} t v {PUBLISHED_AT}\n{json}\n{}",
            STANDARD.encode(json)
        )
    );
}

// ## Custom variables

#[test]
fn custom_variables_from_json_event_data() {
    let data = br#"{ "room": "kitchen", "temp": 20 }"#;
    let r = request(
        json!({
            "eventName": "test",
            "url": "http://example.com/log/{{{room}}}",
            "json": {"location": "{{{room}}}", "temperature": "{{{temp}}}"}
        }),
        "test",
        data,
    );
    assert_eq!(r.url, "http://example.com/log/kitchen");
    assert_eq!(
        serde_json::from_slice::<Value>(&r.body).unwrap(),
        json!({
            "location": "kitchen", "temperature": "20",
            "event": "test", "data": "{ \"room\": \"kitchen\", \"temp\": 20 }",
            "coreid": DEVICE, "published_at": PUBLISHED_AT
        })
    );
}
