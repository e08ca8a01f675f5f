//! Text formats the knowledge rules read: `#!` lines and `nsswitch.conf`.

/// The kernel's `#!` buffer (`BINPRM_BUF_SIZE`, 256 since Linux 5.1).
pub(crate) const SHEBANG_BUF: usize = 256;

/// A parsed `#!` line: the interpreter path and its optional argument (the
/// kernel passes the rest of the line, trimmed, as one argument).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Shebang {
    pub interp: String,
    pub arg: Option<String>,
}

/// Parses the start of a file as the kernel's `binfmt_script` does.
pub(crate) fn shebang(head: &[u8]) -> Option<Shebang> {
    let line = head.strip_prefix(b"#!")?;
    let line = &line[..line.iter().position(|&b| b == b'\n').unwrap_or(line.len())];
    let line = String::from_utf8_lossy(line);
    let line = line.trim_matches(|c| c == ' ' || c == '\t' || c == '\r' || c == '\0');
    let (interp, arg) = match line.find([' ', '\t']) {
        Some(i) => (&line[..i], Some(line[i..].trim_matches(|c| c == ' ' || c == '\t').to_string())),
        None => (line, None),
    };
    if interp.is_empty() {
        return None;
    }
    Some(Shebang { interp: interp.to_string(), arg: arg.filter(|a| !a.is_empty()) })
}

/// The program `env` runs, from its arguments (`-S`/`--split-string`
/// splitting, options and `NAME=VALUE` assignments skipped).
pub(crate) fn env_program(arg: &str) -> Option<String> {
    let mut words = arg.split_whitespace();
    while let Some(w) = words.next() {
        match w {
            "-S" | "--split-string" | "-i" | "--ignore-environment" | "-0" | "--null" | "-v" | "--debug" => {}
            "-u" | "--unset" | "-C" | "--chdir" => {
                words.next();
            }
            _ if w.starts_with("-S") => {
                // `-Spython3 -u`: the program follows -S directly.
                let rest = &w[2..];
                if !rest.is_empty() && !rest.contains('=') {
                    return Some(rest.to_string());
                }
            }
            _ if w.starts_with('-') => {}
            _ if w.contains('=') => {}
            _ => return Some(w.to_string()),
        }
    }
    None
}

/// `(database, service)` pairs of an `nsswitch.conf`, in file order, action
/// items (`[NOTFOUND=return]`) skipped.
pub(crate) fn nsswitch(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let Some((db, services)) = line.split_once(':') else { continue };
        let db = db.trim();
        if db.is_empty() || db.contains(char::is_whitespace) {
            continue;
        }
        let mut in_action = false;
        for word in services.split_whitespace() {
            if word.starts_with('[') {
                in_action = !word.ends_with(']');
                continue;
            }
            if in_action {
                in_action = !word.ends_with(']');
                continue;
            }
            out.push((db.to_string(), word.to_string()));
        }
    }
    out
}

/// glibc's built-in defaults when `/etc/nsswitch.conf` is absent
/// (`nss/nsswitch.c`: `hosts: dns [!UNAVAIL=return] files`, others `files`).
pub(crate) fn nsswitch_defaults() -> Vec<(String, String)> {
    ["passwd", "group", "shadow", "hosts", "services", "networks", "protocols", "rpc", "ethers", "netgroup"]
        .iter()
        .flat_map(|db| {
            let svcs: &[&str] = if *db == "hosts" { &["dns", "files"] } else { &["files"] };
            svcs.iter().map(move |s| (db.to_string(), s.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shebang_lines() {
        assert_eq!(shebang(b"#!/bin/sh\necho"), Some(Shebang { interp: "/bin/sh".into(), arg: None }));
        assert_eq!(
            shebang(b"#! /usr/bin/env  python3 -u \r\n"),
            Some(Shebang { interp: "/usr/bin/env".into(), arg: Some("python3 -u".into()) })
        );
        assert_eq!(shebang(b"#!\n"), None);
        assert_eq!(shebang(b"\x7fELF"), None);
        assert_eq!(shebang(b"#!/bin/bash"), Some(Shebang { interp: "/bin/bash".into(), arg: None }));
    }

    #[test]
    fn env_arguments() {
        assert_eq!(env_program("python3"), Some("python3".into()));
        assert_eq!(env_program("-S python3 -u"), Some("python3".into()));
        assert_eq!(env_program("-Snode --flag"), Some("node".into()));
        assert_eq!(env_program("-i FOO=1 -u BAR perl -w"), Some("perl".into()));
        assert_eq!(env_program("-S"), None);
    }

    #[test]
    fn nsswitch_services() {
        let text = "# comment\npasswd:  files systemd\nhosts: files [NOTFOUND=return] dns\nnetgroup: nis\n\n";
        assert_eq!(
            nsswitch(text),
            vec![
                ("passwd".to_string(), "files".to_string()),
                ("passwd".to_string(), "systemd".to_string()),
                ("hosts".to_string(), "files".to_string()),
                ("hosts".to_string(), "dns".to_string()),
                ("netgroup".to_string(), "nis".to_string()),
            ]
        );
        assert!(nsswitch_defaults().contains(&("hosts".to_string(), "dns".to_string())));
    }
}
