//! The throttle the pipeline calls around each delivery attempt: per
//! destination host, its health, `Retry-After` pause, rate and concurrency;
//! per device, its rate.
//!
//! State is kept per key in caches that forget a host or device after
//! [`IDLE_EXPIRY`] unused, so memory stays bounded however many there are.
//! Locks are held only for a few arithmetic steps, never across an await.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use moka::sync::Cache;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, sleep};

use super::health::{HealthPolicy, HostHealth, Sleeping};
use super::rate::{Bucket, Rate};
use super::retry::MAX_RETRY_AFTER;

/// How long a host's or device's state is kept after its last use. An
/// expired host forgets its health and pause; a request still in flight
/// then keeps its slot, but does not count against the new state's cap.
pub const IDLE_EXPIRY: Duration = Duration::from_secs(600);

/// The most hosts, and the most devices, tracked at once.
const MAX_KEYS: u64 = 100_000;

/// What the throttle enforces.
#[derive(Debug, Clone, PartialEq)]
pub struct ThrottleConfig {
    /// When a host is put to sleep.
    pub health: HealthPolicy,
    /// The most requests in flight to one host (default 32, at least 1).
    pub host_concurrency: usize,
    /// The pace of requests to one host (default none).
    pub host_rate: Option<Rate>,
    /// The pace of requests for one device (default none).
    pub device_rate: Option<Rate>,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            health: HealthPolicy::default(),
            host_concurrency: 32,
            host_rate: None,
            device_rate: None,
        }
    }
}

/// A request slot on one host: the slot is freed when this is dropped.
#[derive(Debug)]
#[must_use = "the slot is freed as soon as the permit is dropped"]
pub struct HostPermit {
    _slot: OwnedSemaphorePermit,
}

/// Per-host and per-device throttling; cheap to clone, clones share state.
#[derive(Clone)]
pub struct Throttle {
    state: Arc<ArcSwap<State>>,
}

/// The settings and what they keep of each host and device.
struct State {
    cfg: ThrottleConfig,
    hosts: Cache<String, Arc<HostState>>,
    /// Only when there is a device rate: no per-device work otherwise.
    devices: Option<Devices>,
}

impl State {
    fn new(cfg: ThrottleConfig) -> Self {
        Self {
            hosts: keyed(),
            devices: cfg.device_rate.map(|rate| Devices {
                rate,
                buckets: keyed(),
            }),
            cfg,
        }
    }
}

impl fmt::Debug for Throttle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.load();
        f.debug_struct("Throttle")
            .field("cfg", &state.cfg)
            .field("hosts", &state.hosts.entry_count())
            .finish_non_exhaustive()
    }
}

impl Throttle {
    /// A throttle with no state yet.
    pub fn new(cfg: ThrottleConfig) -> Self {
        Self {
            state: Arc::new(ArcSwap::from_pointee(State::new(cfg))),
        }
    }

    /// Throttles by `cfg` from now on, starting afresh: what was known of
    /// each host and device is forgotten, and requests in flight keep the
    /// slots they hold (they do not count against the new concurrency).
    pub fn reconfigure(&self, cfg: ThrottleConfig) {
        self.state.store(Arc::new(State::new(cfg)));
    }

    /// Before one attempt to `host` for `device`: `Err(Sleeping)` at once
    /// when the host is sleeping (skip the attempt and tell the device
    /// [`SLEEPING_MESSAGE`](super::SLEEPING_MESSAGE)). Otherwise waits for the
    /// device's rate, the host's `Retry-After` pause and rate, and a request
    /// slot on the host, which the returned permit holds.
    pub async fn admit(&self, host: &str, device: &str) -> Result<HostPermit, Sleeping> {
        let throttle = self.state.load_full();
        let state = throttle.host(host);
        if let Some(devices) = &throttle.devices {
            state
                .lock()
                .health
                .admit(&throttle.cfg.health, Instant::now().into_std())?;
            devices.pace(device).await;
        }
        while let Some(wait) = state.wait(&throttle.cfg)? {
            sleep(wait).await;
        }
        let slot = Arc::clone(&state.slots)
            .acquire_owned()
            .await
            .expect("the host semaphore is never closed");
        Ok(HostPermit { _slot: slot })
    }

    /// After an attempt to `host`: feeds its health (`ok` for a 1xx–3xx
    /// answer), and pauses the whole host for `pause` (a `Retry-After`,
    /// capped at [`MAX_RETRY_AFTER`]) when given.
    pub fn record(&self, host: &str, ok: bool, pause: Option<Duration>) {
        let throttle = self.state.load();
        let state = throttle.host(host);
        let mut inner = state.lock();
        let now = Instant::now();
        inner
            .health
            .record(&throttle.cfg.health, ok, now.into_std());
        if let Some(pause) = pause {
            let until = now + pause.min(MAX_RETRY_AFTER);
            inner.paused_until = Some(inner.paused_until.map_or(until, |p| p.max(until)));
        }
    }

    /// How many hosts are sleeping now.
    pub fn sleeping_hosts(&self) -> usize {
        let now = Instant::now().into_std();
        let throttle = self.state.load();
        throttle
            .hosts
            .iter()
            .filter(|(_, state)| {
                let until = state.lock().health.sleeping_until(&throttle.cfg.health);
                until.is_some_and(|until| now < until)
            })
            .count()
    }
}

impl State {
    fn host(&self, host: &str) -> Arc<HostState> {
        self.hosts.get_with_by_ref(host, || {
            Arc::new(HostState {
                slots: Arc::new(Semaphore::new(self.cfg.host_concurrency.max(1))),
                inner: Mutex::default(),
            })
        })
    }
}

fn keyed<V: Clone + Send + Sync + 'static>() -> Cache<String, V> {
    Cache::builder()
        .max_capacity(MAX_KEYS)
        .time_to_idle(IDLE_EXPIRY)
        .build()
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The per-device rate and pacing state.
#[derive(Debug, Clone)]
struct Devices {
    rate: Rate,
    buckets: Cache<String, Arc<Mutex<Bucket>>>,
}

impl Devices {
    /// Waits for the device's turn, and takes it.
    async fn pace(&self, device: &str) {
        let bucket = self.buckets.get_with_by_ref(device, Arc::default);
        loop {
            let taken = lock(&bucket).take(&self.rate, Instant::now().into_std());
            match taken {
                Ok(()) => return,
                Err(wait) => sleep(wait).await,
            }
        }
    }
}

/// One destination host.
#[derive(Debug)]
struct HostState {
    slots: Arc<Semaphore>,
    inner: Mutex<HostInner>,
}

#[derive(Debug, Default)]
struct HostInner {
    health: HostHealth,
    bucket: Bucket,
    paused_until: Option<Instant>,
}

impl HostState {
    fn lock(&self) -> MutexGuard<'_, HostInner> {
        lock(&self.inner)
    }

    /// How long to wait before the host takes a request, taking its rate
    /// when it can; `Err` when it is sleeping.
    fn wait(&self, cfg: &ThrottleConfig) -> Result<Option<Duration>, Sleeping> {
        let mut inner = self.lock();
        let now = Instant::now();
        inner.health.admit(&cfg.health, now.into_std())?;
        if let Some(until) = inner.paused_until.filter(|&until| until > now) {
            return Ok(Some(until - now));
        }
        Ok(cfg
            .host_rate
            .and_then(|rate| inner.bucket.take(&rate, now.into_std()).err()))
    }
}

#[cfg(test)]
mod tests {
    use futures::FutureExt;

    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// Admits, and says how long that took.
    async fn timed(throttle: &Throttle, host: &str, device: &str) -> Duration {
        let start = Instant::now();
        let permit = throttle.admit(host, device).await;
        assert!(permit.is_ok());
        start.elapsed()
    }

    fn admits_now(throttle: &Throttle, host: &str, device: &str) -> bool {
        matches!(throttle.admit(host, device).now_or_never(), Some(Ok(_)))
    }

    #[tokio::test(start_paused = true)]
    async fn the_concurrency_cap_holds_per_host() {
        let throttle = Throttle::new(ThrottleConfig {
            host_concurrency: 2,
            ..Default::default()
        });
        let first = throttle.admit("a.example", "d").await.unwrap();
        let _second = throttle.admit("a.example", "d").await.unwrap();
        let third = tokio::time::timeout(secs(60), throttle.admit("a.example", "d")).await;
        assert!(third.is_err(), "a third request waits for a slot");
        assert!(
            admits_now(&throttle, "b.example", "d"),
            "another host has its own slots"
        );
        drop(first);
        assert!(admits_now(&throttle, "a.example", "d"));
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_pauses_only_that_host() {
        let throttle = Throttle::new(ThrottleConfig::default());
        throttle.record("a.example", false, Some(secs(30)));
        throttle.record("a.example", false, Some(secs(10)));
        assert!(admits_now(&throttle, "b.example", "d"));
        assert_eq!(timed(&throttle, "a.example", "d").await, secs(30));
        assert!(admits_now(&throttle, "a.example", "d"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_hostile_retry_after_is_capped() {
        let throttle = Throttle::new(ThrottleConfig::default());
        throttle.record("a.example", false, Some(secs(86_400)));
        assert_eq!(timed(&throttle, "a.example", "d").await, MAX_RETRY_AFTER);
    }

    #[tokio::test(start_paused = true)]
    async fn the_host_rate_paces_admits() {
        let host_rate = Some("2/s burst 1".parse().unwrap());
        let throttle = Throttle::new(ThrottleConfig {
            host_rate,
            ..Default::default()
        });
        assert_eq!(timed(&throttle, "a.example", "d").await, Duration::ZERO);
        assert_eq!(
            timed(&throttle, "a.example", "d").await,
            Duration::from_millis(500)
        );
        assert_eq!(
            timed(&throttle, "a.example", "d").await,
            Duration::from_millis(500)
        );
        assert!(admits_now(&throttle, "b.example", "d"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_configuration_holds_for_every_clone_from_the_next_admit() {
        let throttle = Throttle::new(ThrottleConfig::default());
        let clone = throttle.clone();
        assert!(admits_now(&throttle, "a.example", "d"));
        clone.reconfigure(ThrottleConfig {
            host_rate: Some("1/min".parse().unwrap()),
            ..Default::default()
        });
        assert!(admits_now(&throttle, "a.example", "d"), "a fresh bucket");
        assert_eq!(timed(&throttle, "a.example", "d").await, secs(60));
        clone.reconfigure(ThrottleConfig::default());
        assert!(admits_now(&throttle, "a.example", "d"));
    }

    #[tokio::test(start_paused = true)]
    async fn the_device_rate_paces_each_device() {
        let device_rate = Some("1/min".parse().unwrap());
        let throttle = Throttle::new(ThrottleConfig {
            device_rate,
            ..Default::default()
        });
        assert_eq!(timed(&throttle, "a.example", "d1").await, Duration::ZERO);
        assert_eq!(timed(&throttle, "b.example", "d2").await, Duration::ZERO);
        assert_eq!(timed(&throttle, "b.example", "d1").await, secs(60));
    }

    #[tokio::test(start_paused = true)]
    async fn a_sleeping_host_is_skipped_at_once_until_the_cooldown() {
        let device_rate = Some("1/min".parse().unwrap());
        let throttle = Throttle::new(ThrottleConfig {
            device_rate,
            ..Default::default()
        });
        assert!(
            admits_now(&throttle, "a.example", "d"),
            "takes device d's turn"
        );
        for _ in 0..5 {
            throttle.record("a.example", false, None);
        }
        assert_eq!(throttle.sleeping_hosts(), 1);
        let skipped = throttle.admit("a.example", "d").now_or_never();
        assert!(
            matches!(skipped, Some(Err(Sleeping { .. }))),
            "not after d's next turn"
        );
        assert!(admits_now(&throttle, "b.example", "e"));
        tokio::time::advance(secs(5)).await;
        assert_eq!(throttle.sleeping_hosts(), 0);
        assert!(admits_now(&throttle, "a.example", "f"));
    }
}
