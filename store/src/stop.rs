//! Giving up a long read from another thread: the daemon stops a query whose client went away,
//! so a scan of the whole archive does not run on for no one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::{Archive, Result, StoreError};

/// Shared between a read and whoever may call it off. Reads that take one check it between
/// records and end with [`StoreError::Cancelled`] once it is set.
#[derive(Debug, Clone, Default)]
pub struct Stop(Arc<AtomicBool>);

impl Stop {
    pub fn new() -> Stop {
        Stop::default()
    }

    /// Asks every read holding this to end at its next record.
    pub fn stop(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// `Err(Cancelled)` once stopped.
    pub(crate) fn check(&self, archive: &Archive) -> Result<()> {
        if self.is_stopped() {
            return Err(StoreError::Cancelled(archive.path().to_path_buf()));
        }
        Ok(())
    }
}
