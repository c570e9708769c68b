//! The thread the queue's commits are written on, for the life of the
//! queue: a commit wakes it once and it wakes the commit's task once.
//! Through tokio's blocking pool instead, each commit woke one of its idle
//! threads through a lock they all wait on (about two more context
//! switches per event at light load, where a commit carries one event).

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::Path;
use std::sync::{Arc, mpsc};

use tokio::sync::oneshot;

use super::error::{JournalError, io_error};
use super::handle::Unwritten;
use super::journal::{Change, Journal};

/// What a commit came to: written, not written, or a panic to pass on.
type Outcome = Result<Result<(), Box<Unwritten>>, Box<dyn Any + Send>>;

/// One commit for the thread, and where to say how it went.
type Job = (Vec<Change>, oneshot::Sender<Outcome>);

/// The writing thread's inbox; the thread ends when the queue drops it.
#[derive(Debug)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the thread that writes to `journal` (in `dir`, for the
    /// error when no thread can be started).
    pub fn start(journal: Arc<Journal>, dir: &Path) -> Result<Self, JournalError> {
        let (jobs, inbox) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("edgehook-queue".into())
            .spawn(move || {
                for (changes, done) in inbox {
                    let outcome =
                        catch_unwind(AssertUnwindSafe(|| journal.apply(&changes))).map(|written| {
                            written.map_err(|error| Box::new(Unwritten { error, changes }))
                        });
                    // The commit's task may have gone (the host stops).
                    let _ = done.send(outcome);
                }
            })
            .map_err(io_error(dir))?;
        Ok(Self { jobs })
    }

    /// Writes `changes` as one commit; returns once they are on disk, or
    /// with them when they could not be written.
    pub async fn write(&self, changes: Vec<Change>) -> Result<(), Box<Unwritten>> {
        let (done, outcome) = oneshot::channel();
        self.jobs
            .send((changes, done))
            .expect("the queue's thread runs as long as the queue");
        match outcome
            .await
            .expect("the queue's thread answers every commit")
        {
            Ok(written) => written,
            Err(panic) => resume_unwind(panic),
        }
    }
}
