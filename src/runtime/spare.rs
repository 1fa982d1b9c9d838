//! One isolate made ahead of need. Making an isolate from the snapshot is most of what loading
//! a handler costs; a runtime that loads handlers now and then (a server starting, reloading,
//! or adding an isolate to a busy handler) keeps one made and bootstrapped on a thread of its
//! own, waiting for a handler. Each load takes it and starts the next, so the next load finds
//! one ready, or one being made that is further along than a new one would be.
//!
//! The waiting thread holds only copies of the settings and the handlers folder, never the
//! runtime's shared state, so dropping the runtime drops the sender and ends the thread.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::sync::oneshot;

use super::blank::Blank;
use super::isolate::{self, Work};
use crate::config::RuntimeConfig;

/// The isolate made ahead, if any, and whether to make one, for the handlers under `root`
/// held to `settings` (the runtime's, shared by every handler it loads).
pub struct Spares {
    settings: RuntimeConfig,
    root: PathBuf,
    enabled: AtomicBool,
    /// The thread with an isolate made (or being made), waiting for its handler.
    waiting: Mutex<Option<oneshot::Sender<Work>>>,
    taken: AtomicU64,
}

impl Spares {
    pub fn new(settings: RuntimeConfig, root: PathBuf) -> Self {
        Self {
            settings,
            root,
            enabled: AtomicBool::new(true),
            waiting: Mutex::new(None),
            taken: AtomicU64::new(0),
        }
    }

    /// Makes no more isolates ahead, and ends the one waiting.
    pub fn disable(&self) {
        self.enabled.store(false, Ordering::SeqCst);
        self.lock().take();
    }

    /// How many loads were handed to an isolate made ahead.
    pub fn taken(&self) -> u64 {
        self.taken.load(Ordering::SeqCst)
    }

    /// Hands `work` to the isolate waiting for a handler; gives it back when there is none.
    pub fn hand_over(&self, work: Work) -> Result<(), Work> {
        let Some(waiting) = self.lock().take() else {
            return Err(work);
        };
        waiting.send(work)?;
        self.taken.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// Starts making the next isolate ahead, unless one is waiting or none is wanted. A thread
    /// that cannot start only means the next load makes its own.
    pub fn refill(&self) {
        if !self.enabled.load(Ordering::SeqCst) {
            return;
        }
        let mut waiting = self.lock();
        if waiting.is_some() {
            return;
        }
        let (work, assigned) = oneshot::channel();
        let (settings, folder) = (self.settings.clone(), self.root.clone());
        // Named without a handler, which it learns only later (a thread keeps its name).
        let started = std::thread::Builder::new()
            .name("eddy-isolate".into())
            .spawn(move || wait_for_work(&settings, &folder, assigned));
        if started.is_ok() {
            *waiting = Some(work);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<oneshot::Sender<Work>>> {
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
