//! Isolates made ahead of need. Making an isolate from the snapshot is most of what loading a
//! handler costs; a runtime that loads handlers now and then (a server starting, reloading, or
//! adding an isolate to a busy handler) keeps some made and bootstrapped, each on a thread of
//! its own, waiting for a handler. Each load takes the oldest and starts the next, so the next
//! load finds one ready, or one being made that is further along than a new one would be.
//!
//! Loads that come back to back (a server starting with many handlers) wait for the making, so
//! its rate bounds them: with two cores, two threads making isolates side by side double it.
//! So a runtime keeps one made ahead per core, at most [`MAX_AHEAD`]; an idle one costs about
//! 2.5 MiB (the runtime bench's "resident memory per idle isolate").
//!
//! The waiting threads hold only copies of the settings and the handlers folder, never the
//! runtime's shared state, so dropping the runtime drops the senders and ends the threads.

use std::collections::VecDeque;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::sync::oneshot;

use super::blank::Blank;
use super::isolate::{self, Work};
use crate::config::RuntimeConfig;

/// The most isolates a runtime keeps made ahead.
pub const MAX_AHEAD: usize = 2;

/// How many isolates to keep made ahead on this machine: one per core, at most [`MAX_AHEAD`].
pub fn ahead_for_this_machine() -> usize {
    std::thread::available_parallelism()
        .map_or(1, NonZeroUsize::get)
        .min(MAX_AHEAD)
}

/// The isolates made ahead, and whether to make more, for the handlers under `root` held to
/// `settings` (the runtime's, shared by every handler it loads).
pub struct Spares {
    settings: RuntimeConfig,
    root: PathBuf,
    /// How many to keep made (or being made).
    ahead: usize,
    enabled: AtomicBool,
    /// The threads with an isolate made (or being made), oldest first, waiting for a handler.
    waiting: Mutex<VecDeque<oneshot::Sender<Work>>>,
    taken: AtomicU64,
}

impl Spares {
    pub fn new(settings: RuntimeConfig, root: PathBuf, ahead: usize) -> Self {
        Self {
            settings,
            root,
            ahead,
            enabled: AtomicBool::new(true),
            waiting: Mutex::new(VecDeque::new()),
            taken: AtomicU64::new(0),
        }
    }

    /// Makes no more isolates ahead, and ends the ones waiting.
    pub fn disable(&self) {
        self.enabled.store(false, Ordering::SeqCst);
        self.lock().clear();
    }

    /// How many loads were handed to an isolate made ahead.
    pub fn taken(&self) -> u64 {
        self.taken.load(Ordering::SeqCst)
    }

    /// How many isolates are made, or being made, and waiting for a handler.
    pub fn waiting(&self) -> usize {
        self.lock().len()
    }

    /// Hands `work` to the oldest isolate waiting for a handler; gives it back when there is
    /// none.
    pub fn hand_over(&self, work: Work) -> Result<(), Work> {
        let Some(waiting) = self.lock().pop_front() else {
            return Err(work);
        };
        waiting.send(work)?;
        self.taken.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// Starts making isolates ahead until as many as wanted are waiting, unless none is
    /// wanted. A thread that cannot start only means a later load makes its own.
    pub fn refill(&self) {
        if !self.enabled.load(Ordering::SeqCst) {
            return;
        }
        let mut waiting = self.lock();
        while waiting.len() < self.ahead {
            let (work, assigned) = oneshot::channel();
            let (settings, folder) = (self.settings.clone(), self.root.clone());
            // Named without a handler, which it learns only later (a thread keeps its name).
            let started = std::thread::Builder::new()
                .name("eddy-isolate".into())
                .spawn(move || wait_for_work(&settings, &folder, assigned));
            if started.is_err() {
                return;
            }
            waiting.push_back(work);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<oneshot::Sender<Work>>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The waiting thread: makes the isolate, then lives as the isolate thread of the handler it
/// is given, or ends when none is.
fn wait_for_work(settings: &RuntimeConfig, root: &Path, assigned: oneshot::Receiver<Work>) {
    let made = isolate::current_thread_runtime().map(|rt| {
        let blank = Blank::make(&rt, settings, root);
        (rt, blank)
    });
    let Ok(work) = assigned.blocking_recv() else {
        return;
    };
    match made {
        Ok(made) => isolate::thread_main(Some(made), work),
        // The thread makes its runtime again and reports the failure the usual way.
        Err(_) => isolate::thread_main(None, work),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spares(ahead: usize) -> (Spares, tempfile::TempDir) {
        let root = tempfile::tempdir().unwrap();
        (
            Spares::new(RuntimeConfig::default(), root.path().to_owned(), ahead),
            root,
        )
    }

    #[test]
    fn refilling_keeps_as_many_waiting_as_wanted() {
        for ahead in [1, 2] {
            let (spares, _root) = spares(ahead);
            assert_eq!(spares.waiting(), 0, "nothing is made before the first refill");
            spares.refill();
            assert_eq!(spares.waiting(), ahead);
            spares.refill();
            assert_eq!(spares.waiting(), ahead, "a refill with enough waiting starts none");
        }
    }

    #[test]
    fn disabled_spares_end_the_waiting_ones_and_make_no_more() {
        let (spares, _root) = spares(2);
        spares.refill();
        spares.disable();
        assert_eq!(spares.waiting(), 0);
        spares.refill();
        assert_eq!(spares.waiting(), 0);
    }
}
