//! `--trace`: which files a probe opens or executes, seen with fanotify on
//! the file system of the fat container's rootfs (a filesystem mark, so the
//! container's own mount namespace does not hide the events). Needs
//! CAP_SYS_ADMIN. Only files that exist in the fat image are reported —
//! exactly what the slim image may lack.

use std::collections::BTreeSet;
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// A running trace; [`Tracer::finish`] returns what was opened.
pub struct Tracer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<BTreeSet<String>>>,
}

#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("fanotify is not available ({0}); --trace needs root (CAP_SYS_ADMIN) on Linux ≥ 5.1")]
    Unavailable(io::Error),
    #[error("cannot watch {path}: {source}")]
    Mark { path: PathBuf, source: io::Error },
}

/// `struct fanotify_event_metadata` (linux/fanotify.h).
#[repr(C)]
#[derive(Clone, Copy)]
struct EventMetadata {
    event_len: u32,
    vers: u8,
    reserved: u8,
    metadata_len: u16,
    mask: u64,
    fd: i32,
    pid: i32,
}

impl Tracer {
    /// Starts watching the file system mounted at `rootfs` (the fat
    /// container's root, as this process sees it).
    pub fn start(rootfs: &Path) -> Result<Tracer, TraceError> {
        // SAFETY: plain syscalls; the fd is owned by the reader thread below.
        let fd = unsafe {
            libc::fanotify_init(
                libc::FAN_CLASS_NOTIF | libc::FAN_CLOEXEC | libc::FAN_NONBLOCK,
                (libc::O_RDONLY | libc::O_LARGEFILE | libc::O_CLOEXEC) as libc::c_uint,
            )
        };
        if fd < 0 {
            return Err(TraceError::Unavailable(io::Error::last_os_error()));
        }
        let path = CString::new(rootfs.as_os_str().as_bytes())
            .map_err(|e| TraceError::Mark { path: rootfs.to_path_buf(), source: io::Error::other(e) })?;
        // SAFETY: fd is ours, path is a valid C string.
        let rc = unsafe {
            libc::fanotify_mark(
                fd,
                libc::FAN_MARK_ADD | libc::FAN_MARK_FILESYSTEM,
                libc::FAN_OPEN | libc::FAN_OPEN_EXEC,
                libc::AT_FDCWD,
                path.as_ptr(),
            )
        };
        if rc < 0 {
            let source = io::Error::last_os_error();
            // SAFETY: closing our own fd.
            unsafe { libc::close(fd) };
            return Err(TraceError::Mark { path: rootfs.to_path_buf(), source });
        }
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let prefix = rootfs.to_path_buf();
        let thread = std::thread::spawn(move || read_events(fd, &stop2, &prefix));
        Ok(Tracer { stop, thread: Some(thread) })
    }

    /// Stops the trace; the container paths opened since [`Tracer::start`].
    pub fn finish(mut self) -> BTreeSet<String> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().and_then(|t| t.join().ok()).unwrap_or_default()
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn read_events(fd: i32, stop: &AtomicBool, rootfs: &Path) -> BTreeSet<String> {
    let me = std::process::id() as i32;
    let mut seen = BTreeSet::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut draining = false;
    loop {
        let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut pfd, 1, 50) };
        // SAFETY: reading into our own buffer of that length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            if draining {
                break;
            }
            if stop.load(Ordering::SeqCst) {
                // One more pass for events queued before the stop.
                draining = true;
                std::thread::sleep(Duration::from_millis(20));
            }
            continue;
        }
        let n = n as usize;
        let mut off = 0;
        let size = std::mem::size_of::<EventMetadata>();
        while off + size <= n {
            // SAFETY: the kernel wrote a whole event here; read unaligned.
            let ev: EventMetadata = unsafe { std::ptr::read_unaligned(buf[off..].as_ptr().cast()) };
            if ev.event_len < size as u32 {
                break;
            }
            if ev.fd >= 0 {
                if ev.pid != me
                    && let Ok(target) = std::fs::read_link(format!("/proc/self/fd/{}", ev.fd))
                    && let Some(p) = container_path(&target, rootfs)
                {
                    seen.insert(p);
                }
                // SAFETY: the event's fd is ours to close.
                unsafe { libc::close(ev.fd) };
            }
            off += ev.event_len as usize;
        }
    }
    // SAFETY: closing our own fanotify fd.
    unsafe { libc::close(fd) };
    seen
}

/// The path as the container sees it: the kernel shows an fd opened in
/// another mount namespace relative to that namespace's root, and one
/// opened through our own mount under `rootfs`.
fn container_path(target: &Path, rootfs: &Path) -> Option<String> {
    let t = target.to_string_lossy();
    if t.ends_with(" (deleted)") || !t.starts_with('/') {
        return None;
    }
    match target.strip_prefix(rootfs) {
        Ok(rel) => Some(format!("/{}", rel.to_string_lossy())),
        Err(_) => Some(t.into_owned()),
    }
}
