//! The store service. The store's writer (one SQLite connection, one writer
//! lock) is not shareable between threads, while stages build concurrently:
//! so one thread owns the writer and runs, one at a time, the store
//! operations the stage threads send it. Store calls are short (cache
//! lookups, committing a finished layer, adopting a snapshot); the long work
//! (containers, copying, compressing) stays on the stage threads.

use std::sync::mpsc;

use distill_image::store::Writer;

use super::error::BuildError;

type Job<'a> = Box<dyn FnOnce(&Writer<'_>) + Send + 'a>;

/// A stage thread's handle on the store service.
#[derive(Clone)]
pub(crate) struct StoreHandle<'a> {
    jobs: mpsc::Sender<Job<'a>>,
}

/// Where the owner of the writer receives jobs.
pub(crate) struct StoreService<'a> {
    jobs: mpsc::Receiver<Job<'a>>,
}

pub(crate) fn channel<'a>() -> (StoreHandle<'a>, StoreService<'a>) {
    let (tx, rx) = mpsc::channel();
    (StoreHandle { jobs: tx }, StoreService { jobs: rx })
}

impl<'a> StoreHandle<'a> {
    /// Runs `f` with the writer on the service thread and returns its result.
    pub fn call<R: Send + 'a>(&self, f: impl FnOnce(&Writer<'_>) -> R + Send + 'a) -> Result<R, BuildError> {
        let (reply, result) = mpsc::sync_channel(1);
        let job: Job<'a> = Box::new(move |writer| {
            let _ = reply.send(f(writer));
        });
        self.jobs.send(job).map_err(|_| BuildError::Internal("the store service has stopped".into()))?;
        result.recv().map_err(|_| BuildError::Internal("a store operation panicked".into()))
    }

    /// [`Self::call`] for operations that return a store result.
    pub fn with<R: Send + 'a>(
        &self,
        f: impl FnOnce(&Writer<'_>) -> distill_image::Result<R> + Send + 'a,
    ) -> Result<R, BuildError> {
        Ok(self.call(f)??)
    }
}

impl StoreService<'_> {
    /// Serves jobs until every handle is dropped.
    pub fn serve(self, writer: &Writer<'_>) {
        for job in self.jobs {
            job(writer);
        }
    }
}
