//! What the device receives: the Google Maps elevation example's response
//! templates, response topics, unchunked and data URL replies, errors.

use super::*;

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
