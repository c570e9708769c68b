//! The epoch ticker: the clock of the plugins' call deadlines, on its own
//! OS thread, asleep while no call runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use wasmtime::Engine;

/// How often the epoch advances; the granularity of call deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Advances the engine's epoch every [`EPOCH_TICK`] on its own OS thread, so
/// deadlines fire even when every async worker is busy running guests.
/// It sleeps while no call has run for a whole tick: an idle
/// host has no thread waking a hundred times a second, and a busy one does
/// not wake it for every call. Deadlines count ticks from the start of each
/// call, so ticks nobody waits for are not needed.
#[derive(Debug)]
pub(super) struct Ticker {
    shared: Arc<Activity>,
    thread: std::thread::Thread,
}

/// What the ticker's thread and the calls share.
#[derive(Debug, Default)]
struct Activity {
    stop: AtomicBool,
    /// Calls running.
    active: AtomicUsize,
    /// Calls that started, ever: a call that started and ended within
    /// one tick still keeps the ticker awake.
    entered: AtomicUsize,
    /// The thread is asleep (or about to be), waiting for a call.
    asleep: AtomicBool,
}

impl Ticker {
    pub(super) fn start(engine: Engine) -> std::io::Result<Self> {
        let weak = engine.weak();
        drop(engine);
        let shared = Arc::new(Activity::default());
        let activity = shared.clone();
        let handle = std::thread::Builder::new()
            .name("edgehook-epoch".into())
            .spawn(move || {
                let mut seen = 0;
                while !activity.stop.load(Ordering::SeqCst) {
                    std::thread::sleep(EPOCH_TICK);
                    let Some(engine) = weak.upgrade() else { break };
                    engine.increment_epoch();
                    drop(engine);
                    let entered = activity.entered.load(Ordering::SeqCst);
                    if entered == seen {
                        activity.sleep_until_a_call();
                    }
                    seen = entered;
                }
            })?;
        Ok(Self {
            shared,
            thread: handle.thread().clone(),
        })
    }

    /// A call starts: the epoch advances while the guard lives.
    pub(super) fn enter(&self) -> Running<'_> {
        let a = &self.shared;
        a.active.fetch_add(1, Ordering::SeqCst);
        a.entered.fetch_add(1, Ordering::SeqCst);
        if a.asleep.swap(false, Ordering::SeqCst) {
            self.thread.unpark();
        }
        Running { ticker: self }
    }

    /// A call ended.
    fn leave(&self) {
        self.shared.active.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Activity {
    /// On the ticker's thread: parks while no call runs. A call
    /// that starts after `asleep` is set sees it and unparks the thread;
    /// one that started before is seen in `active`.
    fn sleep_until_a_call(&self) {
        self.asleep.store(true, Ordering::SeqCst);
        while self.active.load(Ordering::SeqCst) == 0
            && self.asleep.load(Ordering::SeqCst)
            && !self.stop.load(Ordering::SeqCst)
        {
            std::thread::park();
        }
        self.asleep.store(false, Ordering::SeqCst);
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.thread.unpark();
    }
}

/// A call in progress: the epoch advances while one is.
#[derive(Debug)]
pub struct Running<'a> {
    ticker: &'a Ticker,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.ticker.leave();
    }
}
