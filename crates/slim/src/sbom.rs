//! The SPDX 2.3 SBOM of a slim image: the Debian packages of the fat image
//! (dpkg's `status` with `info/*.list`, or distroless-style `status.d/`
//! with `*.md5sums`) that still have a regular file in the slim image.
//! Paths are compared after resolving symlinks in the fat rootfs, since
//! dpkg lists `/lib/…` where a merged-/usr system keeps `/usr/lib/…`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use serde_json::{Value, json};

use crate::debian::control::parse_paragraphs;
use crate::python::layout::RootFs;

/// A Debian package installed in the fat image.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub architecture: String,
    pub source: Option<String>,
    pub homepage: Option<String>,
    /// The files dpkg says it installed (container paths).
    pub files: Vec<String>,
}

/// The installed packages of the rootfs at `root` (none when it has no dpkg
/// database: a `FROM scratch` image, an Alpine image).
pub fn installed_packages(root: &Path) -> Vec<Package> {
    let mut out = Vec::new();
    let dpkg = root.join("var/lib/dpkg");
    if let Ok(text) = fs::read_to_string(dpkg.join("status")) {
        out.extend(packages_in(&text, |name, arch| {
            let list = fs::read_to_string(dpkg.join(format!("info/{name}:{arch}.list")))
                .or_else(|_| fs::read_to_string(dpkg.join(format!("info/{name}.list"))))
                .unwrap_or_default();
            list.lines().filter(|l| l.starts_with('/')).map(str::to_string).collect()
        }));
    }
    if let Ok(rd) = fs::read_dir(dpkg.join("status.d")) {
        let mut names: Vec<String> = rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        for n in names.iter().filter(|n| !n.contains('.')) {
            let Ok(text) = fs::read_to_string(dpkg.join("status.d").join(n)) else { continue };
            out.extend(packages_in(&text, |_, _| {
                let sums = fs::read_to_string(dpkg.join("status.d").join(format!("{n}.md5sums"))).unwrap_or_default();
                sums.lines().filter_map(|l| l.split_once("  ")).map(|(_, p)| format!("/{}", p.trim())).collect()
            }));
        }
    }
    out.sort();
    out.dedup_by(|a, b| a.name == b.name && a.architecture == b.architecture);
    out
}

fn packages_in(text: &str, files: impl Fn(&str, &str) -> Vec<String>) -> Vec<Package> {
    let Ok(paragraphs) = parse_paragraphs(text) else { return Vec::new() };
    paragraphs
        .iter()
        .filter(|p| p.get("Status").is_none_or(|s| s.ends_with(" installed")))
        .filter_map(|p| {
            let name = p.get("Package")?.to_string();
            let architecture = p.get("Architecture").unwrap_or("all").to_string();
            Some(Package {
                version: p.get("Version").unwrap_or("").to_string(),
                source: p.get("Source").map(|s| s.split_whitespace().next().unwrap_or(s).to_string()),
                homepage: p.get("Homepage").map(str::to_string),
                files: files(&name, &architecture),
                name,
                architecture,
            })
        })
        .collect()
}

/// The packages that still have a regular file among `kept` (container
/// paths of the slim image's regular files, symlink-free).
pub fn packages_in_slim(fat: &Path, packages: &[Package], kept: &BTreeSet<String>) -> Vec<Package> {
    let mut fs_ = RootFs::new(fat);
    packages
        .iter()
        .filter(|p| p.files.iter().any(|f| fs_.resolve(f).is_some_and(|r| kept.contains(&r.real))))
        .cloned()
        .collect()
}

/// An SPDX 2.3 JSON document describing image `name` (`digest` its
/// manifest digest) holding `packages`. `created` is RFC 3339.
pub fn spdx_document(name: &str, digest: &str, created: &str, packages: &[Package]) -> Value {
    let image_id = "SPDXRef-Image";
    let mut spdx_packages = vec![json!({
        "SPDXID": image_id,
        "name": name,
        "versionInfo": digest,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "primaryPackagePurpose": "CONTAINER",
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
    })];
    let mut relationships = vec![
        json!({"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": image_id}),
    ];
    let mut ids = BTreeMap::new();
    for p in packages {
        let id = format!("SPDXRef-Package-deb-{}-{}", spdx_id_part(&p.name), spdx_id_part(&p.architecture));
        if ids.insert(id.clone(), ()).is_some() {
            continue;
        }
        let mut purl = format!("pkg:deb/debian/{}@{}?arch={}", p.name, purl_escape(&p.version), p.architecture);
        if let Some(src) = &p.source {
            purl.push_str(&format!("&upstream={}", purl_escape(src)));
        }
        let mut pkg = json!({
            "SPDXID": id,
            "name": p.name,
            "versionInfo": p.version,
            "supplier": "Organization: Debian",
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": purl}],
        });
        if let Some(h) = &p.homepage {
            pkg["homepage"] = json!(h);
        }
        spdx_packages.push(pkg);
        relationships
            .push(json!({"spdxElementId": image_id, "relationshipType": "CONTAINS", "relatedSpdxElement": id}));
    }
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("{name} (distill slim)"),
        "documentNamespace": format!("https://distill.invalid/spdx/{}", digest.replace(':', "-")),
        "creationInfo": {"created": created, "creators": [format!("Tool: distill-{}", env!("CARGO_PKG_VERSION"))]},
        "packages": spdx_packages,
        "relationships": relationships,
    })
}

/// SPDX ids allow letters, digits, `.` and `-`.
fn spdx_id_part(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '-' }).collect()
}

fn purl_escape(s: &str) -> String {
    s.replace('%', "%25").replace(':', "%3A").replace('+', "%2B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_and_status_d_are_read_and_matched_through_links() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("var/lib/dpkg/info")).unwrap();
        fs::create_dir_all(root.join("var/lib/dpkg/status.d")).unwrap();
        fs::create_dir_all(root.join("usr/lib")).unwrap();
        std::os::unix::fs::symlink("usr/lib", root.join("lib")).unwrap();
        fs::write(root.join("usr/lib/libc.so.6"), "x").unwrap();
        fs::write(root.join("usr/lib/libz.so.1"), "x").unwrap();
        fs::write(
            root.join("var/lib/dpkg/status"),
            "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9\nSource: glibc\n\n\
             Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n\n\
             Package: zlib1g\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1:1.2.13\n",
        )
        .unwrap();
        fs::write(root.join("var/lib/dpkg/info/libc6:amd64.list"), "/.\n/lib\n/lib/libc.so.6\n").unwrap();
        fs::write(root.join("var/lib/dpkg/info/zlib1g:amd64.list"), "/usr/lib/libz.so.1\n").unwrap();
        fs::write(root.join("var/lib/dpkg/status.d/tzdata"), "Package: tzdata\nVersion: 2024a\nArchitecture: all\n")
            .unwrap();
        fs::write(root.join("var/lib/dpkg/status.d/tzdata.md5sums"), "abc  usr/share/zoneinfo/UTC\n").unwrap();

        let pkgs = installed_packages(root);
        let names: Vec<&str> = pkgs.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["libc6", "tzdata", "zlib1g"]);
        let kept: BTreeSet<String> = ["/usr/lib/libc.so.6".to_string()].into();
        let slim = packages_in_slim(root, &pkgs, &kept);
        assert_eq!(slim.len(), 1);
        assert_eq!(slim[0].name, "libc6");
        let doc = spdx_document("app", "sha256:00", "2026-01-01T00:00:00Z", &slim);
        assert_eq!(doc["spdxVersion"], "SPDX-2.3");
        assert_eq!(
            doc["packages"][1]["externalRefs"][0]["referenceLocator"],
            "pkg:deb/debian/libc6@2.36-9?arch=amd64&upstream=glibc"
        );
        assert_eq!(doc["relationships"].as_array().unwrap().len(), 2);
    }
}
