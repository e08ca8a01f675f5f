//! `distill inspect`: an image as JSON with the fields of `docker image inspect`.

use std::process::ExitCode;

use distill_image::store::{Image, Store};
use serde_json::{Value, json};

use super::image_common::{StoreArgs, image_size};

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Images (names, IDs or digests).
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Print one field per image, Go-template style: `{{.Id}}`, `{{.Config.Cmd}}`, `{{json .Config}}`.
    #[arg(short, long)]
    pub format: Option<String>,
    #[command(flatten)]
    pub store: StoreArgs,
}

pub fn run(args: InspectArgs) -> anyhow::Result<ExitCode> {
    let store = args.store.open()?;
    let mut out = Vec::new();
    let mut failed = false;
    for spec in &args.images {
        match store.find_image(spec) {
            Ok(image) => out.push(inspect_json(&store, &image)),
            Err(e) => {
                eprintln!("error: {e}");
                failed = true;
            }
        }
    }
    match &args.format {
        None => println!("{}", serde_json::to_string_pretty(&Value::Array(out))?),
        Some(template) => {
            for v in &out {
                println!("{}", render_template(template, v)?);
            }
        }
    }
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// The fields Docker prints, from what the store holds.
pub fn inspect_json(store: &Store, image: &Image) -> Value {
    let cfg = &image.config;
    let repo_tags: Vec<String> = image.record.tags.iter().map(|t| t.familiar()).collect();
    let mut repo_digests: Vec<String> =
        image.record.tags.iter().map(|t| t.with_digest(image.record.digest).familiar()).collect();
    repo_digests.dedup();
    let extra_str = |k: &str| cfg.extra.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let mut v = json!({
        "Id": image.record.id().to_string(),
        "RepoTags": repo_tags,
        "RepoDigests": repo_digests,
        "Parent": "",
        "Comment": extra_str("comment"),
        "Created": cfg.created.clone().unwrap_or_default(),
        "DockerVersion": extra_str("docker_version"),
        "Author": cfg.author.clone().unwrap_or_default(),
        "Config": cfg.config.as_ref().map(|c| serde_json::to_value(c).unwrap_or(Value::Null)).unwrap_or(Value::Null),
        "Architecture": cfg.architecture,
        "Os": cfg.os,
        "Size": image_size(store, image),
        "RootFS": {
            "Type": cfg.rootfs.kind,
            "Layers": cfg.rootfs.diff_ids.iter().map(ToString::to_string).collect::<Vec<_>>(),
        },
        "Metadata": { "LastTagTime": image.record.added.to_rfc3339() },
        "Descriptor": {
            "mediaType": image.record.media_type,
            "digest": image.record.digest.to_string(),
            "size": image.record.size,
        },
    });
    if let Some(variant) = &cfg.variant {
        v["Variant"] = json!(variant);
    }
    if let Some(os_version) = &cfg.os_version {
        v["OsVersion"] = json!(os_version);
    }
    v
}

/// A small subset of Go templates: `{{.A.B}}` and `{{json .A.B}}`, mixed with text.
fn render_template(template: &str, v: &Value) -> anyhow::Result<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("}}").ok_or_else(|| anyhow::anyhow!("unclosed {{{{ in --format"))? + start;
        let expr = rest[start + 2..end].trim();
        let (json_mode, path) = match expr.strip_prefix("json ") {
            Some(p) => (true, p.trim()),
            None => (false, expr),
        };
        let path = path.strip_prefix('.').ok_or_else(|| anyhow::anyhow!("unsupported template expression {expr:?}"))?;
        let mut cur = v;
        for key in path.split('.').filter(|k| !k.is_empty()) {
            cur = cur.get(key).unwrap_or(&Value::Null);
        }
        let text = match (json_mode, cur) {
            (true, c) => c.to_string(),
            (false, Value::String(s)) => s.clone(),
            (false, Value::Null) => "<no value>".to_string(),
            (false, Value::Array(items)) => format!(
                "[{}]",
                items
                    .iter()
                    .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            (false, c) => c.to_string(),
        };
        out.push_str(&text);
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates() {
        let v = json!({"Id": "sha256:1", "Config": {"Cmd": ["a", "b"]}, "Size": 3});
        assert_eq!(render_template("{{.Id}} {{.Size}}", &v).unwrap(), "sha256:1 3");
        assert_eq!(render_template("{{.Config.Cmd}}", &v).unwrap(), "[a b]");
        assert_eq!(render_template("{{json .Config}}", &v).unwrap(), r#"{"Cmd":["a","b"]}"#);
        assert_eq!(render_template("{{.Nope}}", &v).unwrap(), "<no value>");
    }
}
