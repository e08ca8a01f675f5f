//! distill's distroless engine (issue 5): what an application needs at run
//! time, read from a root file system without executing it.
//!
//! - [`elf`]: the ELF closure of executables and libraries, resolved the way
//!   glibc's dynamic loader resolves it, plus the libraries and data files
//!   programs load by knowledge rather than by DT_NEEDED.
//! - [`python`]: the Python closure of an application: interpreter, the
//!   stdlib and site-packages modules reachable from its imports.
//! - [`plan`]: what a slim image keeps (the union of the above for a
//!   command, `--keep` and traced paths), each file with its reasons.
//! - [`assemble`]: the slim root file system built from the plan.
//! - [`verify`]: fat vs slim probe results, and what the slim image lacks.
//! - [`trace`]: files a probe opens, seen with fanotify.
//! - [`report`], [`sbom`]: sizes by category; the SPDX document.
//! - [`debian`]: base images from Debian's signed archive, without a registry.

pub mod assemble;
pub mod debian;
pub mod elf;
pub mod plan;
pub mod python;
pub mod report;
pub mod sbom;
pub mod trace;
pub mod verify;
