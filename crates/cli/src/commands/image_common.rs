//! Shared by the image commands: opening the store, and Docker's ways of
//! printing sizes, ages and tables.

use std::io::IsTerminal;
use std::path::PathBuf;

use distill_image::digest::Digest;
use distill_image::store::{Image, Store, default_root};
use distill_image::timestamp::Timestamp;

/// The store location option every image command takes.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// Store root [default: $DISTILL_ROOT, /var/lib/distill as root, else $XDG_DATA_HOME/distill].
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
}

impl StoreArgs {
    pub fn open(&self) -> anyhow::Result<Store> {
        let root = self.root.clone().unwrap_or_else(default_root);
        Store::open(&root)
            .map_err(|e| anyhow::Error::new(e).context(format!("opening the store at {}", root.display())))
    }
}

/// The 12-hex-digit short form of an ID.
pub fn short_id(d: &Digest) -> String {
    d.hex()[..12].to_string()
}

/// Docker's `units.HumanSizeWithPrecision(size, 3)`: decimal units.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut size = bytes as f64;
    let mut i = 0;
    while size >= 1000.0 && i < UNITS.len() - 1 {
        size /= 1000.0;
        i += 1;
    }
    format!("{}{}", fmt_significant(size, 3), UNITS[i])
}

/// `%.3g` without an exponent, as Go prints sizes below 1000.
fn fmt_significant(v: f64, digits: i32) -> String {
    if v == 0.0 {
        return "0".to_string();
    }
    let magnitude = v.abs().log10().floor() as i32;
    let decimals = (digits - 1 - magnitude).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
}

/// Docker's `units.HumanDuration` + " ago".
pub fn human_age(created: Option<Timestamp>) -> String {
    let Some(created) = created else { return "N/A".to_string() };
    let secs = (Timestamp::now().secs - created.secs).max(0);
    let (mins, hours) = (secs / 60, secs / 3600);
    let text = if secs < 1 {
        "Less than a second".to_string()
    } else if secs == 1 {
        "1 second".to_string()
    } else if secs < 60 {
        format!("{secs} seconds")
    } else if mins == 1 {
        "About a minute".to_string()
    } else if mins < 60 {
        format!("{mins} minutes")
    } else if hours == 1 {
        "About an hour".to_string()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", hours / 24 / 365)
    };
    format!("{text} ago")
}

/// The image's creation time from its config.
pub fn created(image: &Image) -> Option<Timestamp> {
    image.config.created.as_deref().and_then(Timestamp::parse_rfc3339)
}

/// Uncompressed size of an image's layers (as `docker images` shows),
/// falling back to the blob size for layers the store has no facts about.
pub fn image_size(store: &Store, image: &Image) -> u64 {
    image.manifest.layers.iter().map(|l| store.uncompressed_size(l)).sum()
}

/// Columns padded like Docker's tabwriter (3 spaces between columns).
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}   ", w = widths[i]));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// Where an output option points: a file, or stdout when it is not a terminal.
pub enum Output {
    File(PathBuf),
    Stdout,
}

impl Output {
    pub fn choose(path: Option<PathBuf>, what: &str) -> anyhow::Result<Output> {
        match path {
            Some(p) if p.as_os_str() != "-" => Ok(Output::File(p)),
            _ if std::io::stdout().is_terminal() => {
                anyhow::bail!("cowardly refusing to write the {what} to a terminal; use -o FILE or redirect stdout")
            }
            _ => Ok(Output::Stdout),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1000), "1kB");
        assert_eq!(human_size(7_800_000), "7.8MB");
        assert_eq!(human_size(123_456_789), "123MB");
        assert_eq!(human_size(1_234_567_890), "1.23GB");
    }
}
