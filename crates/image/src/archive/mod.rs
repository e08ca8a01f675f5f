//! Image archives: docker-archive and OCI layout tars, in and out.

mod load;
mod save;
mod tar_out;

pub use load::{LoadedImage, load_archive};
pub use save::{ArchiveFormat, SaveItem, save_archive, save_oci_index, save_to_path, write_file_atomically};
