//! The analysis: programs, scripts, processes as ld.so builds them, and the
//! knowledge rules. See the module documentation of [`super`].

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::rc::Rc;

use super::dst::{self, Layout};
use super::ldcache::LdCache;
use super::parse::{self, ElfInfo, Ident};
use super::rootfs::{self, ResolveError, Resolved, RootFs, basename, dirname, join_path};
use super::rules;
use super::types::{Closure, ClosureOptions, ElfError, LddEntry, Missing, Reason, Root, Via};

/// Largest file parsed as ELF (bigger ones are reported, not read).
const MAX_ELF: u64 = 2 << 30;
/// Kernel limit on nested `#!` interpreters (`BINPRM_MAX_RECURSION`).
const MAX_SCRIPT_DEPTH: usize = 4;
/// The CA bundle applications and OpenSSL/GnuTLS on Debian read.
const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

#[derive(Clone)]
enum Parsed {
    Elf(Rc<ElfInfo>),
    NotElf,
    Bad(String),
}

/// An object mapped in a simulated process (glibc's `struct link_map`).
struct Obj {
    /// The path it was opened as (`l_name`), before symlinks.
    path: String,
    /// Its symlink-free path.
    real: String,
    info: Rc<ElfInfo>,
    /// The object whose dependency it is (`l_loader`).
    loader: Option<usize>,
    /// Names it answers to (`l_libname`), its SONAME aside.
    names: Vec<String>,
    /// `$ORIGIN`.
    origin: String,
}

/// One simulated process.
struct Process {
    objs: Vec<Obj>,
    ident: Ident,
    layout: Layout,
    /// How far the breadth-first walk over DT_NEEDED has gone.
    next: usize,
}

const MAIN: usize = 0;

/// What a search found.
struct Found {
    path: String,
    res: Resolved,
    info: Rc<ElfInfo>,
    via: Via,
    variants: Vec<(String, Resolved, Rc<ElfInfo>)>,
}

enum Candidate {
    Absent,
    Skipped(String),
    Fatal(String),
    Ok(Resolved, Rc<ElfInfo>),
}

pub(crate) struct Analyzer<'a> {
    fs: RootFs,
    opts: &'a ClosureOptions,
    out: Closure,
    parsed: HashMap<String, Parsed>,
    ldcache: Option<Option<Rc<LdCache>>>,
    done_programs: HashSet<String>,
    saw_glibc: bool,
}

impl<'a> Analyzer<'a> {
    pub(crate) fn new(rootfs: &Path, opts: &'a ClosureOptions) -> Result<Analyzer<'a>, ElfError> {
        let meta = std::fs::metadata(rootfs).map_err(|e| ElfError::Rootfs { path: rootfs.to_path_buf(), source: e })?;
        if !meta.is_dir() {
            return Err(ElfError::Rootfs {
                path: rootfs.to_path_buf(),
                source: std::io::Error::other("not a directory"),
            });
        }
        Ok(Analyzer {
            fs: RootFs::new(rootfs),
            opts,
            out: Closure::default(),
            parsed: HashMap::new(),
            ldcache: None,
            done_programs: HashSet::new(),
            saw_glibc: false,
        })
    }

    pub(crate) fn run(mut self, roots: &[Root]) -> Result<Closure, ElfError> {
        // Library roots grouped by the program loading them.
        let mut libs_by_program: Vec<(Option<String>, Vec<String>)> = Vec::new();
        for root in roots {
            match root {
                Root::Program(p) => self.root_program(p)?,
                Root::Library { path, loaded_by } => match libs_by_program.iter_mut().find(|(p, _)| p == loaded_by) {
                    Some((_, v)) => v.push(path.clone()),
                    None => libs_by_program.push((loaded_by.clone(), vec![path.clone()])),
                },
            }
        }
        for (program, libs) in libs_by_program {
            self.library_roots(program.as_deref(), &libs)?;
        }
        self.data_rules();
        Ok(self.out)
    }

    // ---------------------------------------------------------------- roots

    fn root_program(&mut self, given: &str) -> Result<(), ElfError> {
        let path = self.locate_root(given)?;
        let res = self.resolve_root(&path, given)?;
        let meta = self.fs.lstat(&res.real).map_err(|e| ElfError::Io { path: res.real.clone(), source: e })?;
        if meta.is_dir() {
            self.add_resolved(&res, Reason::Root { given: given.to_string() });
            return self.keep_dir(&res.real, given);
        }
        self.program(&path, Some(&res), Reason::Root { given: given.to_string() }, 0, true)
    }

    /// A root's in-container path: as given when it has a `/`, else `PATH`.
    fn locate_root(&mut self, given: &str) -> Result<String, ElfError> {
        if given.contains('/') {
            return Ok(rootfs::normalize(given, &self.opts.workdir));
        }
        self.which(given).ok_or_else(|| ElfError::RootNotFound { root: given.to_string() })
    }

    fn resolve_root(&self, path: &str, given: &str) -> Result<Resolved, ElfError> {
        self.fs.resolve(path, &self.opts.workdir).map_err(|e| match e {
            ResolveError::NotFound => ElfError::RootNotFound { root: given.to_string() },
            ResolveError::Loop => ElfError::SymlinkLoop { path: path.to_string() },
            ResolveError::Io(e) => ElfError::Io { path: path.to_string(), source: e },
        })
    }

    /// Looks a bare name up in the image's `PATH` like `execvp`: the first
    /// executable regular file.
    fn which(&self, name: &str) -> Option<String> {
        use std::os::unix::fs::PermissionsExt;
        for dir in self.opts.env_path.split(':') {
            let dir = if dir.is_empty() { self.opts.workdir.as_str() } else { dir };
            let cand = join_path(&rootfs::normalize(dir, &self.opts.workdir), name);
            if let Ok(res) = self.fs.resolve(&cand, "/")
                && let Ok(meta) = self.fs.lstat(&res.real)
                && meta.is_file()
                && meta.permissions().mode() & 0o111 != 0
            {
                return Some(cand);
            }
        }
        None
    }

    fn keep_dir(&mut self, dir: &str, root: &str) -> Result<(), ElfError> {
        let names = self.fs.list_dir(dir).map_err(|e| ElfError::Io { path: dir.to_string(), source: e })?;
        for name in names {
            let path = join_path(dir, &name);
            let Ok(meta) = self.fs.lstat(&path) else { continue };
            let reason = Reason::Kept { root: root.to_string() };
            if meta.file_type().is_symlink() {
                self.out.insert(&path, reason.clone());
                if let Ok(res) = self.fs.resolve(&path, "/") {
                    self.add_resolved(&res, reason.clone());
                    if self.fs.lstat(&res.real).is_ok_and(|m| m.is_file()) {
                        let _ = self.program(&path, Some(&res), reason, 0, false);
                    }
                }
            } else if meta.is_dir() {
                self.out.insert(&path, reason);
                self.keep_dir(&path, root)?;
            } else {
                let res = Resolved { real: path.clone(), links: vec![] };
                // Files under a kept directory are analysed, never fatal.
                let _ = self.program(&path, Some(&res), reason, 0, false);
            }
        }
        Ok(())
    }

    fn library_roots(&mut self, program: Option<&str>, libs: &[String]) -> Result<(), ElfError> {
        let mut located = Vec::new();
        for lib in libs {
            let path = rootfs::normalize(lib, &self.opts.workdir);
            let res = self.resolve_root(&path, lib)?;
            let info = match self.parsed(&res.real) {
                Parsed::Elf(i) => i,
                Parsed::NotElf => {
                    return Err(ElfError::Malformed { path: res.real, message: "not an ELF file".into() });
                }
                Parsed::Bad(m) => return Err(ElfError::Malformed { path: res.real, message: m }),
            };
            located.push((path, res, info));
        }
        match program {
            Some(prog) => {
                let ppath = self.locate_root(prog)?;
                let pres = self.resolve_root(&ppath, prog)?;
                self.add_resolved(&pres, Reason::Root { given: prog.to_string() });
                match self.parsed(&pres.real) {
                    Parsed::Elf(info) => {
                        self.done_programs.insert(pres.real.clone());
                        self.process(&pres.real, info, &located);
                    }
                    _ => {
                        // Not an ELF program (a script): load each library standalone.
                        self.program(&ppath, Some(&pres), Reason::Root { given: prog.to_string() }, 0, true)?;
                        for (_, res, info) in located {
                            self.standalone_library(&res, info, Some(prog));
                        }
                    }
                }
            }
            None => {
                for (_, res, info) in located {
                    self.standalone_library(&res, info, None);
                }
            }
        }
        Ok(())
    }

    fn standalone_library(&mut self, res: &Resolved, info: Rc<ElfInfo>, loaded_by: Option<&str>) {
        self.add_resolved(res, Reason::Library { loaded_by: loaded_by.map(str::to_string) });
        if self.done_programs.insert(res.real.clone()) {
            self.process(&res.real, info, &[]);
        }
    }

    // ------------------------------------------------------------- programs

    /// A program at `path` (already resolved as `res` when given): kept,
    /// then analysed as ELF or `#!` script. `strict`: parse errors are
    /// errors (roots), else notes.
    fn program(
        &mut self,
        path: &str,
        res: Option<&Resolved>,
        reason: Reason,
        depth: usize,
        strict: bool,
    ) -> Result<(), ElfError> {
        let res = match res {
            Some(r) => r.clone(),
            None => self.resolve_root(path, path)?,
        };
        self.add_resolved(&res, reason);
        if !self.done_programs.insert(res.real.clone()) {
            return Ok(());
        }
        let head = match self.fs.read_head(&res.real, rules::SHEBANG_BUF) {
            Ok(h) => h,
            Err(e) if strict => return Err(ElfError::Io { path: res.real.clone(), source: e }),
            Err(_) => return Ok(()),
        };
        if head.starts_with(b"#!") {
            self.script(&res.real, &head, depth);
            return Ok(());
        }
        if !head.starts_with(b"\x7fELF") {
            return Ok(()); // a data file
        }
        match self.parsed(&res.real) {
            Parsed::Elf(info) => {
                self.process(&res.real, info, &[]);
                Ok(())
            }
            Parsed::NotElf => Ok(()),
            Parsed::Bad(message) if strict => Err(ElfError::Malformed { path: res.real.clone(), message }),
            Parsed::Bad(message) => {
                self.out.note_missing(Missing {
                    name: res.real.clone(),
                    needed_by: res.real.clone(),
                    required: false,
                    detail: format!("cannot be analysed: {message}"),
                });
                Ok(())
            }
        }
    }

    fn script(&mut self, script: &str, head: &[u8], depth: usize) {
        let Some(sb) = rules::shebang(head) else { return };
        let missing = |detail: &str| Missing {
            name: sb.interp.clone(),
            needed_by: script.to_string(),
            required: true,
            detail: detail.to_string(),
        };
        if depth >= MAX_SCRIPT_DEPTH {
            self.out.note_missing(missing("too many levels of #! interpreters"));
            return;
        }
        let interp = rootfs::normalize(&sb.interp, &self.opts.workdir);
        let Ok(res) = self.fs.resolve(&interp, "/") else {
            self.out.note_missing(missing("#! interpreter not found"));
            return;
        };
        let _ = self.program(&interp, Some(&res), Reason::Shebang { script: script.to_string() }, depth + 1, false);
        if basename(&interp) == "env"
            && let Some(arg) = &sb.arg
            && let Some(prog) = rules::env_program(arg)
        {
            let found =
                if prog.contains('/') { Some(rootfs::normalize(&prog, &self.opts.workdir)) } else { self.which(&prog) };
            let reason = Reason::EnvProgram { program: prog.clone(), script: script.to_string() };
            match found.and_then(|p| self.fs.resolve(&p, "/").ok().map(|r| (p, r))) {
                Some((p, r)) => {
                    let _ = self.program(&p, Some(&r), reason, depth + 1, false);
                }
                None => self.out.note_missing(Missing {
                    name: prog,
                    needed_by: script.to_string(),
                    required: true,
                    detail: format!("not found in PATH {}", self.opts.env_path),
                }),
            }
        }
    }

    // ------------------------------------------------------------ processes

    /// Simulates ld.so starting the program `real` (or loading a standalone
    /// library), plus `extra` libraries dlopen'ed by it.
    fn process(&mut self, real: &str, info: Rc<ElfInfo>, extra: &[(String, Resolved, Rc<ElfInfo>)]) {
        let Some(ident) = info.ident else { return };
        if info.interp.is_none() && info.needed.is_empty() && extra.is_empty() {
            self.out.ldd.entry(real.to_string()).or_default();
            return; // static
        }
        let layout = Layout::detect(&self.fs, &ident, self.opts.lib_token.as_deref(), self.opts.platform.as_deref());
        let mut p = Process {
            objs: vec![Obj {
                path: real.to_string(),
                real: real.to_string(),
                info: info.clone(),
                loader: None,
                names: vec![],
                origin: dirname(real),
            }],
            ident,
            layout,
            next: 0,
        };
        if let Some(interp) = &info.interp {
            match self.fs.resolve(interp, "/") {
                Ok(res) => match self.parsed(&res.real) {
                    Parsed::Elf(iinfo) => {
                        self.add_resolved(&res, Reason::Interpreter { of: real.to_string() });
                        let mut names = vec![interp.clone()];
                        names.extend(iinfo.soname.clone());
                        p.objs.push(Obj {
                            path: interp.clone(),
                            real: res.real.clone(),
                            info: iinfo,
                            loader: None,
                            names,
                            origin: dirname(interp),
                        });
                    }
                    _ => self.out.note_missing(Missing {
                        name: interp.clone(),
                        needed_by: real.to_string(),
                        required: true,
                        detail: "PT_INTERP is not a usable ELF file".into(),
                    }),
                },
                Err(_) => self.out.note_missing(Missing {
                    name: interp.clone(),
                    needed_by: real.to_string(),
                    required: true,
                    detail: "PT_INTERP (the dynamic loader) not found".into(),
                }),
            }
        }
        // Preloads: LD_PRELOAD, then /etc/ld.so.preload (glibc's order).
        let mut preloads: Vec<(String, &str)> = Vec::new();
        if let Some(lp) = &self.opts.ld_preload {
            preloads.extend(lp.split([' ', ':']).filter(|s| !s.is_empty()).map(|s| (s.to_string(), "LD_PRELOAD")));
        }
        if info.interp.is_some()
            && let Ok(text) = self.fs.read("/etc/ld.so.preload", 1 << 20)
        {
            self.out.insert("/etc/ld.so.preload", Reason::Data { why: "read by ld.so at every start".into() });
            let text = String::from_utf8_lossy(&text).into_owned();
            preloads.extend(
                text.split([' ', '\t', '\n', ':'])
                    .filter(|s| !s.is_empty())
                    .map(|s| (s.to_string(), "/etc/ld.so.preload")),
            );
        }
        for (name, source) in preloads {
            let reason = |_: &Via| Reason::Preload { name: name.clone(), source: source.to_string() };
            self.map_object(&mut p, &name, MAIN, &reason, false);
        }
        self.walk(&mut p);
        // What ld.so --list shows: the program's DT_NEEDED closure.
        let listed = p.objs.len();
        for (path, res, linfo) in extra {
            if p.objs.iter().any(|o| o.real == res.real) {
                self.add_resolved(res, Reason::Library { loaded_by: Some(real.to_string()) });
                continue;
            }
            self.add_resolved(res, Reason::Library { loaded_by: Some(real.to_string()) });
            p.objs.push(Obj {
                path: path.clone(),
                real: res.real.clone(),
                info: linfo.clone(),
                loader: Some(MAIN),
                names: vec![path.clone()],
                origin: dirname(path),
            });
        }
        self.walk(&mut p);
        if self.opts.dlopen_rules {
            self.dlopen_rules(&mut p);
            self.walk(&mut p);
        }
        let ldd: Vec<LddEntry> = p
            .objs
            .iter()
            .take(listed)
            .skip(1)
            .map(|o| LddEntry {
                name: o.names.first().cloned().unwrap_or_else(|| o.path.clone()),
                path: o.path.clone(),
            })
            .collect();
        self.out.ldd.entry(real.to_string()).or_insert(ldd);
    }

    /// Maps the DT_NEEDED entries of every object not walked yet, breadth
    /// first (glibc's `_dl_map_object_deps`).
    fn walk(&mut self, p: &mut Process) {
        while p.next < p.objs.len() {
            let i = p.next;
            p.next += 1;
            let needed = p.objs[i].info.needed.clone();
            let by = p.objs[i].real.clone();
            for name in needed {
                let reason = |via: &Via| Reason::Needed { name: name.clone(), by: by.clone(), via: via.clone() };
                self.map_object(p, &name, i, &reason, true);
            }
        }
    }

    /// glibc's `_dl_map_object`: reuse a loaded object or search for `name`
    /// on behalf of object `loader`.
    fn map_object(
        &mut self,
        p: &mut Process,
        name: &str,
        loader: usize,
        reason: &dyn Fn(&Via) -> Reason,
        required: bool,
    ) -> Option<usize> {
        let name = dst::expand(name, &p.objs[loader].origin, &p.layout);
        // Already loaded under this name or SONAME?
        if let Some(i) = p.objs.iter().position(|o| o.names.contains(&name) || o.info.soname.as_deref() == Some(&name))
        {
            let real = p.objs[i].real.clone();
            self.out.insert(&real, reason(&Via::AlreadyLoaded));
            if !p.objs[i].names.contains(&name) {
                p.objs[i].names.push(name);
            }
            return Some(i);
        }
        let found = if name.contains('/') {
            let path = if name.starts_with('/') { name.clone() } else { join_path(&self.opts.workdir, &name) };
            match self.candidate(&path, &p.ident) {
                Candidate::Ok(res, info) => Ok(Found { path, res, info, via: Via::Path, variants: vec![] }),
                Candidate::Absent => Err("no such file".to_string()),
                Candidate::Skipped(why) | Candidate::Fatal(why) => Err(why),
            }
        } else {
            self.search(p, &name, loader)
        };
        let requester = p.objs[loader].real.clone();
        let found = match found {
            Ok(f) => f,
            Err(detail) => {
                self.out.note_missing(Missing { name, needed_by: requester, required, detail });
                return None;
            }
        };
        // The same file under another name (ld.so compares device and inode).
        if let Some(i) = p.objs.iter().position(|o| o.real == found.res.real) {
            self.add_resolved(&found.res, reason(&found.via));
            p.objs[i].names.push(name);
            return Some(i);
        }
        self.add_resolved(&found.res, reason(&found.via));
        let idx = p.objs.len();
        p.objs.push(Obj {
            origin: dirname(&found.path),
            path: found.path.clone(),
            real: found.res.real.clone(),
            info: found.info,
            loader: Some(loader),
            names: vec![name],
        });
        for (vpath, vres, vinfo) in found.variants {
            if p.objs.iter().any(|o| o.real == vres.real) {
                continue;
            }
            self.add_resolved(&vres, Reason::HwcapsVariant { of: found.res.real.clone() });
            p.objs.push(Obj {
                origin: dirname(&vpath),
                path: vpath,
                real: vres.real,
                info: vinfo,
                loader: Some(loader),
                names: vec![],
            });
        }
        Some(idx)
    }

    /// The search of `_dl_map_object` for a name without `/`.
    fn search(&mut self, p: &Process, name: &str, loader: usize) -> Result<Found, String> {
        let mut skipped: Vec<String> = Vec::new();
        let cwd = self.opts.workdir.clone();
        let lo = &p.objs[loader];
        // 1. DT_RPATH of the loader chain, then of the executable.
        if lo.info.runpath.is_none() {
            let mut chain = Vec::new();
            let mut l = Some(loader);
            while let Some(i) = l {
                chain.push(i);
                l = p.objs[i].loader;
            }
            if !chain.contains(&MAIN) {
                chain.push(MAIN);
            }
            for i in chain {
                let o = &p.objs[i];
                if let Some(rpath) = &o.info.rpath {
                    let dirs = dst::split_path(rpath, &[':'], &o.origin, &p.layout, &cwd);
                    let via = Via::Rpath { of: o.real.clone() };
                    if let Some(f) = self.search_dirs(p.ident, &dirs, name, &via, &mut skipped)? {
                        return Ok(f);
                    }
                }
            }
        }
        // 2. LD_LIBRARY_PATH.
        if let Some(llp) = &self.opts.ld_library_path {
            let dirs = dst::split_path(llp, &[':', ';'], &p.objs[MAIN].origin, &p.layout, &cwd);
            if let Some(f) = self.search_dirs(p.ident, &dirs, name, &Via::LdLibraryPath, &mut skipped)? {
                return Ok(f);
            }
        }
        // 3. DT_RUNPATH of the requester.
        if let Some(runpath) = &lo.info.runpath {
            let dirs = dst::split_path(runpath, &[':'], &lo.origin, &p.layout, &cwd);
            if let Some(f) = self.search_dirs(p.ident, &dirs, name, &Via::Runpath, &mut skipped)? {
                return Ok(f);
            }
        }
        if !lo.info.nodeflib {
            // 4. ld.so.cache.
            if let Some(cache) = self.ldcache() {
                let entries: Vec<_> = cache.lookup(name, &p.ident).cloned().collect();
                let mut primary = None;
                let mut variants = Vec::new();
                for e in entries
                    .iter()
                    .filter(|e| !e.is_hwcap_variant())
                    .chain(entries.iter().filter(|e| e.is_hwcap_variant()))
                {
                    match self.candidate(&e.value, &p.ident) {
                        Candidate::Ok(res, info) => {
                            if primary.is_none() && !e.is_hwcap_variant() {
                                primary = Some((e.value.clone(), res, info));
                            } else {
                                variants.push((e.value.clone(), res, info));
                            }
                        }
                        Candidate::Skipped(why) => skipped.push(why),
                        Candidate::Fatal(why) if !e.is_hwcap_variant() => return Err(why),
                        _ => {}
                    }
                }
                if primary.is_none() && !variants.is_empty() {
                    primary = Some(variants.remove(0));
                }
                if let Some((path, res, info)) = primary {
                    return Ok(Found { path, res, info, via: Via::LdSoCache, variants });
                }
            }
            // 5. Default directories.
            let dirs = p.layout.default_dirs.clone();
            if let Some(f) = self.search_dirs(p.ident, &dirs, name, &Via::DefaultDir, &mut skipped)? {
                return Ok(f);
            }
        }
        let mut detail = "not found".to_string();
        if !skipped.is_empty() {
            detail.push_str(&format!("; skipped: {}", skipped.join("; ")));
        }
        Err(detail)
    }

    fn search_dirs(
        &mut self,
        ident: Ident,
        dirs: &[String],
        name: &str,
        via: &Via,
        skipped: &mut Vec<String>,
    ) -> Result<Option<Found>, String> {
        for dir in dirs {
            // glibc-hwcaps subdirectories first (which one the CPU takes is
            // not known statically: keep every one present).
            let mut variants = Vec::new();
            let hw = join_path(dir, "glibc-hwcaps");
            if let Ok(res) = self.fs.resolve(&hw, &self.opts.workdir)
                && let Ok(subs) = self.fs.list_dir(&res.real)
            {
                for sub in subs {
                    let path = join_path(&join_path(&hw, &sub), name);
                    match self.candidate(&path, &ident) {
                        Candidate::Ok(r, i) => variants.push((path, r, i)),
                        Candidate::Skipped(why) => skipped.push(why),
                        _ => {}
                    }
                }
            }
            let path = join_path(dir, name);
            match self.candidate(&path, &ident) {
                Candidate::Ok(res, info) => {
                    return Ok(Some(Found { path, res, info, via: via.clone(), variants }));
                }
                Candidate::Skipped(why) => skipped.push(why),
                Candidate::Fatal(why) => return Err(why),
                Candidate::Absent => {}
            }
            if !variants.is_empty() {
                let (path, res, info) = variants.remove(0);
                return Ok(Some(Found { path, res, info, via: via.clone(), variants }));
            }
        }
        Ok(None)
    }

    /// ld.so's `open_verify` on one path.
    fn candidate(&mut self, path: &str, ident: &Ident) -> Candidate {
        let res = match self.fs.resolve(path, &self.opts.workdir) {
            Ok(r) => r,
            Err(_) => return Candidate::Absent,
        };
        match self.fs.lstat(&res.real) {
            Ok(m) if m.is_file() => {}
            _ => return Candidate::Absent,
        }
        let head = match self.fs.read_head(&res.real, 64) {
            Ok(h) => h,
            Err(_) => return Candidate::Absent,
        };
        let Some(cand) = Ident::from_header(&head) else {
            return Candidate::Fatal(format!("{path}: invalid ELF header"));
        };
        if !ident.accepts(&cand) {
            return Candidate::Skipped(format!(
                "{path} (wrong ELF class/machine: class {} machine {}, process wants class {} machine {})",
                cand.class, cand.machine, ident.class, ident.machine
            ));
        }
        match self.parsed(&res.real) {
            Parsed::Elf(info) => Candidate::Ok(res, info),
            Parsed::NotElf => Candidate::Fatal(format!("{path}: invalid ELF header")),
            Parsed::Bad(m) => Candidate::Fatal(format!("{path}: {m}")),
        }
    }

    // ---------------------------------------------------------- knowledge

    fn dlopen_rules(&mut self, p: &mut Process) {
        let Some(libc) = p.objs.iter().position(|o| o.info.soname.as_deref() == Some("libc.so.6")) else { return };
        self.saw_glibc = true;
        let libc_real = p.objs[libc].real.clone();
        let importers = |p: &Process, sym: &str| -> Vec<String> {
            let set: BTreeSet<String> =
                p.objs.iter().filter(|o| o.info.imports.contains(sym)).map(|o| o.real.clone()).collect();
            set.into_iter().collect()
        };
        let iconv = importers(p, "iconv_open");
        // libgcc_s for pthread_cancel / pthread_exit.
        let mut unwinders = importers(p, "pthread_cancel");
        unwinders.extend(importers(p, "pthread_exit"));
        if let Some(first) = unwinders.first() {
            let why = format!("glibc unwinds with it for pthread_cancel/pthread_exit, imported by {first}");
            let reason =
                |_: &Via| Reason::Dlopen { name: "libgcc_s.so.1".into(), by: libc_real.clone(), why: why.clone() };
            self.map_object(p, "libgcc_s.so.1", libc, &reason, false);
        }
        // NSS modules.
        let builtin = p.objs[libc].info.defines_version("GLIBC_2.34");
        let services =
            match self.fs.resolve("/etc/nsswitch.conf", "/").ok().and_then(|r| self.fs.read(&r.real, 1 << 20).ok()) {
                Some(text) => rules::nsswitch(&String::from_utf8_lossy(&text)),
                None => rules::nsswitch_defaults(),
            };
        let mut seen = HashSet::new();
        for (db, service) in services {
            if builtin && (service == "files" || service == "dns") {
                continue;
            }
            let module = format!("libnss_{service}.so.2");
            let reason = |_: &Via| Reason::Nss { database: db.clone(), service: service.clone() };
            if !seen.insert(module.clone()) {
                // Already mapped: add this database's reason too.
                if let Some(o) = p.objs.iter().find(|o| o.names.contains(&module)) {
                    let real = o.real.clone();
                    self.out.insert(&real, reason(&Via::AlreadyLoaded));
                }
                continue;
            }
            self.map_object(p, &module, libc, &reason, false);
        }
        // gconv modules when iconv is used.
        if let Some(importer) = iconv.first() {
            let dir = join_path(&dirname(&libc_real), "gconv");
            let reason_for = |importer: &str| Reason::Gconv { importer: importer.to_string() };
            match self.fs.resolve(&dir, "/") {
                Ok(res) => {
                    let importer = importer.clone();
                    self.add_resolved(&res, reason_for(&importer));
                    let mut stack = vec![res.real.clone()];
                    while let Some(d) = stack.pop() {
                        let Ok(names) = self.fs.list_dir(&d) else { continue };
                        for n in names {
                            let path = join_path(&d, &n);
                            let Ok(meta) = self.fs.lstat(&path) else { continue };
                            if meta.is_dir() {
                                stack.push(path);
                            } else if meta.file_type().is_symlink() {
                                if let Ok(r) = self.fs.resolve(&path, "/") {
                                    self.add_resolved(&r, reason_for(&importer));
                                }
                            } else if n.ends_with(".so") {
                                let reason = |_: &Via| reason_for(&importer);
                                self.map_object(p, &path, libc, &reason, false);
                            } else {
                                self.out.insert(&path, reason_for(&importer));
                            }
                        }
                    }
                }
                Err(_) => self.out.note_missing(Missing {
                    name: dir,
                    needed_by: importer.clone(),
                    required: false,
                    detail: "iconv_open is imported but there is no gconv directory next to libc".into(),
                }),
            }
        }
    }

    /// Data files, once every program is known.
    fn data_rules(&mut self) {
        if self.opts.data_files {
            let always = [
                ("/etc/passwd", "user database (USER, getpwuid, $HOME)"),
                ("/etc/group", "group database (USER, getgrgid)"),
            ];
            for (path, why) in always {
                self.add_data(path, why);
            }
            if self.saw_glibc {
                self.add_data("/etc/nsswitch.conf", "glibc reads it for every user, group and host lookup");
                self.add_data("/etc/ld.so.cache", "ld.so searches it for every library not found by RPATH/RUNPATH");
            }
            let tls: Vec<String> = self
                .out
                .files
                .keys()
                .filter(|k| {
                    let b = basename(k);
                    b.starts_with("libssl.so") || b.starts_with("libcrypto.so") || b.starts_with("libgnutls.so")
                })
                .cloned()
                .collect();
            if let Some(lib) = tls.first() {
                let why = format!("CA bundle for TLS clients ({lib} is in the closure)");
                if !self.add_data(CA_BUNDLE, &why) {
                    self.out.note_missing(Missing {
                        name: CA_BUNDLE.into(),
                        needed_by: lib.clone(),
                        required: false,
                        detail: "TLS library present but no CA bundle in the rootfs".into(),
                    });
                }
                if tls.iter().any(|l| basename(l).starts_with("libcrypto.so")) {
                    // OPENSSLDIR on Debian is /usr/lib/ssl (links into /etc/ssl).
                    for f in ["/usr/lib/ssl/openssl.cnf", "/usr/lib/ssl/cert.pem"] {
                        self.add_data(f, &format!("OpenSSL configuration read by {lib}"));
                    }
                    if let Ok(r) = self.fs.resolve_parent("/usr/lib/ssl/certs", "/")
                        && self.fs.lstat(&r.real).is_ok_and(|m| m.file_type().is_symlink())
                    {
                        self.out.insert(&r.real, Reason::Data { why: format!("OpenSSL CA directory link ({lib})") });
                    }
                }
            }
        }
        if self.opts.include_tzdata {
            for f in ["/etc/localtime", "/etc/timezone"] {
                if let Ok(r) = self.fs.resolve(f, "/") {
                    self.add_resolved(&r, Reason::Tzdata);
                }
            }
            if let Ok(r) = self.fs.resolve("/usr/share/zoneinfo", "/") {
                self.add_resolved(&r, Reason::Tzdata);
                let mut stack = vec![r.real];
                while let Some(d) = stack.pop() {
                    let Ok(names) = self.fs.list_dir(&d) else { continue };
                    for n in names {
                        let path = join_path(&d, &n);
                        let Ok(meta) = self.fs.lstat(&path) else { continue };
                        self.out.insert(&path, Reason::Tzdata);
                        if meta.is_dir() {
                            stack.push(path);
                        }
                    }
                }
            }
        }
    }

    /// Keeps a data file (and its symlink chain) if present.
    fn add_data(&mut self, path: &str, why: &str) -> bool {
        match self.fs.resolve(path, "/") {
            Ok(r) if self.fs.lstat(&r.real).is_ok_and(|m| m.is_file()) => {
                self.add_resolved(&r, Reason::Data { why: why.to_string() });
                true
            }
            _ => false,
        }
    }

    // ------------------------------------------------------------- helpers

    fn add_resolved(&mut self, res: &Resolved, reason: Reason) {
        for link in &res.links {
            self.out.insert(link, Reason::Symlink { target: res.real.clone() });
        }
        self.out.insert(&res.real, reason);
    }

    fn parsed(&mut self, real: &str) -> Parsed {
        if let Some(p) = self.parsed.get(real) {
            return p.clone();
        }
        let p = match self.fs.read(real, MAX_ELF) {
            Ok(bytes) => match parse::parse(&bytes) {
                Ok(Some(info)) => Parsed::Elf(Rc::new(info)),
                Ok(None) => Parsed::NotElf,
                Err(m) => Parsed::Bad(m),
            },
            Err(e) => Parsed::Bad(e.to_string()),
        };
        self.parsed.insert(real.to_string(), p.clone());
        p
    }

    fn ldcache(&mut self) -> Option<Rc<LdCache>> {
        if self.ldcache.is_none() {
            let cache = self
                .fs
                .resolve("/etc/ld.so.cache", "/")
                .ok()
                .and_then(|r| self.fs.read(&r.real, 256 << 20).ok())
                .and_then(|bytes| LdCache::parse(&bytes).ok())
                .map(Rc::new);
            self.ldcache = Some(cache);
        }
        self.ldcache.clone().flatten()
    }
}
