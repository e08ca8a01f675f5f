//! distill's build engine. Modules arrive with issue 4: `context` (reading the
//! build context with `.dockerignore` semantics, content hashing) and
//! `executor` (running RUN steps with an OCI runtime over overlayfs).

pub mod context;
pub mod copy;
pub mod executor;
pub mod progress;
pub mod solver;

// TEMP-PHASES
#[doc(hidden)]
pub fn phase(name: &str) {
    use std::sync::OnceLock;
    use std::time::Instant;
    static START: OnceLock<Instant> = OnceLock::new();
    static ON: OnceLock<bool> = OnceLock::new();
    if *ON.get_or_init(|| std::env::var_os("DISTILL_PHASES").is_some()) {
        let t = START.get_or_init(Instant::now).elapsed();
        eprintln!("[phase {:>8.3}] {name}", t.as_secs_f64());
    }
}
