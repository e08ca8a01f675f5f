//! Dependency resolution, apt-style but without backtracking: walk Pre-Depends and Depends breadth-first from the
//! requested packages; a dependency already satisfied by the selection is skipped, otherwise the first satisfiable
//! alternative is taken (a real package at its highest matching version, else a provider of the virtual name).
//! Recommends and Suggests are ignored and Essential packages are not added implicitly (distroless style).
//! Conflicts and Breaks between selected packages are an error.

use std::collections::{HashMap, VecDeque};

use super::DebianError;
use super::deps::Relation;
use super::index::{Index, PackageEntry};
use super::version::Version;

/// One selected package and why.
#[derive(Debug, Clone)]
pub struct Selected {
    /// Index into [`Index::packages`].
    pub index: usize,
    /// `requested`, or `<package> depends on <relation>`.
    pub reason: String,
}

/// Resolves `requests` (`name` or `name=version`) for architecture `arch` into the set of packages to install, in
/// the order they were selected.
pub fn resolve(index: &Index, arch: &str, requests: &[String]) -> Result<Vec<Selected>, DebianError> {
    let mut r = Resolver { index, arch, selected: HashMap::new(), order: Vec::new(), queue: VecDeque::new() };
    for req in requests {
        let (name, version) = match req.split_once('=') {
            Some((n, v)) => {
                (n.trim(), Some(Version::parse(v.trim()).map_err(|e| DebianError::Resolve(e.to_string()))?))
            }
            None => (req.trim(), None),
        };
        let pick = match &version {
            Some(v) => index
                .versions(name)
                .iter()
                .copied()
                .find(|&i| index.packages[i].version == *v)
                .ok_or_else(|| DebianError::Resolve(format!("package {name} has no version {v}")))?,
            None => match r.best_real(&Relation {
                name: name.to_string(),
                arch_qualifier: None,
                constraint: None,
                arch_restriction: vec![],
            }) {
                Some(i) => i,
                None => r.best_provider(name, None).ok_or_else(|| {
                    DebianError::Resolve(format!("package {name} is not in the index (nor provided by any package)"))
                })?,
            },
        };
        r.add(pick, "requested".to_string())?;
    }
    while let Some(p) = r.queue.pop_front() {
        let entry = &index.packages[p];
        for group in entry.dependencies()? {
            let group: Vec<&Relation> = group.iter().filter(|rel| rel.applies_to(arch)).collect();
            if group.is_empty() || group.iter().any(|rel| r.satisfied(rel)) {
                continue;
            }
            let text = group.iter().map(|rel| rel.to_string()).collect::<Vec<_>>().join(" | ");
            let chosen = group.iter().find_map(|rel| r.choose(rel));
            match chosen {
                Some(c) => r.add(c, format!("{} depends on {text}", entry.name))?,
                None => {
                    return Err(DebianError::Resolve(format!(
                        "{} depends on {text}, which no package in the index satisfies{}",
                        entry.id(),
                        r.why_not(&group)
                    )));
                }
            }
        }
    }
    r.check_conflicts()?;
    Ok(r.order)
}

struct Resolver<'a> {
    index: &'a Index,
    arch: &'a str,
    selected: HashMap<&'a str, usize>,
    order: Vec<Selected>,
    queue: VecDeque<usize>,
}

fn priority_rank(p: &str) -> u8 {
    match p {
        "required" => 0,
        "important" => 1,
        "standard" => 2,
        "optional" => 3,
        "extra" => 4,
        _ => 5,
    }
}

impl<'a> Resolver<'a> {
    fn pkg(&self, i: usize) -> &'a PackageEntry {
        &self.index.packages[i]
    }

    fn add(&mut self, i: usize, reason: String) -> Result<(), DebianError> {
        let p = self.pkg(i);
        match self.selected.get(p.name.as_str()) {
            Some(&j) if j == i => Ok(()),
            Some(&j) => {
                Err(DebianError::Resolve(format!("{} is needed but {} is already selected", p.id(), self.pkg(j).id())))
            }
            None => {
                self.selected.insert(&p.name, i);
                self.order.push(Selected { index: i, reason });
                self.queue.push_back(i);
                Ok(())
            }
        }
    }

    /// Whether a real package matches the relation's architecture qualifier (single-architecture view:
    /// `:any` needs `Multi-Arch: allowed`, `:native` and the build's own architecture always match).
    fn qualifier_ok(&self, rel: &Relation, p: &PackageEntry) -> bool {
        match rel.arch_qualifier.as_deref() {
            None | Some("native") => true,
            Some("any") => p.multi_arch == "allowed",
            Some(a) => a == self.arch || (a == "all" && p.architecture == "all"),
        }
    }

    fn real_matches(&self, rel: &Relation, i: usize) -> bool {
        let p = self.pkg(i);
        self.qualifier_ok(rel, p) && rel.constraint.as_ref().is_none_or(|c| c.matches(&p.version))
    }

    /// A provided name (with its Provides version) matches `rel`: unversioned relations accept any provider,
    /// versioned ones only a versioned Provides whose version satisfies them.
    fn provide_matches(rel: &Relation, provided: Option<&Version>) -> bool {
        match (&rel.constraint, provided) {
            (None, _) => true,
            (Some(c), Some(v)) => c.matches(v),
            (Some(_), None) => false,
        }
    }

    fn satisfied(&self, rel: &Relation) -> bool {
        if let Some(&i) = self.selected.get(rel.name.as_str())
            && self.real_matches(rel, i)
        {
            return true;
        }
        self.index.providers(&rel.name).iter().any(|(i, v)| {
            self.selected.get(self.pkg(*i).name.as_str()) == Some(i) && Self::provide_matches(rel, v.as_ref())
        })
    }

    /// The highest version of the real package `rel.name` that matches `rel`.
    fn best_real(&self, rel: &Relation) -> Option<usize> {
        self.index
            .versions(&rel.name)
            .iter()
            .copied()
            .filter(|&i| self.real_matches(rel, i))
            .max_by(|&a, &b| self.pkg(a).version.cmp(&self.pkg(b).version).then(b.cmp(&a)))
    }

    /// A provider of the virtual `name`: highest priority, then name, then highest version; providers whose name
    /// is already selected at another version are skipped.
    fn best_provider(&self, name: &str, rel: Option<&Relation>) -> Option<usize> {
        self.index
            .providers(name)
            .iter()
            .filter(|(_, v)| rel.is_none_or(|r| Self::provide_matches(r, v.as_ref())))
            .map(|(i, _)| *i)
            .filter(|&i| self.selected.get(self.pkg(i).name.as_str()).is_none_or(|&j| j == i))
            .min_by(|&a, &b| {
                let (pa, pb) = (self.pkg(a), self.pkg(b));
                priority_rank(&pa.priority)
                    .cmp(&priority_rank(&pb.priority))
                    .then_with(|| pa.name.cmp(&pb.name))
                    .then_with(|| pb.version.cmp(&pa.version))
                    .then(a.cmp(&b))
            })
    }

    fn choose(&self, rel: &Relation) -> Option<usize> {
        if self.selected.contains_key(rel.name.as_str()) {
            // Already selected at a version that does not match: one version per package.
            return None;
        }
        self.best_real(rel).or_else(|| self.best_provider(&rel.name, Some(rel)))
    }

    fn why_not(&self, group: &[&Relation]) -> String {
        let mut notes = Vec::new();
        for rel in group {
            if let Some(&i) = self.selected.get(rel.name.as_str()) {
                notes.push(format!("{} is selected", self.pkg(i).id()));
            } else {
                let vs: Vec<String> =
                    self.index.versions(&rel.name).iter().map(|&i| self.pkg(i).version.to_string()).collect();
                if vs.is_empty() && self.index.providers(&rel.name).is_empty() {
                    notes.push(format!("no package named {}", rel.name));
                } else if !vs.is_empty() {
                    notes.push(format!("{} has versions {}", rel.name, vs.join(", ")));
                }
            }
        }
        if notes.is_empty() { String::new() } else { format!(" ({})", notes.join("; ")) }
    }

    fn check_conflicts(&self) -> Result<(), DebianError> {
        for s in &self.order {
            let p = self.pkg(s.index);
            for rel in p.negative_relations()? {
                if !rel.applies_to(self.arch) {
                    continue;
                }
                let hit = |i: usize| i != s.index && self.selected.get(self.pkg(i).name.as_str()) == Some(&i);
                if let Some(&j) = self.selected.get(rel.name.as_str())
                    && hit(j)
                    && self.real_matches(&rel, j)
                {
                    return Err(DebianError::Resolve(format!(
                        "{} conflicts with (or breaks) {rel}, and {} was selected",
                        p.id(),
                        self.pkg(j).id()
                    )));
                }
                for (j, v) in self.index.providers(&rel.name) {
                    if hit(*j) && Self::provide_matches(&rel, v.as_ref()) {
                        return Err(DebianError::Resolve(format!(
                            "{} conflicts with {rel}, which selected {} provides",
                            p.id(),
                            self.pkg(*j).id()
                        )));
                    }
                }
            }
        }
        Ok(())
    }
}
