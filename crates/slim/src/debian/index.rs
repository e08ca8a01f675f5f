//! `Packages` indices: the binary package stanzas of one or more suites, merged into one searchable set.

use std::collections::HashMap;

use super::DebianError;
use super::control::Paragraphs;
use super::deps::{self, Relation};
use super::version::Version;

/// One binary package stanza from a `Packages` index. Relationship fields are kept as text and parsed when the
/// resolver reaches the package (most of the ~60 000 stanzas are never looked at).
#[derive(Debug, Clone)]
pub struct PackageEntry {
    /// `Package:`.
    pub name: String,
    /// `Version:`.
    pub version: Version,
    /// `Architecture:` (the build's architecture or `all`).
    pub architecture: String,
    /// `Multi-Arch:` (`same`, `foreign`, `allowed` or empty).
    pub multi_arch: String,
    /// `Priority:`.
    pub priority: String,
    /// `Essential: yes`.
    pub essential: bool,
    /// `Depends:` as written.
    pub depends: String,
    /// `Pre-Depends:` as written.
    pub pre_depends: String,
    /// `Conflicts:` as written.
    pub conflicts: String,
    /// `Breaks:` as written.
    pub breaks: String,
    /// `Provides:`, parsed.
    pub provides: Vec<Relation>,
    /// `Filename:`, relative to the mirror root.
    pub filename: String,
    /// `SHA256:` of the .deb.
    pub sha256: String,
    /// `Size:` of the .deb in bytes.
    pub size: u64,
    /// `Installed-Size:` in KiB.
    pub installed_size_kib: u64,
    /// Which source (suite) it came from: an index into the caller's list.
    pub origin: usize,
}

impl PackageEntry {
    /// `name version`.
    pub fn id(&self) -> String {
        format!("{} {}", self.name, self.version)
    }

    /// Pre-Depends followed by Depends, parsed.
    pub fn dependencies(&self) -> Result<Vec<deps::Alternatives>, DebianError> {
        let mut all = deps::parse_relations(&self.pre_depends).map_err(|e| self.bad(e))?;
        all.extend(deps::parse_relations(&self.depends).map_err(|e| self.bad(e))?);
        Ok(all)
    }

    /// Conflicts and Breaks, parsed and flattened.
    pub fn negative_relations(&self) -> Result<Vec<Relation>, DebianError> {
        let mut all = deps::parse_relations(&self.conflicts).map_err(|e| self.bad(e))?;
        all.extend(deps::parse_relations(&self.breaks).map_err(|e| self.bad(e))?);
        Ok(all.into_iter().flatten().collect())
    }

    fn bad(&self, e: impl std::fmt::Display) -> DebianError {
        DebianError::Index(format!("{}: {e}", self.id()))
    }
}

/// A set of package stanzas with lookups by name and by provided (virtual) name.
#[derive(Debug, Default)]
pub struct Index {
    /// All stanzas.
    pub packages: Vec<PackageEntry>,
    by_name: HashMap<String, Vec<usize>>,
    providers: HashMap<String, Vec<(usize, Option<Version>)>>,
}

impl Index {
    /// An empty index.
    pub fn new() -> Index {
        Index::default()
    }

    /// Adds the stanzas of a `Packages` text whose architecture is `arch` or `all`; returns how many were added.
    pub fn add_packages_text(&mut self, text: &str, arch: &str, origin: usize) -> Result<usize, DebianError> {
        let mut added = 0;
        for para in Paragraphs::new(text) {
            let para = para.map_err(|e| DebianError::Index(e.to_string()))?;
            let field = |f: &str| para.get(f).unwrap_or("");
            let architecture = field("Architecture");
            if architecture != arch && architecture != "all" {
                continue;
            }
            let name = field("Package");
            let version = Version::parse(field("Version")).map_err(|e| DebianError::Index(format!("{name}: {e}")))?;
            let provides = deps::parse_provides(field("Provides"))
                .map_err(|e| DebianError::Index(format!("{name} {version}: {e}")))?;
            let sha256 = field("SHA256").to_ascii_lowercase();
            if name.is_empty() || field("Filename").is_empty() || sha256.len() != 64 {
                return Err(DebianError::Index(format!("stanza for {name:?} lacks Package, Filename or SHA256")));
            }
            let num = |f: &str| field(f).trim().parse::<u64>().unwrap_or(0);
            self.add(PackageEntry {
                name: name.to_string(),
                version,
                architecture: architecture.to_string(),
                multi_arch: field("Multi-Arch").to_string(),
                priority: field("Priority").to_string(),
                essential: field("Essential").eq_ignore_ascii_case("yes"),
                depends: field("Depends").to_string(),
                pre_depends: field("Pre-Depends").to_string(),
                conflicts: field("Conflicts").to_string(),
                breaks: field("Breaks").to_string(),
                provides,
                filename: field("Filename").to_string(),
                sha256,
                size: num("Size"),
                installed_size_kib: num("Installed-Size"),
                origin,
            });
            added += 1;
        }
        Ok(added)
    }

    /// Adds one stanza.
    pub fn add(&mut self, entry: PackageEntry) {
        let i = self.packages.len();
        self.by_name.entry(entry.name.clone()).or_default().push(i);
        for p in &entry.provides {
            let v = p.constraint.as_ref().map(|c| c.version.clone());
            self.providers.entry(p.name.clone()).or_default().push((i, v));
        }
        self.packages.push(entry);
    }

    /// Every stanza of the real package `name` (several versions across suites).
    pub fn versions(&self, name: &str) -> &[usize] {
        self.by_name.get(name).map_or(&[], Vec::as_slice)
    }

    /// Stanzas that provide `name`, with the provided version (versioned Provides) if any.
    pub fn providers(&self, name: &str) -> &[(usize, Option<Version>)] {
        self.providers.get(name).map_or(&[], Vec::as_slice)
    }
}
