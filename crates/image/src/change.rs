//! `--change` for `distill import`: the Dockerfile instructions
//! `docker import --change` accepts, applied to a container config. A small
//! parser of its own (no variable expansion, as for `docker import`).

use std::collections::BTreeMap;

use serde_json::Value;
use thiserror::Error;

use crate::config::ContainerConfig;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ChangeError {
    #[error("--change {0:?}: empty instruction")]
    Empty(String),
    #[error(
        "--change {0:?}: {1} is not supported (use CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME or WORKDIR)"
    )]
    Unsupported(String, String),
    #[error("--change {0:?}: {1}")]
    Invalid(String, String),
}

/// Applies one instruction (`CMD ["app"]`, `ENV A=1 B=2`, ...) to `config`.
pub fn apply_change(config: &mut ContainerConfig, change: &str) -> Result<(), ChangeError> {
    let text = change.trim();
    let (keyword, rest) = match text.split_once(char::is_whitespace) {
        Some((k, r)) => (k, r.trim()),
        None => (text, ""),
    };
    if keyword.is_empty() {
        return Err(ChangeError::Empty(change.to_string()));
    }
    let invalid = |msg: &str| ChangeError::Invalid(change.to_string(), msg.to_string());
    let need_arg = || if rest.is_empty() { Err(invalid("needs an argument")) } else { Ok(()) };
    match keyword.to_ascii_uppercase().as_str() {
        "CMD" => {
            need_arg()?;
            config.cmd = Some(command_form(rest));
        }
        "ENTRYPOINT" => {
            need_arg()?;
            config.entrypoint = Some(command_form(rest));
            // As in Docker: a new ENTRYPOINT resets an inherited CMD.
            config.cmd = None;
        }
        "ENV" => {
            let env = config.env.get_or_insert_with(Vec::new);
            for (key, value) in name_values(rest, true).map_err(|m| invalid(&m))? {
                let prefix = format!("{key}=");
                let entry = format!("{key}={value}");
                match env.iter_mut().find(|e| e.starts_with(&prefix) || **e == key) {
                    Some(existing) => *existing = entry,
                    None => env.push(entry),
                }
            }
        }
        "LABEL" => {
            let labels = config.labels.get_or_insert_with(BTreeMap::new);
            for (key, value) in name_values(rest, true).map_err(|m| invalid(&m))? {
                labels.insert(key, value);
            }
        }
        "EXPOSE" => {
            need_arg()?;
            let ports = config.exposed_ports.get_or_insert_with(BTreeMap::new);
            for word in rest.split_whitespace() {
                for port in expose_ports(word).map_err(|m| invalid(&m))? {
                    ports.insert(port, Value::Object(Default::default()));
                }
            }
        }
        "USER" => {
            need_arg()?;
            config.user = Some(rest.to_string());
        }
        "WORKDIR" => {
            need_arg()?;
            let dir = if rest.starts_with('/') {
                rest.to_string()
            } else {
                let base = config.working_dir.as_deref().unwrap_or("/");
                format!("{}/{rest}", base.trim_end_matches('/'))
            };
            config.working_dir = Some(dir);
        }
        "VOLUME" => {
            need_arg()?;
            let volumes = config.volumes.get_or_insert_with(BTreeMap::new);
            let list = match json_array(rest) {
                Some(v) => v,
                None => rest.split_whitespace().map(str::to_string).collect(),
            };
            for v in list {
                if v.is_empty() {
                    return Err(invalid("VOLUME specified can not be an empty string"));
                }
                volumes.insert(v, Value::Object(Default::default()));
            }
        }
        "STOPSIGNAL" => {
            need_arg()?;
            config.stop_signal = Some(rest.to_string());
        }
        "ONBUILD" => {
            need_arg()?;
            config.on_build.get_or_insert_with(Vec::new).push(rest.to_string());
        }
        other => return Err(ChangeError::Unsupported(change.to_string(), other.to_string())),
    }
    Ok(())
}

/// Exec form (a JSON array of strings) or shell form (`/bin/sh -c ...`).
fn command_form(rest: &str) -> Vec<String> {
    json_array(rest).unwrap_or_else(|| vec!["/bin/sh".to_string(), "-c".to_string(), rest.to_string()])
}

fn json_array(rest: &str) -> Option<Vec<String>> {
    if !rest.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(rest).ok()
}

/// `k=v k2="v 2"`, or the legacy one-pair form `k v w` when the first word
/// has no `=`.
fn name_values(rest: &str, allow_legacy: bool) -> Result<Vec<(String, String)>, String> {
    if rest.is_empty() {
        return Err("needs at least one name=value".to_string());
    }
    let words = split_words(rest)?;
    let first_has_eq = words.first().is_some_and(|w| w.contains('='));
    if !first_has_eq && allow_legacy {
        let (key, value) = match rest.split_once(char::is_whitespace) {
            Some((k, v)) => (k.to_string(), v.trim().to_string()),
            None => return Err(format!("{rest:?} has no value")),
        };
        return Ok(vec![(key, value)]);
    }
    words
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some(("", _)) => Err(format!("{w:?}: the name is empty")),
            Some((k, v)) => Ok((k.to_string(), v.to_string())),
            None => Err(format!("{w:?} is not name=value")),
        })
        .collect()
}

/// Splits at unquoted whitespace; removes quotes; `\` escapes the next
/// character outside single quotes.
fn split_words(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err("unterminated single quote".to_string()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c) => cur.push(c),
                            None => return Err("unterminated double quote".to_string()),
                        },
                        Some(c) => cur.push(c),
                        None => return Err("unterminated double quote".to_string()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(c) = chars.next() {
                    cur.push(c);
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// `80` → `80/tcp`; `53/udp`; ranges `8000-8002` expand.
fn expose_ports(word: &str) -> Result<Vec<String>, String> {
    let (ports, proto) = match word.split_once('/') {
        Some((p, proto)) => (p, proto.to_ascii_lowercase()),
        None => (word, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid protocol in {word:?}"));
    }
    let parse = |p: &str| p.parse::<u16>().map_err(|_| format!("invalid port {word:?}"));
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (parse(a)?, parse(b)?),
        None => (parse(ports)?, parse(ports)?),
    };
    if lo > hi {
        return Err(format!("invalid port range {word:?}"));
    }
    Ok((lo..=hi).map(|p| format!("{p}/{proto}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(changes: &[&str]) -> ContainerConfig {
        let mut c = ContainerConfig::default();
        for ch in changes {
            apply_change(&mut c, ch).unwrap();
        }
        c
    }

    #[test]
    fn commands() {
        let c = apply(&[r#"CMD ["python3", "-c", "print(1)"]"#]);
        assert_eq!(c.cmd.unwrap(), ["python3", "-c", "print(1)"]);
        let c = apply(&["cmd echo hi && true"]);
        assert_eq!(c.cmd.unwrap(), ["/bin/sh", "-c", "echo hi && true"]);
        let c = apply(&["CMD x", r#"ENTRYPOINT ["/app"]"#]);
        assert_eq!(c.entrypoint.unwrap(), ["/app"]);
        assert!(c.cmd.is_none());
    }

    #[test]
    fn env_and_labels() {
        let c = apply(&[
            r#"ENV A=1 B="two words" C=x\ y"#,
            "ENV A=3",
            "ENV LEGACY some value",
            r#"LABEL "k 1"=v k2='a b'"#,
        ]);
        assert_eq!(c.env.unwrap(), ["A=3", "B=two words", "C=x y", "LEGACY=some value"]);
        let labels = c.labels.unwrap();
        assert_eq!(labels["k 1"], "v");
        assert_eq!(labels["k2"], "a b");
    }

    #[test]
    fn others() {
        let c = apply(&[
            "EXPOSE 80 53/udp 8000-8001",
            "USER 1000:1000",
            "WORKDIR /srv",
            "WORKDIR app",
            r#"VOLUME ["/data", "/logs"]"#,
            "VOLUME /cache",
            "STOPSIGNAL SIGTERM",
            "ONBUILD RUN true",
        ]);
        let ports: Vec<_> = c.exposed_ports.unwrap().into_keys().collect();
        assert_eq!(ports, ["53/udp", "80/tcp", "8000/tcp", "8001/tcp"]);
        assert_eq!(c.user.as_deref(), Some("1000:1000"));
        assert_eq!(c.working_dir.as_deref(), Some("/srv/app"));
        assert_eq!(c.volumes.unwrap().len(), 3);
        assert_eq!(c.stop_signal.as_deref(), Some("SIGTERM"));
        assert_eq!(c.on_build.unwrap(), ["RUN true"]);
    }

    #[test]
    fn errors() {
        let mut c = ContainerConfig::default();
        assert!(matches!(apply_change(&mut c, "FROM x"), Err(ChangeError::Unsupported(..))));
        assert!(matches!(apply_change(&mut c, "  "), Err(ChangeError::Empty(_))));
        assert!(apply_change(&mut c, "EXPOSE 99999").is_err());
        assert!(apply_change(&mut c, "EXPOSE 80/xyz").is_err());
        assert!(apply_change(&mut c, r#"ENV A="x"#).is_err());
        assert!(apply_change(&mut c, "ENV =x").is_err());
        assert!(apply_change(&mut c, "CMD").is_err());
    }
}
