//! Writes a directory tree as a layer blob and reports the descriptor and
//! throughput.
//!
//! ```text
//! cargo run --release -p distill-image --example write_layer -- SRC_DIR \
//!     [--compression gzip|zstd|none] [--level N] [--threads N] [--overlay] \
//!     [--source-date-epoch SECS] [-o OUT [--extract DIR]]
//! ```
//! Without `-o` the blob is discarded (written to a sink). With
//! `--extract`, the written blob is then applied into DIR (which must be
//! empty or absent) and the extraction is timed too.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use distill_image::layer::{ApplyOptions, Compression, WriteOptions, apply_layer, write_layer_from_dir};

fn usage() -> ExitCode {
    eprintln!(
        "usage: write_layer SRC_DIR [--compression gzip|zstd|none] [--level N] [--threads N] [--overlay] \
         [--source-date-epoch SECS] [-o OUT [--extract DIR]]"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut src: Option<PathBuf> = None;
    let mut codec = "gzip".to_string();
    let mut level: Option<i32> = None;
    let mut out: Option<PathBuf> = None;
    let mut extract: Option<PathBuf> = None;
    let mut opts = WriteOptions::default();
    while let Some(a) = args.next() {
        let mut value = |name: &str| {
            args.next().ok_or_else(|| {
                eprintln!("{name} needs a value");
            })
        };
        match a.as_str() {
            "--compression" | "-c" => match value(&a) {
                Ok(v) => codec = v,
                Err(()) => return usage(),
            },
            "--level" | "-l" => match value(&a).map(|v| v.parse::<i32>()) {
                Ok(Ok(v)) => level = Some(v),
                _ => return usage(),
            },
            "--threads" | "-j" => match value(&a).map(|v| v.parse::<usize>()) {
                Ok(Ok(v)) => opts.threads = v,
                _ => return usage(),
            },
            "--source-date-epoch" => match value(&a).map(|v| v.parse::<i64>()) {
                Ok(Ok(v)) => opts.source_date_epoch = Some(v),
                _ => return usage(),
            },
            "--overlay" => opts.overlay_upper = true,
            "--extract" => match value(&a) {
                Ok(v) => extract = Some(PathBuf::from(v)),
                Err(()) => return usage(),
            },
            "-o" | "--output" => match value(&a) {
                Ok(v) => out = Some(PathBuf::from(v)),
                Err(()) => return usage(),
            },
            "-h" | "--help" => {
                usage();
                return ExitCode::SUCCESS;
            }
            s if s.starts_with('-') => return usage(),
            s => src = Some(PathBuf::from(s)),
        }
    }
    let Some(src) = src else { return usage() };
    if extract.is_some() && out.is_none() {
        return usage();
    }
    opts.compression = match Compression::from_name(&codec, level) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("write_layer: {e}");
            return ExitCode::from(2);
        }
    };
    let start = Instant::now();
    let result = match &out {
        Some(p) => File::create(p).map_err(|e| e.to_string()).and_then(|f| {
            let mut w = BufWriter::with_capacity(1 << 20, f);
            let d = write_layer_from_dir(&src, &opts, &mut w).map_err(|e| e.to_string())?;
            w.flush().map_err(|e| e.to_string())?;
            Ok(d)
        }),
        None => write_layer_from_dir(&src, &opts, io::sink()).map_err(|e| e.to_string()),
    };
    let secs = start.elapsed().as_secs_f64();
    match result {
        Ok(d) => {
            let mb = d.uncompressed_size as f64 / 1e6;
            println!("{}", serde_json::to_string_pretty(&d).unwrap_or_default());
            println!(
                "{:.1} MB tar -> {:.1} MB {} ({:.3}) in {:.3} s: {:.1} MB/s",
                mb,
                d.size as f64 / 1e6,
                opts.compression.codec(),
                d.size as f64 / d.uncompressed_size.max(1) as f64,
                secs,
                mb / secs
            );
            if let (Some(dir), Some(blob)) = (&extract, &out) {
                if let Err(e) = std::fs::create_dir_all(dir) {
                    eprintln!("write_layer: {}: {e}", dir.display());
                    return ExitCode::FAILURE;
                }
                let start = Instant::now();
                let r = File::open(blob)
                    .map_err(|e| e.to_string())
                    .and_then(|f| apply_layer(f, dir, &ApplyOptions::default()).map_err(|e| e.to_string()));
                let secs = start.elapsed().as_secs_f64();
                match r {
                    Ok(stats) => println!(
                        "extracted {} entries ({:.1} MB of file data) in {:.3} s: {:.1} MB/s of tar",
                        stats.entries,
                        stats.bytes as f64 / 1e6,
                        secs,
                        mb / secs
                    ),
                    Err(e) => {
                        eprintln!("write_layer: extracting: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("write_layer: {e}");
            ExitCode::FAILURE
        }
    }
}
