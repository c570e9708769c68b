//! The requests of the reference's examples: default data, JSON, forms,
//! custom bodies, query parameters, basic auth and headers.

use super::*;

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
