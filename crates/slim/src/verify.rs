//! Verification: the same probes run in the fat and in the slim image must
//! exit the same way and print the same stdout. When they do not, name what
//! the slim image lacks: files the fat run opened (traced) that the slim
//! image does not have, and what the slim run's errors name (the loader's
//! "cannot open shared object file", Python's "No module named").

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

/// What one run of a probe gave.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProbeOutput {
    /// `None` when it did not exit within the time allowed.
    pub exit_code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// A probe whose slim run differs from its fat run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub probe: String,
    pub fat: ProbeOutput,
    pub slim: ProbeOutput,
    /// Files the slim image seems to lack (container paths or names).
    pub missing: Vec<String>,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = |c: Option<i32>| c.map_or("no exit (timed out)".to_string(), |c| format!("exit code {c}"));
        write!(
            f,
            "probe `{}`: fat image: {}, slim image: {}",
            self.probe,
            code(self.fat.exit_code),
            code(self.slim.exit_code)
        )?;
        if self.fat.stdout != self.slim.stdout {
            write!(f, "; stdout differs")?;
            write!(f, "\n  fat stdout:  {}", excerpt(&self.fat.stdout))?;
            write!(f, "\n  slim stdout: {}", excerpt(&self.slim.stdout))?;
        }
        if !self.slim.stderr.is_empty() {
            write!(f, "\n  slim stderr: {}", excerpt(&self.slim.stderr))?;
        }
        if self.missing.is_empty() {
            write!(f, "\n  no missing file could be named; try --trace, or --keep PATH")?;
        } else {
            write!(f, "\n  missing in the slim image (add with --keep, or use --trace):")?;
            for m in &self.missing {
                write!(f, "\n    {m}")?;
            }
        }
        Ok(())
    }
}

fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim_end();
    let lines: Vec<&str> = text.lines().collect();
    let tail = &lines[lines.len().saturating_sub(6)..];
    if tail.is_empty() { "(empty)".to_string() } else { tail.join("\n    ") }
}

/// `None` when the slim run behaves as the fat one (same exit, same stdout).
pub fn compare(probe: &str, fat: &ProbeOutput, slim: &ProbeOutput) -> Option<Mismatch> {
    if fat.exit_code == slim.exit_code && fat.stdout == slim.stdout {
        return None;
    }
    Some(Mismatch { probe: probe.to_string(), fat: fat.clone(), slim: slim.clone(), missing: Vec::new() })
}

/// Paths the fat run opened that the slim tree at `slim_root` lacks.
pub fn missing_from_trace(opened: &BTreeSet<String>, slim_root: &Path) -> Vec<String> {
    opened
        .iter()
        .filter(|p| !p.starts_with("/proc/") && !p.starts_with("/dev/") && !p.starts_with("/sys/"))
        .filter(|p| std::fs::symlink_metadata(slim_root.join(p.trim_start_matches('/'))).is_err())
        .cloned()
        .collect()
}

/// What the error output of a failed slim run says is missing.
pub fn missing_from_errors(stderr: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(stderr);
    let mut out = Vec::new();
    for line in text.lines() {
        // ld.so: "prog: error while loading shared libraries: libx.so.1: cannot open shared object file: …"
        if let Some(i) = line.find("error while loading shared libraries: ") {
            let rest = &line[i + "error while loading shared libraries: ".len()..];
            if let Some(name) = rest.split(':').next() {
                out.push(format!("{name} (shared library the loader could not find)"));
            }
        }
        // dlopen failures as libraries commonly print them.
        if let Some(i) = line.find(": cannot open shared object file") {
            let before = &line[..i];
            let name = before.rsplit([' ', ':']).next().unwrap_or(before);
            if !name.is_empty() && !out.iter().any(|o| o.starts_with(name)) {
                out.push(format!("{name} (shared library that could not be opened)"));
            }
        }
        // Python: "ModuleNotFoundError: No module named 'x'".
        if let Some(i) = line.find("No module named ") {
            let name = line[i + "No module named ".len()..].trim().trim_matches(|c| c == '\'' || c == '"');
            out.push(format!("python module {name}"));
        }
        // exec: "exec: \"x\": executable file not found" (runc), "x: not found" (sh).
        if line.contains("executable file not found") || line.contains("no such file or directory") {
            out.push(line.trim().to_string());
        }
    }
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_what_is_missing() {
        let m = missing_from_errors(
            b"/app/x: error while loading shared libraries: libfoo.so.1: cannot open shared object file: No such file or directory\n",
        );
        assert_eq!(m, ["libfoo.so.1 (shared library the loader could not find)"]);
        let m = missing_from_errors(b"dlopen failed: libplugin.so: cannot open shared object file: No such file\n");
        assert_eq!(m, ["libplugin.so (shared library that could not be opened)"]);
        let m = missing_from_errors(b"ModuleNotFoundError: No module named 'decimal'\n");
        assert_eq!(m, ["python module decimal"]);
    }

    #[test]
    fn compare_checks_exit_and_stdout_only() {
        let a = ProbeOutput { exit_code: Some(0), stdout: b"42\n".to_vec(), stderr: b"warn".to_vec() };
        let b = ProbeOutput { exit_code: Some(0), stdout: b"42\n".to_vec(), stderr: Vec::new() };
        assert!(compare("p", &a, &b).is_none());
        let c = ProbeOutput { exit_code: Some(127), stdout: Vec::new(), stderr: Vec::new() };
        let m = compare("p", &a, &c).unwrap();
        assert!(m.to_string().contains("exit code 0"), "{m}");
    }
}
