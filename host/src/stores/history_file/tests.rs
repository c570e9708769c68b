use std::time::{Duration, SystemTime};

use bytes::Bytes;

use super::*;
use crate::stores::history::{Received, SentRequest};
use crate::topic::{DeviceId, EventName};

const WEEK: Retention = Retention {
    max_age: Duration::from_secs(7 * 24 * 3600),
    max_bytes: 256 << 20,
};

fn event(device: &str) -> Event {
    Event::received(
        DeviceId::try_from(device).unwrap(),
        EventName::try_from("temp").unwrap(),
        Bytes::from_static(b"{\"t\":21.5}"),
    )
}

fn attempt(event: &Event, webhook: &str, number: u32, outcome: Outcome) -> Attempt {
    Attempt {
        event_id: event.id.clone(),
        webhook: webhook.into(),
        device: event.device.as_str().to_owned(),
        event: event.name.as_str().to_owned(),
        number,
        at: SystemTime::now(),
        request: Some(SentRequest {
            method: "POST".into(),
            url: "http://example.com/in".into(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: "{\"t\":21.5}".into(),
            body_len: 10,
        }),
        response: (outcome == Outcome::Delivered).then(|| Received {
            status: 200,
            headers: vec![],
            body: "ok".into(),
            body_len: 2,
        }),
        error: (outcome != Outcome::Delivered).then(|| "status 503".to_owned()),
        duration: Duration::from_millis(3),
        outcome,
    }
}

fn open(dir: &Path, retention: Retention) -> HistoryFile {
    HistoryFile::open(dir, retention).unwrap()
}

#[tokio::test]
async fn attempts_survive_a_reopen_newest_first_in_pages() {
    let dir = tempfile::tempdir().unwrap();
    let history = open(dir.path(), WEEK);
    let events: Vec<_> = (0..5).map(|i| event(&format!("d{i}"))).collect();
    let attempts = events
        .iter()
        .map(|e| attempt(e, "w1", 1, Outcome::Delivered))
        .collect();
    history.append(events.clone(), attempts).await.unwrap();
    drop(history);

    let history = open(dir.path(), WEEK);
    assert_eq!(history.held().attempts, 5);
    let first = history
        .page(Filter::default(), false, 2, None)
        .await
        .unwrap();
    let devices: Vec<_> = first.attempts.iter().map(|a| a.device.as_str()).collect();
    assert_eq!(devices, ["d4", "d3"]);
    let second = history
        .page(Filter::default(), false, 2, first.next.clone())
        .await
        .unwrap();
    let devices: Vec<_> = second.attempts.iter().map(|a| a.device.as_str()).collect();
    assert_eq!(devices, ["d2", "d1"]);
    let kept = history.event(events[2].id.clone()).await.unwrap().unwrap();
    assert_eq!(kept.data, events[2].data);
    let bad = history
        .page(Filter::default(), false, 2, Some("x".into()))
        .await;
    assert!(matches!(bad, Err(HistoryError::Cursor(_))));
}

#[tokio::test]
async fn filters_narrow_and_dead_letters_leave_when_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let history = open(dir.path(), WEEK);
    let (a, b) = (event("d1"), event("d2"));
    history
        .append(
            vec![a.clone(), b.clone()],
            vec![
                attempt(&a, "w1", 1, Outcome::Retrying),
                attempt(&a, "w1", 2, Outcome::GaveUp),
                attempt(&a, "w2", 1, Outcome::Delivered),
                attempt(&b, "w1", 1, Outcome::GaveUp),
            ],
        )
        .await
        .unwrap();
    let only = |webhook: &str| Filter {
        webhook: Some(webhook.into()),
        ..Filter::default()
    };
    let w2 = history.page(only("w2"), false, 10, None).await.unwrap();
    assert_eq!(w2.attempts.len(), 1);
    let dead = history
        .page(Filter::default(), true, 10, None)
        .await
        .unwrap();
    let ids: Vec<_> = dead.attempts.iter().map(|a| a.event_id.clone()).collect();
    assert_eq!(ids, [b.id.clone(), a.id.clone()]);

    let gave_up = Filter {
        outcome: Some(Outcome::GaveUp),
        ..Filter::default()
    };
    let targets = history.targets(gave_up.clone(), 10).await.unwrap();
    assert_eq!(targets.len(), 2);
    assert_eq!(targets[1].attempts, 2, "{targets:?}");

    history
        .append(
            vec![a.clone()],
            vec![attempt(&a, "w1", 3, Outcome::Delivered)],
        )
        .await
        .unwrap();
    let dead = history
        .page(Filter::default(), true, 10, None)
        .await
        .unwrap();
    assert_eq!(dead.attempts.len(), 1);
    assert_eq!(dead.attempts[0].event_id, b.id);
    // Judged by its newest attempt, a delivered pair is no longer a
    // target of a replay of what gave up.
    let targets = history.targets(gave_up, 10).await.unwrap();
    assert_eq!(targets.len(), 1);
    let all = history.of_event(a.id.clone()).await.unwrap();
    let numbers: Vec<_> = all.iter().map(|a| (a.webhook.as_str(), a.number)).collect();
    assert_eq!(numbers, [("w1", 1), ("w1", 2), ("w2", 1), ("w1", 3)]);
}

#[tokio::test]
async fn the_oldest_go_first_beyond_the_size_and_take_their_events() {
    let dir = tempfile::tempdir().unwrap();
    let small = Retention {
        max_bytes: 4_000,
        ..WEEK
    };
    let history = open(dir.path(), small);
    let mut events = Vec::new();
    for i in 0..40 {
        let e = event(&format!("d{i}"));
        let a = attempt(&e, "w1", 1, Outcome::GaveUp);
        history.append(vec![e.clone()], vec![a]).await.unwrap();
        events.push(e);
    }
    let held = history.held();
    assert!(held.bytes <= 4_000, "{held:?}");
    assert!(held.attempts > 0 && held.attempts < 40, "{held:?}");
    assert!(history.event(events[0].id.clone()).await.unwrap().is_none());
    assert!(
        history
            .event(events[39].id.clone())
            .await
            .unwrap()
            .is_some()
    );
    let page = history
        .page(Filter::default(), true, 100, None)
        .await
        .unwrap();
    assert_eq!(page.attempts.len() as u64, held.attempts);
}

#[tokio::test]
async fn attempts_past_their_age_go() {
    let dir = tempfile::tempdir().unwrap();
    let history = open(dir.path(), WEEK);
    let e = event("d1");
    let mut old = attempt(&e, "w1", 1, Outcome::Delivered);
    old.at -= Duration::from_secs(3600);
    history.append(vec![e.clone()], vec![old]).await.unwrap();
    assert_eq!(history.held().attempts, 1);
    history.retain(Retention {
        max_age: Duration::ZERO,
        ..WEEK
    });
    history.prune().await.unwrap();
    assert_eq!(history.held(), Held::default());
    assert!(history.event(e.id).await.unwrap().is_none());
}
