//! `RUN --mount` and `RUN --device` values (BuildKit's
//! `commands_runmount.go` and `commands_rundevice.go`).
//!
//! A mount value is one CSV record of `key=value` fields. Option values other
//! than `from` are expanded with ARG/ENV later, so at parse time a value
//! containing `$` is kept as written and only checked after expansion
//! ([`super::Instruction::validate`]). Everything that does not depend on
//! such a value (keys, the type, which options the type allows, `from`) is
//! checked at parse time.

use std::borrow::Cow;
use std::fmt;

use serde::Serialize;

use super::error::{CsvError, DeviceError, MountError};
use super::values::{parse_go_bool, parse_go_u32, parse_ram_size, suggest};

/// Every option key a mount accepts.
pub const MOUNT_KEYS: &[&str] = &[
    "type",
    "from",
    "source",
    "src",
    "target",
    "dst",
    "destination",
    "ro",
    "readonly",
    "rw",
    "readwrite",
    "id",
    "sharing",
    "required",
    "size",
    "mode",
    "uid",
    "gid",
    "env",
];

const MOUNT_TYPES: &[&str] = &["bind", "cache", "tmpfs", "secret", "ssh"];
const SHARING_MODES: &[&str] = &["shared", "private", "locked"];

/// The `type=` of a mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    Bind,
    Cache,
    Tmpfs,
    Secret,
    Ssh,
}

impl MountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MountKind::Bind => "bind",
            MountKind::Cache => "cache",
            MountKind::Tmpfs => "tmpfs",
            MountKind::Secret => "secret",
            MountKind::Ssh => "ssh",
        }
    }

    fn parse(s: &str) -> Option<MountKind> {
        Some(match s.to_lowercase().as_str() {
            "bind" => MountKind::Bind,
            "cache" => MountKind::Cache,
            "tmpfs" => MountKind::Tmpfs,
            "secret" => MountKind::Secret,
            "ssh" => MountKind::Ssh,
            _ => return None,
        })
    }

    /// Whether `mode`, `uid` and `gid` apply.
    fn takes_file_info(self) -> bool {
        matches!(self, MountKind::Cache | MountKind::Secret | MountKind::Ssh)
    }
}

impl fmt::Display for MountKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `sharing=` of a cache mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Sharing {
    Shared,
    Private,
    Locked,
}

/// One field of a mount value, as written (key lowercased). `value` is None
/// for a bare field such as `ro` or `required`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MountOption {
    pub key: String,
    pub value: Option<String>,
}

/// A parsed `RUN --mount`. String fields hold the text as written (before
/// expansion) until [`super::Instruction::expand`] produces an expanded copy.
/// Empty values count as absent, as in BuildKit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mount {
    #[serde(rename = "type")]
    pub kind: MountKind,
    pub target: Option<String>,
    pub source: Option<String>,
    /// Stage, image or named context for bind and cache mounts (never expanded).
    pub from: Option<String>,
    /// Read-only: explicit `ro`/`rw`, else true for bind, secret and ssh.
    pub readonly: bool,
    /// `id=`: the cache id, secret id or SSH agent id.
    pub id: Option<String>,
    pub sharing: Option<Sharing>,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// tmpfs size limit in bytes.
    pub size: Option<u64>,
    pub required: bool,
    /// Secret exposed as an environment variable (`Some("")` means: named after the id).
    pub env: Option<String>,
    /// The flag value exactly as written.
    pub raw: String,
    /// The fields in order; values are expanded in an expanded copy.
    pub options: Vec<MountOption>,
}

impl Mount {
    /// The id BuildKit uses for the mount: for cache mounts `id` or else the
    /// target; for secrets `source`, else `id`, else the base name of the
    /// target; for SSH `id` or else `default`. None for bind and tmpfs.
    pub fn effective_id(&self) -> Option<String> {
        match self.kind {
            MountKind::Cache => self.id.clone().or_else(|| self.target.clone()),
            MountKind::Secret => {
                self.source.clone().or_else(|| self.id.clone()).or_else(|| self.target.as_deref().map(go_path_base))
            }
            MountKind::Ssh => Some(self.id.clone().unwrap_or_else(|| "default".to_string())),
            MountKind::Bind | MountKind::Tmpfs => None,
        }
    }

    /// The target BuildKit uses: as written, else `/run/secrets/<id>` for a
    /// secret (unless it is exposed only as an environment variable), else
    /// `/run/buildkit/ssh_agent.<ssh_index>` for the `ssh_index`-th SSH mount
    /// (0-based) of the instruction.
    pub fn effective_target(&self, ssh_index: usize) -> Option<String> {
        if let Some(t) = &self.target {
            return Some(t.clone());
        }
        match self.kind {
            MountKind::Secret if self.env.is_none() => {
                self.effective_id().map(|id| format!("/run/secrets/{}", go_path_base(&id)))
            }
            MountKind::Ssh => Some(format!("/run/buildkit/ssh_agent.{ssh_index}")),
            _ => None,
        }
    }
}

/// Go's `path.Base`.
fn go_path_base(p: &str) -> String {
    if p.is_empty() {
        return ".".to_string();
    }
    let trimmed = p.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/".to_string();
    }
    match trimmed.rfind('/') {
        Some(i) => trimmed[i + 1..].to_string(),
        None => trimmed.to_string(),
    }
}

/// Parses a mount value. With `deferred`, values containing `$` (other than
/// `from`) are not interpreted: they are checked after expansion.
pub fn parse_mount(spec: &str, deferred: bool) -> Result<Mount, MountError> {
    let fields = parse_csv(spec).map_err(MountError::Csv)?;
    let options = fields
        .into_iter()
        .map(|field| match field.split_once('=') {
            Some((k, v)) => MountOption { key: k.to_lowercase(), value: Some(v.to_string()) },
            None => MountOption { key: field.to_lowercase(), value: None },
        })
        .collect();
    let (mount, err) = build_mount(spec.to_string(), options, deferred);
    match err {
        Some(e) => Err(e),
        None => Ok(mount),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Presence {
    Absent,
    /// Written with `$`: known only after expansion.
    Maybe,
    Present,
}

/// Builds a mount from its fields, best effort: the mount is always
/// returned, together with the first problem found (BuildKit's order).
pub(crate) fn build_mount(raw: String, options: Vec<MountOption>, deferred: bool) -> (Mount, Option<MountError>) {
    let (mut m, first) = interpret(&options, deferred);
    m.raw = raw;
    m.options = options;
    (m, first)
}

/// The first problem of a mount with these (expanded) fields, if any.
pub(crate) fn mount_problem(options: &[MountOption]) -> Option<MountError> {
    interpret(options, false).1
}

/// The typed fields of a mount (`raw` and `options` left empty) and the
/// first problem found.
fn interpret(options: &[MountOption], deferred: bool) -> (Mount, Option<MountError>) {
    let mut m = Mount {
        kind: MountKind::Bind,
        target: None,
        source: None,
        from: None,
        readonly: false,
        id: None,
        sharing: None,
        mode: None,
        uid: None,
        gid: None,
        size: None,
        required: false,
        env: None,
        raw: String::new(),
        options: Vec::new(),
    };
    let mut first: Option<MountError> = None;
    let mut fail = |e: MountError| {
        if first.is_none() {
            first = Some(e);
        }
    };
    let mut kind_known = true;
    let mut ro_auto = true;
    let (mut has_mode, mut has_uid, mut has_gid, mut has_sharing) = (false, false, false, false);
    let (mut source, mut target, mut id) = (Presence::Absent, Presence::Absent, Presence::Absent);
    let secret_or_ssh = |k: MountKind| matches!(k, MountKind::Secret | MountKind::Ssh);

    for opt in options {
        let key = opt.key.as_str();
        let Some(value) = opt.value.as_deref() else {
            match key {
                "ro" | "readonly" => {
                    m.readonly = true;
                    ro_auto = false;
                }
                "rw" | "readwrite" => {
                    m.readonly = false;
                    ro_auto = false;
                }
                "required" => {
                    if kind_known && !secret_or_ssh(m.kind) {
                        fail(MountError::KeyNotAllowed { key: "required", kind: m.kind });
                    }
                    m.required = true;
                }
                _ => fail(MountError::NotKeyValue { field: opt.key.clone() }),
            }
            continue;
        };
        let later = deferred && value.contains('$');
        let presence = if later {
            Presence::Maybe
        } else if value.is_empty() {
            Presence::Absent
        } else {
            Presence::Present
        };
        let non_empty = (!value.is_empty()).then(|| value.to_string());
        match key {
            "type" => {
                if later {
                    kind_known = false;
                } else {
                    match MountKind::parse(value) {
                        Some(k) => {
                            m.kind = k;
                            kind_known = true;
                        }
                        None => fail(MountError::UnsupportedType {
                            value: value.to_string(),
                            suggestion: suggest(value, MOUNT_TYPES, true),
                        }),
                    }
                }
            }
            "from" => {
                if let Some(i) = value.find('$')
                    && i != value.len() - 1
                {
                    fail(MountError::FromExpansion { value: value.to_string() });
                }
                m.from = non_empty;
            }
            "source" | "src" => {
                m.source = non_empty;
                source = presence;
            }
            "target" | "dst" | "destination" => {
                m.target = non_empty;
                target = presence;
            }
            "id" => {
                m.id = non_empty;
                id = presence;
            }
            "env" => m.env = Some(value.to_string()),
            "ro" | "readonly" | "rw" | "readwrite" => {
                ro_auto = false;
                if !later {
                    match parse_go_bool(value) {
                        Some(b) => m.readonly = if matches!(key, "ro" | "readonly") { b } else { !b },
                        None => fail(MountError::InvalidBool { key: key.to_string(), value: value.to_string() }),
                    }
                }
            }
            "required" => {
                if kind_known && !secret_or_ssh(m.kind) {
                    fail(MountError::KeyNotAllowed { key: "required", kind: m.kind });
                } else if !later {
                    match parse_go_bool(value) {
                        Some(b) => m.required = b,
                        None => fail(MountError::InvalidBool { key: key.to_string(), value: value.to_string() }),
                    }
                }
            }
            "size" => {
                if kind_known && m.kind != MountKind::Tmpfs {
                    fail(MountError::KeyNotAllowed { key: "size", kind: m.kind });
                } else if !later {
                    match parse_ram_size(value) {
                        Some(n) => m.size = Some(n),
                        None => fail(MountError::InvalidSize { value: value.to_string() }),
                    }
                }
            }
            "sharing" => {
                has_sharing = true;
                if !later {
                    m.sharing = match value.to_lowercase().as_str() {
                        "shared" => Some(Sharing::Shared),
                        "private" => Some(Sharing::Private),
                        "locked" => Some(Sharing::Locked),
                        _ => {
                            fail(MountError::InvalidSharing {
                                value: value.to_string(),
                                suggestion: suggest(value, SHARING_MODES, true),
                            });
                            None
                        }
                    };
                }
            }
            "mode" => {
                has_mode = true;
                if !later {
                    match parse_go_u32(value, 8) {
                        Some(n) => m.mode = Some(n),
                        None => fail(MountError::InvalidMode { value: value.to_string() }),
                    }
                }
            }
            "uid" | "gid" => {
                let which = if key == "uid" { "uid" } else { "gid" };
                if which == "uid" {
                    has_uid = true;
                } else {
                    has_gid = true;
                }
                if !later {
                    match parse_go_u32(value, 10) {
                        Some(n) if which == "uid" => m.uid = Some(n),
                        Some(n) => m.gid = Some(n),
                        None => fail(MountError::InvalidId { key: which, value: value.to_string() }),
                    }
                }
            }
            _ => fail(MountError::UnknownKey {
                key: key.to_string(),
                field: format!("{key}={value}"),
                suggestion: suggest(key, MOUNT_KEYS, true),
            }),
        }
    }

    if ro_auto {
        m.readonly = !matches!(m.kind, MountKind::Cache | MountKind::Tmpfs);
    }
    if kind_known {
        if !m.kind.takes_file_info() {
            for (present, key) in [(has_mode, "mode"), (has_uid, "uid"), (has_gid, "gid")] {
                if present {
                    fail(MountError::KeyNotAllowed { key, kind: m.kind });
                }
            }
        }
        match m.kind {
            MountKind::Secret => {
                if m.from.is_some() {
                    fail(MountError::FromNotAllowed { kind: m.kind });
                }
                if has_sharing {
                    fail(MountError::KeyNotAllowed { key: "sharing", kind: m.kind });
                }
                if source == Presence::Absent && target == Presence::Absent && id == Presence::Absent {
                    fail(MountError::SecretWithoutId);
                }
                if source == Presence::Present && id == Presence::Present {
                    fail(MountError::SecretSourceAndId);
                }
            }
            MountKind::Ssh => {
                if m.from.is_some() {
                    fail(MountError::FromNotAllowed { kind: m.kind });
                }
                if source == Presence::Present {
                    fail(MountError::SshSource);
                }
            }
            MountKind::Bind | MountKind::Cache | MountKind::Tmpfs => {}
        }
        if has_sharing && m.kind != MountKind::Cache {
            fail(MountError::KeyNotAllowed { key: "sharing", kind: m.kind });
        }
        if matches!(m.kind, MountKind::Bind | MountKind::Cache | MountKind::Tmpfs) && target == Presence::Absent {
            fail(MountError::MissingTarget { kind: m.kind });
        }
    }
    (m, first)
}

/// One `RUN --device` (CDI device name, optionally required).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Device {
    pub name: String,
    pub required: bool,
    /// The flag value exactly as written.
    pub raw: String,
}

/// BuildKit's `ParseDevice`: `name[,required[=bool]]` or `name=<name>,...`.
/// A field with an unknown key is taken as the name when none is set yet
/// (CDI names such as `vendor.com/class=all` contain `=`).
pub fn parse_device(spec: &str) -> Result<Device, DeviceError> {
    let fields = parse_csv(spec).map_err(DeviceError::Csv)?;
    let mut d = Device { name: String::new(), required: false, raw: spec.to_string() };
    for field in fields {
        let field = field.into_owned();
        let Some((key, value)) = field.split_once('=') else {
            if field.eq_ignore_ascii_case("required") {
                d.required = true;
            } else if d.name.is_empty() {
                d.name = field;
            } else {
                return Err(DeviceError::NotKeyValue { field });
            }
            continue;
        };
        match key.to_lowercase().as_str() {
            "name" => {
                if !d.name.is_empty() {
                    return Err(DeviceError::NameAlreadySet { name: d.name });
                }
                d.name = value.to_string();
            }
            "required" => {
                d.required =
                    parse_go_bool(value).ok_or_else(|| DeviceError::InvalidBool { value: value.to_string() })?;
            }
            _ => {
                if d.name.is_empty() {
                    d.name = field;
                } else {
                    return Err(DeviceError::UnknownKey { key: key.to_lowercase(), field });
                }
            }
        }
    }
    Ok(d)
}

/// Splits one CSV record as Go's `encoding/csv` does (comma separator,
/// `"`-quoted fields with `""` for a quote, no lazy quotes).
/// Fields are borrowed from `line` unless quoted.
pub(crate) fn parse_csv(line: &str) -> Result<Vec<Cow<'_, str>>, CsvError> {
    let mut fields = Vec::new();
    let mut rest = line;
    loop {
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut field = String::new();
            let mut s = quoted;
            loop {
                let Some(i) = s.find('"') else {
                    return Err(CsvError::QuotedField);
                };
                field.push_str(&s[..i]);
                let after = &s[i + 1..];
                if let Some(r) = after.strip_prefix('"') {
                    field.push('"');
                    s = r;
                } else if after.is_empty() {
                    fields.push(Cow::Owned(field));
                    return Ok(fields);
                } else if let Some(r) = after.strip_prefix(',') {
                    fields.push(Cow::Owned(field));
                    rest = r;
                    break;
                } else {
                    return Err(CsvError::QuotedField);
                }
            }
        } else {
            let (field, next) = match rest.find(',') {
                Some(i) => (&rest[..i], Some(&rest[i + 1..])),
                None => (rest, None),
            };
            if field.contains('"') {
                return Err(CsvError::BareQuote { field: field.to_string() });
            }
            fields.push(Cow::Borrowed(field));
            match next {
                Some(r) => rest = r,
                None => return Ok(fields),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(spec: &str) -> Mount {
        parse_mount(spec, true).unwrap_or_else(|e| panic!("{spec}: {e}"))
    }

    fn err(spec: &str) -> MountError {
        match parse_mount(spec, true) {
            Ok(m) => panic!("{spec}: expected an error, got {m:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn csv() {
        assert_eq!(parse_csv("a,b").unwrap(), vec!["a", "b"]);
        assert_eq!(parse_csv("a,").unwrap(), vec!["a", ""]);
        assert_eq!(parse_csv("").unwrap(), vec![""]);
        assert_eq!(parse_csv("\"a,b\",c").unwrap(), vec!["a,b", "c"]);
        assert_eq!(parse_csv("\"a\"\"b\"").unwrap(), vec!["a\"b"]);
        assert_eq!(parse_csv("x,\"\"").unwrap(), vec!["x", ""]);
        assert!(matches!(parse_csv("a\"b"), Err(CsvError::BareQuote { .. })));
        assert!(matches!(parse_csv("\"ab"), Err(CsvError::QuotedField)));
        assert!(matches!(parse_csv("\"a\"b"), Err(CsvError::QuotedField)));
    }

    #[test]
    fn default_bind() {
        let m = ok("target=/src");
        assert_eq!(m.kind, MountKind::Bind);
        assert_eq!(m.target.as_deref(), Some("/src"));
        assert!(m.readonly);
        let m = ok("type=bind,source=/a,dst=/b,from=build,rw");
        assert_eq!(m.source.as_deref(), Some("/a"));
        assert_eq!(m.from.as_deref(), Some("build"));
        assert!(!m.readonly);
        let m = ok("type=BIND,destination=/b,readwrite=true");
        assert!(!m.readonly);
        let m = ok("target=/b,ro=false");
        assert!(!m.readonly);
        let m = ok("target=/b,rw=false");
        assert!(m.readonly);
        let m = ok("target=/b,readonly=1");
        assert!(m.readonly);
    }

    #[test]
    fn cache() {
        let m =
            ok("type=cache,target=/root/.cache,id=pip,sharing=LOCKED,mode=0700,uid=1000,gid=1000,from=base,source=/c");
        assert_eq!(m.kind, MountKind::Cache);
        assert!(!m.readonly);
        assert_eq!(m.sharing, Some(Sharing::Locked));
        assert_eq!(m.mode, Some(0o700));
        assert_eq!(m.uid, Some(1000));
        assert_eq!(m.gid, Some(1000));
        assert_eq!(m.effective_id().as_deref(), Some("pip"));
        assert_eq!(ok("type=cache,target=/x").effective_id().as_deref(), Some("/x"));
        assert!(ok("type=cache,target=/x,ro").readonly);
    }

    #[test]
    fn tmpfs_secret_ssh() {
        let m = ok("type=tmpfs,target=/t,size=64m");
        assert_eq!(m.size, Some(64 << 20));
        assert!(!m.readonly);
        let m = ok("type=secret,id=aws");
        assert!(m.readonly);
        assert_eq!(m.effective_target(0).as_deref(), Some("/run/secrets/aws"));
        let m = ok("type=secret,target=/root/.aws/credentials,required,mode=0400,uid=1,gid=2");
        assert!(m.required);
        assert_eq!(m.effective_id().as_deref(), Some("credentials"));
        let m = ok("type=secret,id=tok,env=TOKEN,required=false");
        assert_eq!(m.env.as_deref(), Some("TOKEN"));
        assert_eq!(m.effective_target(0), None);
        let m = ok("type=ssh");
        assert_eq!(m.effective_id().as_deref(), Some("default"));
        assert_eq!(m.effective_target(2).as_deref(), Some("/run/buildkit/ssh_agent.2"));
        let m = ok("type=ssh,id=gh,required=true,mode=0600");
        assert!(m.required);
        assert_eq!(m.mode, Some(0o600));
    }

    #[test]
    fn rule_violations() {
        assert!(matches!(err("type=nfs,target=/x"), MountError::UnsupportedType { .. }));
        assert!(matches!(err("type=cach,target=/x"), MountError::UnsupportedType { suggestion: Some("cache"), .. }));
        assert!(matches!(err("target=/x,foo=bar"), MountError::UnknownKey { .. }));
        assert!(matches!(err("target=/x,targt=/y"), MountError::UnknownKey { suggestion: Some("target"), .. }));
        assert!(matches!(err("target=/x,bogus"), MountError::NotKeyValue { .. }));
        assert!(matches!(err("type=bind"), MountError::MissingTarget { kind: MountKind::Bind }));
        assert!(matches!(err("type=cache,id=x"), MountError::MissingTarget { kind: MountKind::Cache }));
        assert!(matches!(err("type=tmpfs"), MountError::MissingTarget { kind: MountKind::Tmpfs }));
        assert!(matches!(err("type=bind,target=/x,mode=0755"), MountError::KeyNotAllowed { key: "mode", .. }));
        assert!(matches!(err("type=tmpfs,target=/x,uid=1"), MountError::KeyNotAllowed { key: "uid", .. }));
        assert!(matches!(err("type=bind,target=/x,gid=1"), MountError::KeyNotAllowed { key: "gid", .. }));
        assert!(matches!(err("type=cache,target=/x,required"), MountError::KeyNotAllowed { key: "required", .. }));
        assert!(matches!(err("target=/x,required=true"), MountError::KeyNotAllowed { key: "required", .. }));
        assert!(matches!(err("required,type=secret,id=x"), MountError::KeyNotAllowed { key: "required", .. }));
        assert!(matches!(err("type=cache,target=/x,size=1m"), MountError::KeyNotAllowed { key: "size", .. }));
        assert!(matches!(err("type=bind,target=/x,sharing=shared"), MountError::KeyNotAllowed { key: "sharing", .. }));
        assert!(matches!(err("type=secret,id=x,sharing=shared"), MountError::KeyNotAllowed { key: "sharing", .. }));
        assert!(matches!(err("type=secret,id=x,from=build"), MountError::FromNotAllowed { kind: MountKind::Secret }));
        assert!(matches!(err("type=ssh,from=build"), MountError::FromNotAllowed { kind: MountKind::Ssh }));
        assert!(matches!(err("type=ssh,source=/x"), MountError::SshSource));
        assert!(matches!(err("type=secret"), MountError::SecretWithoutId));
        assert!(matches!(err("type=secret,required"), MountError::SecretWithoutId));
        assert!(matches!(err("type=secret,id=a,source=b"), MountError::SecretSourceAndId));
        assert!(matches!(err("type=cache,target=/x,sharing=everyone"), MountError::InvalidSharing { .. }));
        assert!(matches!(err("type=cache,target=/x,mode=0999"), MountError::InvalidMode { .. }));
        assert!(matches!(err("type=cache,target=/x,uid=-1"), MountError::InvalidId { key: "uid", .. }));
        assert!(matches!(err("type=cache,target=/x,gid=x"), MountError::InvalidId { key: "gid", .. }));
        assert!(matches!(err("type=tmpfs,target=/x,size=huge"), MountError::InvalidSize { .. }));
        assert!(matches!(err("target=/x,ro=maybe"), MountError::InvalidBool { .. }));
        assert!(matches!(err("target=/x,from=$STAGE"), MountError::FromExpansion { .. }));
        assert!(matches!(err("target=/x,from=${STAGE}"), MountError::FromExpansion { .. }));
        assert!(matches!(err("target=/x,\"a"), MountError::Csv(_)));
        assert!(matches!(err(""), MountError::NotKeyValue { .. }));
    }

    #[test]
    fn from_with_trailing_dollar_is_fine() {
        assert_eq!(ok("target=/x,from=a$").from.as_deref(), Some("a$"));
    }

    #[test]
    fn deferred_values_are_checked_later() {
        let m = ok("type=cache,target=$DIR,mode=$MODE,uid=${UID},sharing=$S");
        assert_eq!(m.target.as_deref(), Some("$DIR"));
        assert_eq!(m.mode, None);
        // The type-dependent rules still apply when the type is known.
        assert!(matches!(err("type=bind,target=/x,mode=$M"), MountError::KeyNotAllowed { key: "mode", .. }));
        // With an unknown type, only type-independent rules apply.
        ok("type=$T,target=/x,size=$S,mode=1");
        // A target that may expand to something counts as present.
        ok("type=bind,target=$T");
        // Strictly (after expansion) values are checked.
        assert!(matches!(parse_mount("type=cache,target=/x,mode=$M", false), Err(MountError::InvalidMode { .. })));
    }

    #[test]
    fn messages() {
        assert_eq!(
            err("type=bind,target=/x,size=1m").to_string(),
            "size is not allowed for type=bind mounts (size is only for tmpfs mounts)"
        );
        assert_eq!(
            err("target=/x,bogus=1").to_string(),
            "unexpected key \"bogus\" in \"bogus=1\" (allowed: type, from, source, src, target, dst, destination, ro, \
             readonly, rw, readwrite, id, sharing, required, size, mode, uid, gid, env)"
        );
    }

    #[test]
    fn devices() {
        let d = parse_device("nvidia.com/gpu=all").unwrap();
        assert_eq!(d.name, "nvidia.com/gpu=all");
        assert!(!d.required);
        let d = parse_device("vendor.com/dev,required").unwrap();
        assert!(d.required);
        let d = parse_device("name=foo,required=false").unwrap();
        assert_eq!(d.name, "foo");
        assert!(matches!(parse_device("a,b"), Err(DeviceError::NotKeyValue { .. })));
        assert!(matches!(parse_device("a,name=b"), Err(DeviceError::NameAlreadySet { .. })));
        assert!(matches!(parse_device("a,required=maybe"), Err(DeviceError::InvalidBool { .. })));
        assert!(matches!(parse_device("a,x=y"), Err(DeviceError::UnknownKey { .. })));
    }

    #[test]
    fn path_base() {
        assert_eq!(go_path_base("/a/b"), "b");
        assert_eq!(go_path_base("/a/b/"), "b");
        assert_eq!(go_path_base("/"), "/");
        assert_eq!(go_path_base(""), ".");
        assert_eq!(go_path_base("x"), "x");
    }
}
