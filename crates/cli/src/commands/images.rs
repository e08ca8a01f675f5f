//! `distill images`: the images in the store (`docker images`).

use std::collections::{HashMap, HashSet};
use std::process::ExitCode;

use distill_image::digest::Digest;
use distill_image::manifest::Index;
use distill_image::reference::Reference;
use serde_json::json;

use super::image_common::{StoreArgs, created, human_age, human_size, image_size, print_table, short_id};

#[derive(Debug, clap::Args)]
pub struct ImagesArgs {
    /// Only images of this repository (and tag).
    pub repository: Option<String>,
    /// Only print image IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Show full IDs.
    #[arg(long)]
    pub no_trunc: bool,
    /// Show manifest digests.
    #[arg(long)]
    pub digests: bool,
    /// Output format: table or json (one object per line).
    #[arg(long, default_value = "table")]
    pub format: String,
    #[command(flatten)]
    pub store: StoreArgs,
}

struct Row {
    repository: String,
    tag: String,
    id: String,
    digest: String,
    created: String,
    created_at: String,
    size: u64,
}

pub fn run(args: ImagesArgs) -> anyhow::Result<ExitCode> {
    let store = args.store.open()?;
    let filter = args.repository.as_deref().map(Reference::parse_normalized).transpose()?;
    let mut rows = Vec::new();
    let mut records = store.images()?;
    let mut images = Vec::new();
    for rec in records.drain(..) {
        let image = store.image(&rec)?;
        images.push(image);
    }
    // Newest first, as Docker lists them.
    images.sort_by_key(|i| std::cmp::Reverse(created(i)));
    // A multi-platform name shows on the image it runs here (the host's
    // entry); the other platforms' images belong to it, not dangling.
    let mut index_names: HashMap<Digest, Vec<Reference>> = HashMap::new();
    let mut in_index: HashSet<Digest> = HashSet::new();
    for index in store.indexes()? {
        if let Ok(parsed) = Index::from_slice(&store.read_blob(&index.digest)?) {
            in_index.extend(parsed.manifests.iter().map(|d| d.digest));
        }
        for tag in index.tags {
            if let Ok(record) = store.resolve(&tag.to_string()) {
                index_names.entry(record.digest).or_default().push(tag);
            }
        }
    }
    for image in &images {
        let id = if args.no_trunc { image.record.id().to_string() } else { short_id(&image.record.id()) };
        let size = image_size(&store, image);
        let when = created(image);
        let mut tags = image.record.tags.clone();
        tags.extend(index_names.get(&image.record.digest).into_iter().flatten().cloned());
        let mut names: Vec<(String, String)> = tags
            .iter()
            .filter(|t| match &filter {
                None => true,
                Some(f) => t.name() == f.name() && f.tag().is_none_or(|ft| Some(ft) == t.tag()),
            })
            .map(|t| (t.familiar_name(), t.tag().unwrap_or("<none>").to_string()))
            .collect();
        if tags.is_empty() && filter.is_none() && !in_index.contains(&image.record.digest) {
            names.push(("<none>".to_string(), "<none>".to_string()));
        }
        for (repository, tag) in names {
            rows.push(Row {
                repository,
                tag,
                id: id.clone(),
                digest: image.record.digest.to_string(),
                created: human_age(when),
                created_at: when.map(|t| t.to_rfc3339()).unwrap_or_default(),
                size,
            });
        }
    }
    if args.quiet {
        let mut seen = Vec::new();
        for r in rows {
            if !seen.contains(&r.id) {
                println!("{}", r.id);
                seen.push(r.id);
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    match args.format.as_str() {
        "table" => {
            let mut header = vec!["REPOSITORY", "TAG"];
            if args.digests {
                header.push("DIGEST");
            }
            header.extend(["IMAGE ID", "CREATED", "SIZE"]);
            let table: Vec<Vec<String>> = rows
                .into_iter()
                .map(|r| {
                    let mut row = vec![r.repository, r.tag];
                    if args.digests {
                        row.push(r.digest);
                    }
                    row.extend([r.id, r.created, human_size(r.size)]);
                    row
                })
                .collect();
            print_table(&header, &table);
        }
        "json" => {
            for r in rows {
                let v = json!({
                    "Repository": r.repository,
                    "Tag": r.tag,
                    "ID": r.id,
                    "Digest": r.digest,
                    "CreatedAt": r.created_at,
                    "CreatedSince": r.created,
                    "Size": human_size(r.size),
                    "VirtualSize": r.size,
                });
                println!("{v}");
            }
        }
        other => anyhow::bail!("unknown --format {other:?} (table or json)"),
    }
    Ok(ExitCode::SUCCESS)
}
