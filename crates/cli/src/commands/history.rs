//! `distill history`: the history entries of an image (`docker history`).

use std::process::ExitCode;

use distill_image::timestamp::Timestamp;
use serde_json::json;

use super::image_common::{StoreArgs, human_age, human_size, print_table, short_id};

#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    /// The image (name, ID or digest).
    pub image: String,
    /// Do not truncate the CREATED BY column.
    #[arg(long)]
    pub no_trunc: bool,
    /// Only print the image ID of each entry.
    #[arg(short, long)]
    pub quiet: bool,
    /// Print sizes and dates in human-readable form.
    #[arg(short = 'H', long, default_value_t = true, action = clap::ArgAction::Set)]
    pub human: bool,
    /// Output format: table or json (one object per line).
    #[arg(long, default_value = "table")]
    pub format: String,
    #[command(flatten)]
    pub store: StoreArgs,
}

pub fn run(args: HistoryArgs) -> anyhow::Result<ExitCode> {
    let store = args.store.open()?;
    let image = store.find_image(&args.image)?;
    // Each non-empty entry consumes the next layer, bottom up.
    let mut layers = image.manifest.layers.iter();
    let mut rows = Vec::new();
    for h in &image.config.history {
        let size = if h.empty_layer { 0 } else { layers.next().map(|l| store.uncompressed_size(l)).unwrap_or(0) };
        rows.push((h, size));
    }
    rows.reverse();
    let top = image.record.id();
    if args.quiet {
        for (i, _) in rows.iter().enumerate() {
            println!("{}", if i == 0 { short_id(&top) } else { "<missing>".to_string() });
        }
        return Ok(ExitCode::SUCCESS);
    }
    let id_for = |i: usize| {
        if i > 0 {
            "<missing>".to_string()
        } else if args.no_trunc {
            top.to_string()
        } else {
            short_id(&top)
        }
    };
    match args.format.as_str() {
        "table" => {
            let table: Vec<Vec<String>> = rows
                .iter()
                .enumerate()
                .map(|(i, (h, size))| {
                    let when = h.created.as_deref().and_then(Timestamp::parse_rfc3339);
                    let created = if args.human { human_age(when) } else { h.created.clone().unwrap_or_default() };
                    let by = h.created_by.clone().unwrap_or_default().replace('\t', " ");
                    let by = if args.no_trunc || by.chars().count() <= 45 {
                        by
                    } else {
                        format!("{}…", by.chars().take(44).collect::<String>())
                    };
                    let size = if args.human { human_size(*size) } else { size.to_string() };
                    vec![id_for(i), created, by, size, h.comment.clone().unwrap_or_default()]
                })
                .collect();
            print_table(&["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"], &table);
        }
        "json" => {
            for (i, (h, size)) in rows.iter().enumerate() {
                let v = json!({
                    "ID": id_for(i),
                    "CreatedAt": h.created.clone().unwrap_or_default(),
                    "CreatedBy": h.created_by.clone().unwrap_or_default(),
                    "Size": size,
                    "Comment": h.comment.clone().unwrap_or_default(),
                    "EmptyLayer": h.empty_layer,
                });
                println!("{v}");
            }
        }
        other => anyhow::bail!("unknown --format {other:?} (table or json)"),
    }
    Ok(ExitCode::SUCCESS)
}
