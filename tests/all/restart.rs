//! A host restarted at once binds its ports again: when it stopped with
//! devices connected, their connections sit in TIME_WAIT on its side, and
//! a service manager restarting it must not loop on "address in use".

use crate::support::{Device, HostProcess};

#[tokio::test(flavor = "multi_thread")]
async fn a_host_restarted_with_devices_connected_binds_its_broker_port_again() {
    let dir = tempfile::tempdir().unwrap();
    let first = HostProcess::start(dir.path(), &["--mqtt-listen", "127.0.0.1:0"]).await;
    let mqtt = first.mqtt_addr.expect("the embedded broker's address");
    let mut devices = Vec::new();
    for id in ["d1", "d2"] {
        let device = Device::connect(mqtt, id).await;
        device.publish("hello", "1").await;
        devices.push(device);
    }
    // The kernel closes the dead host's connections from its side first.
    first.kill().await;
    let second = HostProcess::start(dir.path(), &["--mqtt-listen", &mqtt.to_string()]).await;
    assert_eq!(second.mqtt_addr, Some(mqtt));
}
