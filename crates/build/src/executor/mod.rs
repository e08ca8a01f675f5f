//! Executing RUN steps: a writable rootfs over the parent's layers
//! (overlayfs, or the naive copy-and-diff fallback), an OCI runtime config,
//! and runc.
//!
//! A step, end to end:
//! ```no_run
//! use distill_build::executor::*;
//! # fn main() -> Result<(), ExecError> {
//! # let layers: Vec<std::path::PathBuf> = vec![];
//! let cancel = CancelToken::new();
//! cancel.cancel_on_signals().expect("signal handlers"); // once, in the CLI
//! let runtime = Runtime::resolve(None)?; // runc from PATH, or --runtime
//! let snap = ActiveSnapshot::prepare(SnapshotterKind::from_env()?, &layers, "/var/lib/distill/tmp/step1".as_ref())?;
//! let mut spec = RunSpec::shell("apt-get update");
//! spec.user = resolve_user(snap.rootfs(), "nobody")?;
//! let outcome = run(&runtime, "/var/lib/distill/tmp/step1-bundle".as_ref(), &spec, snap.rootfs(), &cancel, |bytes| {
//!     print!("{}", String::from_utf8_lossy(bytes))
//! })?;
//! assert!(outcome.success());
//! let upper = snap.commit()?; // the diff, overlayfs upper-dir form → layer writer
//! # let _ = upper; Ok(()) }
//! ```
//!
//! Privileged calls (mount, the runtime) need root; everything else (user
//! resolution, config generation) is plain file work.

mod emulation;
mod error;
pub(crate) mod fsutil;
mod naive;
mod overlay;
mod runtime;
mod snapshot;
mod spec;
mod stubs;
mod user;

pub use emulation::{BINFMT_DIR, check_emulation, host_arch, qemu_arch, runs_natively};
pub use error::ExecError;
pub use fsutil::OVERLAY_OPAQUE_XATTR;
pub use overlay::{OverlayApi, OverlayMount};
pub use runtime::{CancelToken, DEFAULT_STATE_ROOT, RunOutcome, Runtime, Stream, run, run_split};
pub use snapshot::{ActiveSnapshot, SnapshotterKind};
pub use spec::{
    DEFAULT_CAPABILITIES, DEFAULT_PATH, ExtraMount, HOST_FILES, Network, RunSpec, nofile_limit, oci_config,
};
pub use user::{UserSpec, resolve_user};
