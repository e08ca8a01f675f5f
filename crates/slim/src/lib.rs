//! distill's distroless engine (issue 5): what an application needs at run
//! time, read from a root file system without executing it.
//!
//! - [`elf`]: the ELF closure of executables and libraries, resolved the way
//!   glibc's dynamic loader resolves it, plus the libraries and data files
//!   programs load by knowledge rather than by DT_NEEDED.
//! - [`python`]: the Python closure of an application: interpreter, the
//!   stdlib and site-packages modules reachable from its imports.
//! - [`debian`]: base images from Debian's signed archive, without a registry.

pub mod debian;
pub mod elf;
pub mod python;
