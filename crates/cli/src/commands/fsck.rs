//! `distill fsck`: verify every blob's digest and every reference in the
//! store. Exit status 1 when something is corrupt or dangling; stale and
//! reclaimable findings are reported but are not failures.

use std::process::ExitCode;

use distill_image::store::{FsckOptions, Severity};
use serde_json::json;

use super::image_common::{StoreArgs, human_size};

#[derive(Debug, clap::Args)]
pub struct FsckArgs {
    /// Re-derive index.json from the metadata database if it is out of date.
    #[arg(long)]
    pub repair: bool,
    /// Also decompress every layer and check its diff_id (slow).
    #[arg(long)]
    pub verify_layers: bool,
    /// Output format: text or json.
    #[arg(long, default_value = "text")]
    pub format: String,
    #[command(flatten)]
    pub store: StoreArgs,
}

pub fn run(args: FsckArgs) -> anyhow::Result<ExitCode> {
    let store = args.store.open()?;
    let report = store.fsck(FsckOptions { repair: args.repair, verify_diff_ids: args.verify_layers })?;
    match args.format.as_str() {
        "text" => {
            for issue in &report.issues {
                println!("{}: {}: {}", issue.severity, issue.subject, issue.message);
            }
            for r in &report.repaired {
                println!("repaired: {r}");
            }
            println!(
                "checked {} blobs ({}), {} images, {} snapshots: {} corrupt, {} dangling, {} stale, {} reclaimable ({}{})",
                report.blobs_checked,
                human_size(report.bytes_checked),
                report.images_checked,
                report.snapshots_checked,
                report.count(Severity::Corrupt),
                report.count(Severity::Dangling),
                report.count(Severity::Stale),
                report.count(Severity::Reclaimable),
                human_size(report.reclaimable_bytes),
                if report.count(Severity::Reclaimable) > 0 { ", run distill prune" } else { "" },
            );
        }
        "json" => {
            let issues: Vec<_> = report
                .issues
                .iter()
                .map(|i| json!({"severity": i.severity.to_string(), "subject": i.subject, "message": i.message}))
                .collect();
            let v = json!({
                "healthy": report.is_healthy(),
                "clean": report.is_clean(),
                "issues": issues,
                "repaired": report.repaired,
                "blobs_checked": report.blobs_checked,
                "bytes_checked": report.bytes_checked,
                "images_checked": report.images_checked,
                "snapshots_checked": report.snapshots_checked,
                "reclaimable_bytes": report.reclaimable_bytes,
                "writer_active": report.writer_active,
            });
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        other => anyhow::bail!("unknown --format {other:?} (text or json)"),
    }
    Ok(if report.is_healthy() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
