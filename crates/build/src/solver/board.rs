//! Where stages publish their results and wait for the stages they need.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::stage::StageState;
use crate::executor::CancelToken;

#[derive(Default)]
pub(crate) struct Board {
    /// Stage index → its final state, or None when it failed.
    done: Mutex<HashMap<usize, Option<Arc<StageState>>>>,
    changed: Condvar,
}

impl Board {
    pub fn publish(&self, stage: usize, result: Option<Arc<StageState>>) {
        self.done.lock().unwrap_or_else(|e| e.into_inner()).insert(stage, result);
        self.changed.notify_all();
    }

    /// The result of `stage` if it is done and succeeded.
    pub fn get(&self, stage: usize) -> Option<Arc<StageState>> {
        self.done.lock().unwrap_or_else(|e| e.into_inner()).get(&stage).cloned().flatten()
    }

    /// Waits for `stage`; None when it failed or the build was cancelled.
    pub fn wait(&self, stage: usize, cancel: &CancelToken) -> Option<Arc<StageState>> {
        let mut done = self.done.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(result) = done.get(&stage) {
                return result.clone();
            }
            if cancel.is_cancelled() {
                return None;
            }
            done = self.changed.wait_timeout(done, Duration::from_millis(100)).unwrap_or_else(|e| e.into_inner()).0;
        }
    }
}
