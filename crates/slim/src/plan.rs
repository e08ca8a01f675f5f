//! What a slim image keeps: the union of the ELF closure of the command (and
//! of every `--keep` and traced path), the Python closure when the command
//! runs a Python interpreter, and the data files the rules add, each file
//! with the reasons it is kept (what `distill explain` prints).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::elf::{self, ClosureOptions, ElfError, Root};
use crate::python::layout::{RootFs, base_name, join};
use crate::python::{PythonError, PythonOptions, python_closure};

/// What to slim: the container's command and environment, as the image
/// config gives them, and what the user adds.
#[derive(Debug, Clone, Default)]
pub struct SlimRequest {
    /// ENTRYPOINT + CMD.
    pub argv: Vec<String>,
    /// The image's `Env` (`KEY=VALUE`).
    pub env: Vec<String>,
    /// The image's `WorkingDir` (`/` if empty).
    pub workdir: String,
    /// `--keep` paths: programs, libraries, data files or whole directories.
    pub keep: Vec<String>,
    /// Paths a trace saw opened or executed (`--trace`).
    pub traced: Vec<String>,
    /// Keep time zone data.
    pub include_tzdata: bool,
}

/// The files of the slim image and why each is there.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Container path → reasons (symlinks are their own entries).
    pub files: BTreeMap<String, Vec<String>>,
    /// Directories that must exist even if empty → why.
    pub directories: BTreeMap<String, String>,
    /// What the closure needs but the image does not have (required ones).
    pub missing: Vec<String>,
    /// Worth knowing: optional libraries not found, unresolved imports…
    pub notes: Vec<String>,
    /// The symlinks of the slim image → their targets (filled by
    /// [`crate::assemble`]), to explain paths that go through them.
    #[serde(default)]
    pub links: BTreeMap<String, String>,
}

impl Plan {
    fn add(&mut self, path: &str, why: impl Into<String>) {
        let reasons = self.files.entry(path.to_string()).or_default();
        let why = why.into();
        if reasons.len() < 8 && !reasons.contains(&why) {
            reasons.push(why);
        }
    }

    /// The reasons for `path` (a container path; `.`/`..` allowed).
    pub fn explain(&self, path: &str) -> Option<&[String]> {
        self.files.get(&crate::python::layout::normalize(path)).map(Vec::as_slice)
    }

    /// `path` with the slim image's symlinks resolved, and the links crossed.
    pub fn resolve(&self, path: &str) -> (String, Vec<String>) {
        let mut todo: Vec<String> = path.split('/').filter(|c| !c.is_empty()).rev().map(str::to_string).collect();
        let mut cur: Vec<String> = Vec::new();
        let mut crossed = Vec::new();
        while let Some(c) = todo.pop() {
            match c.as_str() {
                "." => continue,
                ".." => {
                    cur.pop();
                    continue;
                }
                _ => cur.push(c),
            }
            let here = format!("/{}", cur.join("/"));
            if let Some(target) = self.links.get(&here) {
                if crossed.len() >= 40 {
                    break;
                }
                crossed.push(here);
                cur.pop();
                if target.starts_with('/') {
                    cur.clear();
                }
                todo.extend(target.split('/').filter(|c| !c.is_empty()).rev().map(str::to_string));
            }
        }
        (format!("/{}", cur.join("/")), crossed)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("nothing to slim for: the image has no ENTRYPOINT or CMD (give --entrypoint, or --keep paths)")]
    NoCommand,
    #[error(transparent)]
    Elf(#[from] ElfError),
    #[error(transparent)]
    Python(#[from] PythonError),
}

/// Computes what the slim image of the rootfs at `rootfs` keeps.
pub fn plan(rootfs: &Path, req: &SlimRequest) -> Result<Plan, PlanError> {
    if req.argv.is_empty() && req.keep.is_empty() {
        return Err(PlanError::NoCommand);
    }
    let workdir = if req.workdir.is_empty() { "/".to_string() } else { req.workdir.clone() };
    let mut opts = ClosureOptions::from_env(&req.env);
    opts.workdir = workdir.clone();
    opts.include_tzdata = req.include_tzdata;

    let mut plan = Plan::default();
    let mut roots: Vec<Root> = Vec::new();
    let mut fs = RootFs::new(rootfs);
    for argv in commands(&req.argv) {
        roots.push(Root::Program(argv[0].clone()));
        if let Some(py) = python_argv(&mut fs, &argv, &opts.env_path, &workdir)
            && let Some(popts) = PythonOptions::from_argv(&py, &req.env, &workdir)
        {
            let c = python_closure(rootfs, &popts)?;
            for (path, why) in &c.files {
                for w in why {
                    plan.add(path, format!("python: {w}"));
                }
            }
            for (dir, why) in &c.directories {
                plan.directories.insert(dir.clone(), format!("python: {why}"));
            }
            roots.push(Root::Program(c.interpreter.clone()));
            for ext in &c.extension_modules {
                roots.push(Root::Library { path: ext.clone(), loaded_by: Some(c.interpreter.clone()) });
            }
            for (module, importer) in &c.unresolved {
                plan.notes.push(format!("python: import {module} (in {importer}) resolves nowhere"));
            }
            plan.notes.extend(c.notes.iter().map(|n| format!("python: {n}")));
        }
    }
    for k in &req.keep {
        roots.push(Root::Program(k.clone()));
    }
    let elf = elf::closure_of(rootfs, &roots, &opts)?;
    for (path, reasons) in &elf.files {
        for r in reasons {
            plan.add(path, r.to_string());
        }
    }
    for m in &elf.missing {
        if m.required {
            plan.missing.push(m.to_string());
        } else {
            plan.notes.push(m.to_string());
        }
    }
    // Traced paths: what the program opened; files and the links to them,
    // each through the ELF closure (a traced library brings its own needs).
    let traced: Vec<Root> = req
        .traced
        .iter()
        .filter(|p| fs.resolve(p).is_some_and(|r| !plan.files.contains_key(&r.real)))
        .map(|p| Root::Program(p.clone()))
        .collect();
    if !traced.is_empty() {
        let mut topts = opts.clone();
        topts.data_files = false;
        let t = elf::closure_of(rootfs, &traced, &topts)?;
        for (path, reasons) in &t.files {
            for r in reasons {
                let why = match r {
                    elf::Reason::Root { given } => format!("opened by a probe under --trace ({given})"),
                    other => other.to_string(),
                };
                plan.add(path, why);
            }
        }
        // A trace sees the file opened, not the name it was opened by: a
        // dlopen("libz.so.1") shows up as libz.so.1.2.13. Keep the links
        // next to a traced file that lead to it.
        for root in &traced {
            let Root::Program(p) = root else { continue };
            let Some(real) = fs.resolve(p).map(|r| r.real) else { continue };
            let dir = crate::python::layout::parent(&real);
            for name in fs.list(&dir).unwrap_or_default() {
                let link = join(&dir, &name);
                let is_link = std::fs::symlink_metadata(fs.host(&link)).is_ok_and(|m| m.file_type().is_symlink());
                if is_link && fs.resolve(&link).is_some_and(|r| r.real == real) {
                    plan.add(&link, format!("symlink to {real}, which a probe opened under --trace"));
                }
            }
        }
    }
    Ok(plan)
}

/// The commands the container runs: argv itself, and for `sh -c 'cmd args'`
/// with a simple command (no shell syntax), that command too.
fn commands(argv: &[String]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    if argv.is_empty() {
        return out;
    }
    out.push(argv.to_vec());
    let shell = matches!(base_name(&argv[0]), "sh" | "bash" | "dash" | "ash");
    if shell && argv.len() >= 3 && argv[1] == "-c" {
        let script = argv[2].trim();
        let simple = !script.is_empty() && !script.contains(|c: char| "|&;<>()$`\\\"'*?[]{}~\n#=".contains(c));
        if simple {
            let mut words: Vec<String> = script.split_whitespace().map(str::to_string).collect();
            if words.first().is_some_and(|w| w == "exec") {
                words.remove(0);
            }
            if !words.is_empty() {
                out.push(words);
            }
        }
    }
    out
}

/// `argv` as a Python command line (`python3 [opts] script…`), when it runs
/// a Python interpreter directly or a script whose `#!` line names one.
fn python_argv(fs: &mut RootFs, argv: &[String], path_env: &str, workdir: &str) -> Option<Vec<String>> {
    let program = locate(fs, &argv[0], path_env, workdir)?;
    let real = fs.resolve(&program)?.real;
    if is_python(base_name(&real)) || is_python(base_name(&program)) {
        return Some(argv.to_vec());
    }
    let head = fs.read(&program)?;
    let first = head.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(first).ok()?.strip_prefix("#!")?.trim();
    let mut words = line.split_whitespace();
    let mut interp = words.next()?.to_string();
    let mut flags: Vec<String> = words.map(str::to_string).collect();
    if base_name(&interp) == "env" {
        flags.retain(|f| f != "-S");
        if flags.is_empty() {
            return None;
        }
        interp = flags.remove(0);
    }
    if !is_python(base_name(&interp)) {
        return None;
    }
    let mut out = vec![interp];
    out.extend(flags);
    out.push(program);
    out.extend(argv[1..].iter().cloned());
    Some(out)
}

fn is_python(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("python") else { return false };
    rest.is_empty() || rest.chars().all(|c| c.is_ascii_digit() || c == '.')
}

/// A program name as the container's exec would find it.
fn locate(fs: &mut RootFs, name: &str, path_env: &str, workdir: &str) -> Option<String> {
    if name.contains('/') {
        let p = join(workdir, name);
        return fs.is_file(&p).then_some(p);
    }
    path_env.split(':').filter(|d| !d.is_empty()).map(|d| join(d, name)).find(|p| fs.is_file(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn shell_c_with_a_simple_command_adds_it() {
        assert_eq!(
            commands(&v(&["/bin/sh", "-c", "exec python3 app.py"])),
            vec![v(&["/bin/sh", "-c", "exec python3 app.py"]), v(&["python3", "app.py"])]
        );
        assert_eq!(commands(&v(&["/bin/sh", "-c", "a | b"])).len(), 1);
        assert_eq!(commands(&v(&["/app/server", "--port", "80"])).len(), 1);
    }

    #[test]
    fn python_names() {
        assert!(is_python("python3"));
        assert!(is_python("python3.11"));
        assert!(is_python("python"));
        assert!(!is_python("python3-config"));
        assert!(!is_python("pythonista"));
    }
}
