//! Particle-style webhooks end to end, with the reference's own examples:
//! a webhook posted to the API, a device publishing over MQTT, a real HTTP
//! endpoint on loopback checking the exact request, and the device checking
//! the exact messages it gets back.

use edgehook::config::Settings;
use serde_json::json;

use crate::support::{Device, Endpoint, HostUnderTest, Seen, TestHost};

/// A host with no plugin files: only Particle-style webhooks.
async fn host() -> TestHost {
    TestHost::start(&[], Settings::default()).await
}

fn text(seen: &Seen) -> String {
    String::from_utf8(seen.body.to_vec()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn default_data_is_a_form_post_and_the_answer_comes_back() {
    let mut endpoint = Endpoint::start(200, "ok").await;
    let host = host().await;
    host.create_webhook(json!({ "eventName": "demo", "url": endpoint.url("/") }))
        .await;
    let mut device = Device::connect(host.mqtt_addr(), "3f002b000000000000000000").await;

    device.publish("demo", "mydata").await;

    let seen = endpoint.next().await;
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.uri, "/");
    assert_eq!(
        seen.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert!(seen.header("user-agent").unwrap().starts_with("edgehook/"));
    let body = text(&seen);
    let published_at = body
        .split('&')
        .find_map(|p| p.strip_prefix("published_at="))
        .expect("published_at in the form");
    assert_eq!(
        body,
        format!(
            "event=demo&data=mydata&published_at={published_at}&coreid=3f002b000000000000000000"
        )
    );
    assert!(
        published_at.ends_with('Z') && published_at.contains("%3A"),
        "{published_at}"
    );
    assert_eq!(
        device.next_text().await,
        (
            "devices/3f002b000000000000000000/hook-sent/demo".into(),
            String::new()
        )
    );
    assert_eq!(
        device.next_text().await,
        (
            "devices/3f002b000000000000000000/hook-response/demo/0".into(),
            "ok".into()
        )
    );
    host.host.stop().await;
}

/// `PRODUCT_ID` is the device's group in the registry: empty for a device
/// in no group and for one not registered.
#[tokio::test(flavor = "multi_thread")]
async fn product_id_is_the_devices_group() {
    let mut endpoint = Endpoint::start(200, "").await;
    let host = host().await;
    host.register(&["boilers"], &[("b1", Some("boilers")), ("loose", None)])
        .await;
    host.create_webhook(json!({ "event": "temp", "url": endpoint.url("/"),
        "body": "[{{PRODUCT_ID}}] {{PARTICLE_DEVICE_ID}}" }))
        .await;
    for (device, expected) in [
        ("b1", "[boilers] b1"),
        ("loose", "[] loose"),
        ("stranger", "[] stranger"),
    ] {
        let device = Device::connect(host.mqtt_addr(), device).await;
        device.publish("temp", "21").await;
        assert_eq!(text(&endpoint.next().await), expected);
    }
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn json_with_no_defaults_names_keys_after_the_event() {
    let mut endpoint = Endpoint::start(200, "").await;
    let host = host().await;
    host.create_webhook(json!({
        "event": "Temperature/",
        "url": endpoint.url("/123456789"),
        "json": { "{{PARTICLE_EVENT_NAME}}": "{{{PARTICLE_EVENT_VALUE}}}" },
        "noDefaults": true
    }))
    .await;
    let mut device = Device::connect(host.mqtt_addr(), "d1").await;

    device.publish("Temperature/Kitchen", "20.00").await;

    let seen = endpoint.next().await;
    assert_eq!(
        (seen.method.as_str(), seen.uri.path()),
        ("POST", "/123456789")
    );
    assert_eq!(seen.header("content-type"), Some("application/json"));
    assert_eq!(seen.header("accept"), Some("application/json"));
    assert_eq!(text(&seen), r#"{"Temperature/Kitchen":"20.00"}"#);
    assert_eq!(
        device.next_text().await,
        (
            "devices/d1/hook-sent/Temperature/Kitchen".into(),
            String::new()
        )
    );
    device.publish("Temperature/Hall", "19.00").await;
    let before = device
        .before_marker("devices/d1/hook-sent/Temperature/Hall")
        .await;
    assert!(
        before.is_empty(),
        "an empty answer sends no hook-response: {before:?}"
    );
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn json_defaults_join_the_fields_and_custom_variables_fill_the_template() {
    let mut endpoint = Endpoint::start(200, "").await;
    let host = host().await;
    host.create_webhook(json!({
        "eventName": "test",
        "url": format!("{}/{{{{{{room}}}}}}", endpoint.url("/log")),
        "json": { "location": "{{{room}}}", "temperature": "{{{temp}}}" }
    }))
    .await;
    let device = Device::connect(host.mqtt_addr(), "d1").await;

    device
        .publish("test", r#"{ "room": "kitchen", "temp": 20 }"#)
        .await;

    let seen = endpoint.next().await;
    assert_eq!(seen.uri.path(), "/log/kitchen");
    let body: serde_json::Value = serde_json::from_slice(&seen.body).unwrap();
    assert_eq!(body["location"], "kitchen");
    assert_eq!(body["temperature"], "20");
    assert_eq!(body["event"], "test");
    assert_eq!(body["data"], r#"{ "room": "kitchen", "temp": 20 }"#);
    assert_eq!(body["coreid"], "d1");
    assert!(body["published_at"].as_str().unwrap().ends_with('Z'));
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_custom_body_sends_numbers_as_numbers() {
    let mut endpoint = Endpoint::start(200, "").await;
    let host = host().await;
    host.create_webhook(json!({
        "event": "Elevation",
        "url": endpoint.url("/123456789"),
        "headers": { "content-type": "application/json" },
        "body": "{ \"coordinates\": { \"lat\": {{{lat}}}, \"lng\": {{{lng}}} } }",
        "noDefaults": true
    }))
    .await;
    let device = Device::connect(host.mqtt_addr(), "d1").await;

    device
        .publish("Elevation", r#"{"lat":39.739155, "lng":-104.984703}"#)
        .await;

    let seen = endpoint.next().await;
    assert_eq!(seen.header("content-type"), Some("application/json"));
    assert_eq!(
        text(&seen),
        r#"{ "coordinates": { "lat": 39.739155, "lng": -104.984703 } }"#
    );
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn get_with_query_and_a_response_template() {
    let google = r#"{
   "results" : [
      {
         "elevation" : 1608.637939453125,
         "location" : { "lat" : 39.73915360, "lng" : -104.98470340 },
         "resolution" : 4.771975994110107
      }
   ],
   "status" : "OK"
}"#;
    let mut endpoint = Endpoint::start(200, google).await;
    let host = host().await;
    host.create_webhook(json!({
        "event": "Elevation",
        "url": endpoint.url("/maps/api/elevation/json"),
        "requestType": "GET",
        "query": { "locations": "{{{lat}}},{{{lng}}}", "key": "XXXXXXXXXX" },
        "responseTemplate": "{{{results.0.elevation}}}",
        "noDefaults": true
    }))
    .await;
    let mut device = Device::connect(host.mqtt_addr(), "d1").await;

    device
        .publish("Elevation", r#"{"lat": 39.7, "lng": -104.9}"#)
        .await;

    let seen = endpoint.next().await;
    assert_eq!(seen.method, "GET");
    assert_eq!(
        seen.uri.to_string(),
        "/maps/api/elevation/json?key=XXXXXXXXXX&locations=39.7%2C-104.9"
    );
    assert!(seen.body.is_empty());
    assert_eq!(seen.header("content-type"), None);
    assert_eq!(device.next_text().await.0, "devices/d1/hook-sent/Elevation");
    assert_eq!(
        device.next_text().await,
        (
            "devices/d1/hook-response/Elevation/0".into(),
            "1608.637939453125".into()
        )
    );
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn get_without_a_body_type_puts_the_defaults_in_the_query() {
    let mut endpoint = Endpoint::start(200, "").await;
    let host = host().await;
    host.create_webhook(json!({
        "event": "ping",
        "url": endpoint.url("/p?fixed=1"),
        "requestType": "get",
        "query": { "q": "{{{PARTICLE_EVENT_VALUE}}}", "p": "my app" }
    }))
    .await;
    let device = Device::connect(host.mqtt_addr(), "d1").await;

    device.publish("ping", "a&b").await;

    let seen = endpoint.next().await;
    assert_eq!(seen.method, "GET");
    let query = seen.uri.query().unwrap();
    let published_at = query
        .split('&')
        .find_map(|p| p.strip_prefix("published_at="))
        .unwrap();
    assert_eq!(
        query,
        format!(
            "fixed=1&p=my%20app&q=a%26b&event=ping&data=a%26b&published_at={published_at}&coreid=d1"
        )
    );
    assert!(!published_at.contains(':'), "{published_at}");
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_form_with_headers_and_basic_auth() {
    let mut endpoint = Endpoint::start(201, "queued").await;
    let host = host().await;
    host.create_webhook(json!({
        "event": "sms",
        "url": endpoint.url("/Messages"),
        "requestType": "PUT",
        "form": { "From": "FROM_PHONE_NUMBER", "To": "TO_PHONE_NUMBER", "Body": "{{{BODY}}}" },
        "headers": { "X-Sender": "{{PARTICLE_DEVICE_ID}}", "X-Application": "My app" },
        "auth": { "username": "user@email.com", "password": "{{{key}}}" },
        "noDefaults": true
    }))
    .await;
    let mut device = Device::connect(host.mqtt_addr(), "d&1").await;

    device
        .publish("sms", r#"{"BODY": "Hi there!", "key": "API_KEY"}"#)
        .await;

    let seen = endpoint.next().await;
    assert_eq!(seen.method, "PUT");
    assert_eq!(
        text(&seen),
        "Body=Hi%20there%21&From=FROM_PHONE_NUMBER&To=TO_PHONE_NUMBER"
    );
    assert_eq!(
        seen.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        seen.header("x-sender"),
        Some("d&amp;1"),
        "{{x}} escapes HTML"
    );
    assert_eq!(seen.header("x-application"), Some("My app"));
    // base64("user@email.com:API_KEY")
    assert_eq!(
        seen.header("authorization"),
        Some("Basic dXNlckBlbWFpbC5jb206QVBJX0tFWQ==")
    );
    assert_eq!(device.next_text().await.0, "devices/d&1/hook-sent/sms");
    assert_eq!(
        device.next_text().await,
        ("devices/d&1/hook-response/sms/0".into(), "queued".into())
    );
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_response_comes_back_in_three_chunks() {
    let body: String = (0..1300)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let endpoint = Endpoint::start(200, body.clone()).await;
    let host = host().await;
    host.create_webhook(json!({ "event": "get_weather", "url": endpoint.url("/w") }))
        .await;
    let mut device = Device::connect(host.mqtt_addr(), "d1").await;

    device.publish("get_weather", "").await;

    assert_eq!(
        device.next_text().await.0,
        "devices/d1/hook-sent/get_weather"
    );
    let mut chunks = Vec::new();
    for _ in 0..3 {
        chunks.push(device.next_text().await);
    }
    let topics: Vec<&str> = chunks.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        topics,
        [
            "devices/d1/hook-response/get_weather/0",
            "devices/d1/hook-response/get_weather/1",
            "devices/d1/hook-response/get_weather/2"
        ]
    );
    let sizes: Vec<usize> = chunks.iter().map(|(_, p)| p.len()).collect();
    assert_eq!(sizes, [512, 512, 276]);
    assert_eq!(
        chunks.iter().map(|(_, p)| p.as_str()).collect::<String>(),
        body
    );
    device.publish("get_weather2", "").await;
    let before = device
        .before_marker("devices/d1/hook-sent/get_weather2")
        .await;
    assert!(before.is_empty(), "three chunks and no more: {before:?}");
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_404_is_a_hook_error_on_the_default_or_chosen_topic() {
    let endpoint = Endpoint::start(404, "not here").await;
    let host = host().await;
    host.create_webhook(json!({ "event": "demo", "url": endpoint.url("/missing") }))
        .await;
    host.create_webhook(json!({
        "event": "save",
        "url": endpoint.url("/missing"),
        "errorResponseTopic": "save_failed_for_{{PARTICLE_DEVICE_ID}}"
    }))
    .await;
    let mut device = Device::connect(host.mqtt_addr(), "d1").await;

    device.publish("demo", "x").await;
    assert_eq!(device.next_text().await.0, "devices/d1/hook-sent/demo");
    assert_eq!(
        device.next_text().await,
        (
            "devices/d1/hook-error/demo/0".into(),
            "error status 404 from 127.0.0.1".into()
        )
    );

    device.publish("save", "x").await;
    assert_eq!(device.next_text().await.0, "devices/d1/hook-sent/save");
    assert_eq!(
        device.next_text().await,
        (
            "devices/d1/save_failed_for_d1/0".into(),
            "error status 404 from 127.0.0.1".into()
        )
    );
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn response_topic_and_unchunked() {
    let body = "x".repeat(700);
    let endpoint = Endpoint::start(200, body.clone()).await;
    let host = host().await;
    host.create_webhook(json!({
        "event": "weather",
        "url": endpoint.url("/w"),
        "responseTopic": "{{PARTICLE_DEVICE_ID}}/hook-response/weather",
        "unchunked": true
    }))
    .await;
    let mut device = Device::connect(host.mqtt_addr(), "d7").await;

    device.publish("weather", "now").await;

    assert_eq!(device.next_text().await.0, "devices/d7/hook-sent/weather");
    assert_eq!(
        device.next_text().await,
        ("devices/d7/d7/hook-response/weather/0".into(), body)
    );
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn prefixes_device_ids_and_disabled_webhooks_choose_what_runs() {
    let mut endpoint = Endpoint::start(200, "").await;
    let host = host().await;
    host.create_webhook(json!({ "event": "temp", "url": endpoint.url("/prefix"), "noDefaults": true, "body": "{{PARTICLE_EVENT_NAME}}" }))
        .await;
    host.create_webhook(json!({ "event": "only", "url": endpoint.url("/device"), "deviceID": "d2", "noDefaults": true, "body": "{{PARTICLE_DEVICE_ID}}" }))
        .await;
    host.create_webhook(
        json!({ "event": "off", "url": endpoint.url("/disabled"), "disabled": true }),
    )
    .await;
    let d1 = Device::connect(host.mqtt_addr(), "d1").await;
    let d2 = Device::connect(host.mqtt_addr(), "d2").await;

    d1.publish("Temp", "case matters").await;
    d1.publish("off", "disabled").await;
    d1.publish("only", "other device").await;
    d1.publish("temperature", "prefix").await;
    let seen = endpoint.next().await;
    assert_eq!(
        (seen.uri.path(), text(&seen).as_str()),
        ("/prefix", "temperature")
    );

    d2.publish("only", "its device").await;
    let seen = endpoint.next().await;
    assert_eq!((seen.uri.path(), text(&seen).as_str()), ("/device", "d2"));
    d1.publish("temperature", "marker").await;
    let before = endpoint.before_marker(|s| text(s) == "temperature").await;
    assert!(
        before.is_empty(),
        "Temp, the disabled webhook and the other device's event sent nothing: {before:?}"
    );
    host.host.stop().await;
}
