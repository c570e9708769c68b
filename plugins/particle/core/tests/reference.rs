//! Every example of Particle's webhook reference (seed 004), reproduced:
//! the request each example gives (method, URL with query, headers, body)
//! and the messages the device receives.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use edgehook_particle::{
    DefinitionError, Event, Method, Outcome, Reply, ReplyKind, Request, Response, Webhook,
};
use serde_json::{Value, json};

/// The device of the reference's examples.
const DEVICE: &str = "3f002b000000000000000000";
/// The publication time of the reference's default-data example.
const PUBLISHED_AT: &str = "2017-02-01T21:08:05.763Z";

fn event<'a>(name: &'a str, data: &'a [u8]) -> Event<'a> {
    Event {
        id: "01J0000000000000000000000",
        device_id: DEVICE,
        name,
        data,
        published_at: PUBLISHED_AT,
        product_id: None,
    }
}

fn webhook(definition: Value) -> Webhook {
    Webhook::from_json(&definition).unwrap_or_else(|e| panic!("{definition}: {e}"))
}

fn request(definition: Value, name: &str, data: &[u8]) -> Request {
    webhook(definition)
        .request(&event(name, data))
        .expect("request renders")
}

fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

fn text(body: &[u8]) -> &str {
    std::str::from_utf8(body).expect("UTF-8 body")
}

fn ok(body: &[u8]) -> Outcome<'_> {
    Outcome::Response(Response {
        status: 200,
        headers: &[],
        body,
    })
}

fn response(kind: ReplyKind, topic: &str, payload: &[u8]) -> Reply {
    Reply {
        kind,
        topic: topic.to_owned(),
        payload: payload.to_vec(),
        unchunked: false,
    }
}

const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");
const JSON_ACCEPT: (&str, &str) = ("accept", "application/json");
const JSON_TYPE: (&str, &str) = ("content-type", "application/json");

// ## Default data

#[test]
fn default_data_is_a_form_of_event_data_published_at_coreid() {
    let r = request(
        json!({"eventName": "demo", "url": "http://host.com"}),
        "demo",
        b"mydata",
    );
    assert_eq!(r.method, Method::Post);
    assert_eq!(r.url, "http://host.com");
    assert_eq!(r.headers, headers(&[FORM]));
    assert_eq!(
        text(&r.body),
        "event=demo&data=mydata&published_at=2017-02-01T21%3A08%3A05.763Z&coreid=3f002b000000000000000000"
    );
    assert_eq!(r.body.len(), 96, "the reference's content-length");
}

// ## Examples: sending simple data

#[test]
fn simple_data_json_with_templated_key_and_no_defaults() {
    let r = request(
        json!({
            "event": "Temperature/",
            "url": "https://example.com/123456789",
            "json": {"{{PARTICLE_EVENT_NAME}}": "{{{PARTICLE_EVENT_VALUE}}}"},
            "noDefaults": true
        }),
        "Temperature/Kitchen",
        b"20.00",
    );
    assert_eq!(r.method, Method::Post);
    assert_eq!(r.url, "https://example.com/123456789");
    assert_eq!(r.headers, headers(&[JSON_ACCEPT, JSON_TYPE]));
    assert_eq!(text(&r.body), r#"{"Temperature/Kitchen":"20.00"}"#);
    assert_eq!(r.body.len(), 31, "the reference's content-length");
}

// ## Examples: sending complex data

const ELEVATION_DATA: &[u8] = br#"{"lat":39.739155, "lng":-104.984703}"#;

#[test]
fn complex_data_json_object_from_custom_variables() {
    let r = request(
        json!({
            "event": "Elevation",
            "url": "https://example.com/123456789",
            "json": {"coordinates": {"lat": "{{{lat}}}", "lng": "{{{lng}}}"}},
            "noDefaults": true
        }),
        "Elevation",
        ELEVATION_DATA,
    );
    assert_eq!(r.headers, headers(&[JSON_ACCEPT, JSON_TYPE]));
    // Keys come sorted; the reference's node.js wrote `lng` first. Same
    // JSON, same length.
    assert_eq!(
        text(&r.body),
        r#"{"coordinates":{"lat":"39.739155","lng":"-104.984703"}}"#
    );
    let reference: Value =
        serde_json::from_str(r#"{"coordinates":{"lng":"-104.984703","lat":"39.739155"}}"#).unwrap();
    assert_eq!(serde_json::from_slice::<Value>(&r.body).unwrap(), reference);
    assert_eq!(r.body.len(), 55);
}

#[test]
fn complex_data_as_json_numbers_through_a_custom_body() {
    let r = request(
        json!({
            "event": "Elevation",
            "url": "https://example.com/123456789",
            "headers": {"content-type": "application/json"},
            "body": "{ \"coordinates\": { \"lat\": {{{lat}}}, \"lng\": {{{lng}}} } }",
            "noDefaults": true
        }),
        "Elevation",
        ELEVATION_DATA,
    );
    assert_eq!(r.method, Method::Post);
    assert_eq!(r.headers, headers(&[("content-type", "application/json")]));
    assert_eq!(
        text(&r.body),
        r#"{ "coordinates": { "lat": 39.739155, "lng": -104.984703 } }"#
    );
    assert_eq!(r.body.len(), 59);
}

// ## Examples: receiving complex data (Google Maps Elevation API)

const GOOGLE: &[u8] = br#"{
   "results" : [
      {
         "elevation" : 1608.637939453125,
         "location" : {
            "lat" : 39.73915360,
            "lng" : -104.98470340
         },
         "resolution" : 4.771975994110107
      }
   ],
   "status" : "OK"
}"#;

fn elevation_hook() -> Value {
    json!({
        "event": "Elevation",
        "url": "https://maps.googleapis.com/maps/api/elevation/json",
        "requestType": "GET",
        "query": {
            "locations": "{{{lat}}},{{{lng}}}",
            "key": "XXXXXXXXXX"
        },
        "responseTemplate": "{{{results.0.elevation}}}",
        "noDefaults": true
    })
}

#[test]
fn get_with_query_in_sorted_key_order() {
    // The reference's firmware publishes `39.7,-104.9`, which is not JSON
    // and so defines no `lat`/`lng`; its request is what the template gives
    // for the JSON data below.
    let r = request(
        elevation_hook(),
        "Elevation",
        br#"{"lat":39.7,"lng":-104.9}"#,
    );
    assert_eq!(r.method, Method::Get);
    assert_eq!(
        r.url,
        "https://maps.googleapis.com/maps/api/elevation/json?key=XXXXXXXXXX&locations=39.7%2C-104.9"
    );
    assert!(r.headers.is_empty());
    assert!(r.body.is_empty());
}

#[test]
fn response_template_extracts_the_elevation() {
    let hook = webhook(elevation_hook());
    let replies = hook
        .replies(&event("Elevation", b"39.7,-104.9"), &ok(GOOGLE))
        .unwrap();
    assert_eq!(
        replies,
        [response(
            ReplyKind::Response,
            "hook-response/Elevation",
            b"1608.637939453125"
        )]
    );
    // The reference's prose uses double braces: a number has nothing to escape.
    let hook = webhook(json!({
        "event": "Elevation", "url": "https://maps.googleapis.com/x",
        "responseTemplate": "{{results.0.elevation}}"
    }));
    let replies = hook.replies(&event("Elevation", b""), &ok(GOOGLE)).unwrap();
    assert_eq!(replies[0].payload, b"1608.637939453125");
}

#[test]
fn response_template_object_form() {
    let hook = webhook(json!({
        "event": "Elevation", "url": "https://maps.googleapis.com/x",
        "responseTemplate": {
            "lat": "{{{results.0.location.lat}}}",
            "lng": "{{{results.0.location.lng}}}"
        }
    }));
    let replies = hook.replies(&event("Elevation", b""), &ok(GOOGLE)).unwrap();
    assert_eq!(
        text(&replies[0].payload),
        r#"{"lat":"39.7391536","lng":"-104.9847034"}"#
    );
}

// ## JSON body extra settings

#[test]
fn json_body_examples() {
    let r = request(
        json!({
            "event": "t", "url": "https://example.com/",
            "json": {"value": "{{{PARTICLE_EVENT_VALUE}}}"}, "noDefaults": true
        }),
        "t",
        b"true",
    );
    assert_eq!(text(&r.body), r#"{"value":"true"}"#);

    let r = request(
        json!({
            "event": "t", "url": "https://example.com/", "noDefaults": true,
            "json": {"gauges": [{
                "name": "{{{n}}}", "value": "{{{v}}}", "source": "{{PARTICLE_DEVICE_ID}}"
            }]}
        }),
        "t",
        br#"{"n": "click", "v": 2}"#,
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&r.body).unwrap(),
        json!({"gauges": [{"name": "click", "value": "2", "source": DEVICE}]})
    );
}

#[test]
fn json_string_template_becomes_valid_json_once_rendered() {
    // `{"t":21.1}` published; `{{t}}` unquoted renders the number 21.1.
    let r = request(
        json!({
            "event": "t", "url": "https://example.com/", "noDefaults": true,
            "json": "{\n  \"temperature\": {{t}}\n}"
        }),
        "t",
        br#"{"t":21.1}"#,
    );
    assert_eq!(r.headers, headers(&[JSON_ACCEPT, JSON_TYPE]));
    assert_eq!(text(&r.body), r#"{"temperature":21.1}"#);
}

#[test]
fn json_without_no_defaults_carries_the_default_fields_too() {
    let r = request(
        json!({"event": "t", "url": "https://example.com/", "json": {"value": "{{{PARTICLE_EVENT_VALUE}}}"}}),
        "t",
        b"true",
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&r.body).unwrap(),
        json!({
            "value": "true", "event": "t", "data": "true",
            "coreid": DEVICE, "published_at": PUBLISHED_AT
        })
    );
}

// ## Web form extra settings

#[test]
fn twilio_form_without_defaults() {
    let r = request(
        json!({
            "event": "sms", "url": "https://api.twilio.com/2010-04-01/Accounts/X/Messages",
            "form": {"From": "FROM_PHONE_NUMBER", "To": "TO_PHONE_NUMBER", "Body": "{{{BODY}}}"},
            "noDefaults": true
        }),
        "sms",
        br#"{"BODY": "Hi there!"}"#,
    );
    assert_eq!(r.headers, headers(&[FORM]));
    assert_eq!(
        text(&r.body),
        "Body=Hi%20there%21&From=FROM_PHONE_NUMBER&To=TO_PHONE_NUMBER"
    );
}

#[test]
fn form_with_the_default_data() {
    let r = request(
        json!({"event": "sms", "url": "https://example.com/", "form": {"Body": "{{{BODY}}}"}}),
        "sms",
        br#"{"BODY": "Hi"}"#,
    );
    assert_eq!(
        text(&r.body),
        "Body=Hi&event=sms&data=%7B%22BODY%22%3A%20%22Hi%22%7D&published_at=2017-02-01T21%3A08%3A05.763Z&coreid=3f002b000000000000000000"
    );
}

// ## Custom body extra settings

#[test]
fn custom_body_examples() {
    let r = request(
        json!({"event": "t", "url": "https://example.com/", "body": "{ \"value\": {{{PARTICLE_EVENT_VALUE}}} }"}),
        "t",
        b"true",
    );
    assert_eq!(text(&r.body), r#"{ "value": true }"#);
    assert!(r.headers.is_empty(), "no content type for a custom body");

    let r = request(
        json!({
            "event": "t", "url": "https://example.com/",
            "body": "{ \"gauges\": [{ \"name\": \"{{{n}}}\", \"value\": {{{v}}} }] }"
        }),
        "t",
        br#"{"n": "click", "v": 2}"#,
    );
    assert_eq!(
        text(&r.body),
        r#"{ "gauges": [{ "name": "click", "value": 2 }] }"#
    );
}

// ## Query parameters

#[test]
fn query_parameters_are_percent_encoded_after_the_urls_own() {
    let r = request(
        json!({
            "event": "t", "url": "http://example.com/?x=1",
            "requestType": "GET",
            "query": {"q": "{{{PARTICLE_EVENT_VALUE}}}", "p": "my app"}
        }),
        "t",
        b"data",
    );
    assert_eq!(
        r.url,
        "http://example.com/?x=1&p=my%20app&q=data&event=t&data=data&published_at=2017-02-01T21%3A08%3A05.763Z&coreid=3f002b000000000000000000"
    );
    // With POST the query holds only the user's fields; defaults go in the form.
    let r = request(
        json!({"event": "t", "url": "http://example.com/", "query": {"p": "my app"}}),
        "t",
        b"data",
    );
    assert_eq!(r.url, "http://example.com/?p=my%20app");
    assert!(text(&r.body).starts_with("event=t&data=data&"));
}

// ## HTTP basic auth and headers

#[test]
fn basic_auth_and_custom_headers() {
    let r = request(
        json!({
            "event": "t", "url": "https://example.com/", "noDefaults": true, "body": "",
            "auth": {"username": "user@email.com", "password": "API_KEY"},
            "headers": {"X-Sender": "{{PARTICLE_DEVICE_ID}}", "X-Application": "My app"}
        }),
        "t",
        b"",
    );
    let basic = format!("Basic {}", STANDARD.encode("user@email.com:API_KEY"));
    assert_eq!(
        r.headers,
        headers(&[
            ("authorization", &basic),
            ("X-Application", "My app"),
            ("X-Sender", DEVICE),
        ])
    );
    let r = request(
        json!({"event": "t", "url": "https://example.com/", "headers": {"Authorization": "Bearer 12345"}}),
        "t",
        b"",
    );
    assert_eq!(
        r.headers,
        headers(&[FORM, ("Authorization", "Bearer 12345")])
    );
}

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

// ## Webhook responses: topics, unchunked, data URL, errors

#[test]
fn response_topic_defaults_and_templates() {
    let outcome = ok(b"ok");
    // The response event carries the triggering event's name, not the prefix.
    let hook = webhook(json!({"event": "my-hooks", "url": "https://example.com/"}));
    let replies = hook
        .replies(&event("my-hooks/get_weather", b""), &outcome)
        .unwrap();
    assert_eq!(
        replies,
        [response(
            ReplyKind::Response,
            "hook-response/my-hooks/get_weather",
            b"ok"
        )]
    );

    let hook = webhook(json!({
        "event": "weather", "url": "https://example.com/",
        "responseTopic": "{{PARTICLE_DEVICE_ID}}/hook-response/weather",
        "errorResponseTopic": "save_failed_for_{{PARTICLE_DEVICE_ID}}"
    }));
    let e = event("weather", b"");
    assert_eq!(
        hook.replies(&e, &outcome).unwrap()[0].topic,
        format!("{DEVICE}/hook-response/weather")
    );
    let failed = hook.replies(&e, &Outcome::Failed("timed out")).unwrap();
    assert_eq!(
        failed,
        [response(
            ReplyKind::Error,
            &format!("save_failed_for_{DEVICE}"),
            b"timed out"
        )]
    );
}

#[test]
fn error_status_names_the_host() {
    let not_found = Outcome::Response(Response {
        status: 404,
        headers: &[],
        body: b"Not Found",
    });
    let hook = webhook(json!({"event": "demo", "url": "https://requestb.in/1abc?x=1"}));
    assert_eq!(
        hook.replies(&event("demo", b""), &not_found).unwrap(),
        [response(
            ReplyKind::Error,
            "hook-error/demo",
            b"error status 404 from requestb.in"
        )]
    );
    let hook = webhook(json!({"event": "demo", "url": "http://example.com/log/{{{room}}}"}));
    let replies = hook
        .replies(&event("demo", br#"{"room": "k"}"#), &not_found)
        .unwrap();
    assert_eq!(replies[0].payload, b"error status 404 from example.com");
}

#[test]
fn unchunked_marks_the_response() {
    let hook = webhook(json!({"event": "t", "url": "https://example.com/", "unchunked": true}));
    let replies = hook.replies(&event("t", b""), &ok(b"x")).unwrap();
    assert!(replies[0].unchunked);
}

#[test]
fn data_url_encodes_binary_responses() {
    let binary: [u8; 64] = [
        0xa7, 0x22, 0x98, 0x1c, 0x40, 0x1b, 0x9b, 0x80, 0xbb, 0x9d, 0xd9, 0xc0, 0x13, 0xbb, 0x4e,
        0xd0, 0xa3, 0xc0, 0xae, 0x81, 0xc5, 0x93, 0x91, 0x2a, 0x83, 0x8e, 0x69, 0x27, 0xb0, 0xc6,
        0x17, 0x26, 0x85, 0x93, 0xb7, 0xa6, 0xf5, 0x69, 0xc0, 0x4c, 0x9e, 0x3d, 0x53, 0x49, 0xb5,
        0x47, 0xf0, 0x44, 0x26, 0x9b, 0x8a, 0x1d, 0xe4, 0xbc, 0x73, 0xf9, 0x4d, 0xa4, 0xe8, 0x34,
        0xc2, 0x56, 0x17, 0xc9,
    ];
    let hook = webhook(json!({
        "event": "t", "url": "https://example.com/", "dataUrlResponseEvent": true
    }));
    let replies = hook.replies(&event("t", b""), &ok(&binary)).unwrap();
    assert_eq!(
        text(&replies[0].payload),
        "data:application/octet-stream;base64,pyKYHEAbm4C7ndnAE7tO0KPAroHFk5Eqg45pJ7DGFyaFk7em9WnATJ49U0m1R/BEJpuKHeS8c/lNpOg0wlYXyQ=="
    );
}

// ## Basic settings and the CLI's example

#[test]
fn basic_settings_and_particle_exports() {
    let hook = webhook(json!({
        "name": "Trigger alert", "event": "Temperature", "url": "https://example.com/",
        "requestType": "GET", "deviceID": DEVICE, "disabled": true, "rejectUnauthorized": false
    }));
    assert_eq!(hook.name(), Some("Trigger alert"));
    assert_eq!(hook.event(), "Temperature");
    assert_eq!(hook.device_id(), Some(DEVICE));
    assert!(hook.disabled());
    assert!(!hook.reject_unauthorized());
    assert_eq!(hook.url(), "https://example.com/");

    // What `particle webhook create slack.json` sends, `undefined`s as null.
    let r = request(
        json!({
            "event": "slack-incoming-webhook",
            "url": "https://hooks.slack.com/services/B1234567/C234567/345634563456345634563456",
            "deviceid": null, "access_token": "56785678567856785678567856785678",
            "requestType": "POST", "headers": null,
            "json": {"channel": "#random", "username": "ParticleBot",
                     "text": "{{{SPARK_EVENT_VALUE}}}", "icon_emoji": ":spark:"},
            "query": null, "auth": null, "mydevices": true
        }),
        "slack-incoming-webhook",
        b"hello",
    );
    let body: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["text"], "hello");
    assert_eq!(body["channel"], "#random");
}

// ## Definition errors, each naming its field

fn refused(definition: Value) -> DefinitionError {
    Webhook::from_json(&definition).expect_err("refused")
}

#[test]
fn definition_errors_name_their_field() {
    let url = "https://example.com/";
    let err = refused(json!({"event": "t", "url": url, "json": {}, "form": {}}));
    assert_eq!(err.field, "json");
    assert_eq!(
        err.reason,
        "`json` and `form` cannot both be set: choose one body type"
    );
    assert_eq!(
        err.to_string(),
        "`json`: `json` and `form` cannot both be set: choose one body type"
    );

    assert_eq!(refused(json!({"event": "t"})).field, "url");
    assert_eq!(refused(json!({"event": "", "url": url})).field, "event");
    let err = refused(json!({"event": "t", "url": url, "requestType": "PATCH"}));
    assert_eq!(err.field, "requestType");
    assert!(err.reason.contains("GET, POST, PUT or DELETE"), "{err}");
    let err =
        refused(json!({"event": "t", "url": url, "json": {"coordinates": {"lat": "{{{lat}}"}}}));
    assert_eq!(err.field, "json.coordinates.lat");
    assert!(err.reason.contains("unclosed tag"), "{err}");
    let err = refused(json!({"event": "t", "url": url, "headers": {"X-Sender": "{{#a}}"}}));
    assert_eq!(err.field, "headers.X-Sender");
    let err = refused(json!({"event": "t", "url": url, "colour": "red"}));
    assert_eq!(err.field, "colour");
    assert!(
        err.reason.starts_with("unknown field; known fields are "),
        "{err}"
    );
    let err = refused(json!({"event": "t", "url": url, "requestType": "GET", "json": {"a": 1}}));
    assert_eq!(err.field, "json");
    assert!(err.reason.contains("`query`"), "{err}");
}
