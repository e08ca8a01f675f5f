//! Image references parsed the way Docker parses them
//! (`github.com/distribution/reference`): `[domain[:port]/]path[:tag][@digest]`,
//! with Docker Hub normalisation (`app` → `docker.io/library/app`).

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

use crate::digest::Digest;

/// Docker Hub's canonical domain; `index.docker.io` is rewritten to it.
pub const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
/// The tag a reference gets when it names neither a tag nor a digest.
pub const DEFAULT_TAG: &str = "latest";
const NAME_TOTAL_LENGTH_MAX: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReferenceError {
    #[error("invalid reference format: {0:?}")]
    Format(String),
    #[error("invalid reference format: repository name ({0}) must be lowercase")]
    Uppercase(String),
    #[error("invalid repository name ({0}), cannot specify 64-byte hexadecimal strings")]
    HexName(String),
    #[error("invalid reference format: repository name must not be more than 255 characters")]
    NameTooLong,
    #[error("invalid tag format: {0:?}")]
    Tag(String),
    #[error("invalid digest in reference {reference:?}: {message}")]
    Digest { reference: String, message: String },
}

/// A normalised reference: the domain is always present (`docker.io` by
/// default), Docker Hub official images carry `library/`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses like Docker's `ParseNormalizedNamed`: `app:1` becomes
    /// `docker.io/library/app:1`. No default tag is added; see [`Self::with_default_tag`].
    pub fn parse_normalized(s: &str) -> Result<Reference, ReferenceError> {
        if is_full_hex_id(s) {
            return Err(ReferenceError::HexName(s.to_string()));
        }
        let (domain, remainder) = split_docker_domain(s);
        let remote = remainder.split_once(':').map_or(remainder.as_str(), |(r, _)| r);
        let remote = remote.split_once('@').map_or(remote, |(r, _)| r);
        if remote.to_lowercase() != remote {
            return Err(ReferenceError::Uppercase(remote.to_string()));
        }
        parse_full(s, &domain, &remainder)
    }

    /// The same reference with `:latest` added when it has neither tag nor digest.
    pub fn with_default_tag(mut self) -> Reference {
        if self.tag.is_none() && self.digest.is_none() {
            self.tag = Some(DEFAULT_TAG.to_string());
        }
        self
    }

    /// The same repository with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        if !is_valid_tag(tag) {
            return Err(ReferenceError::Tag(tag.to_string()));
        }
        Ok(Reference { domain: self.domain.clone(), path: self.path.clone(), tag: Some(tag.to_string()), digest: None })
    }

    /// The same repository pinned to `digest`, without a tag.
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference { domain: self.domain.clone(), path: self.path.clone(), tag: None, digest: Some(digest) }
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The path below the domain, e.g. `library/app`.
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<Digest> {
        self.digest
    }

    /// The full repository name, e.g. `docker.io/library/app`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The repository name as Docker prints it: `app`, `user/app`, `quay.io/x/app`.
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            match self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
                Some(rest) if !rest.contains('/') => rest.to_string(),
                _ => self.path.clone(),
            }
        } else {
            self.name()
        }
    }

    /// The familiar form with tag and digest: `app:1.0`. This is also the
    /// `org.opencontainers.image.ref.name` the store writes, so that
    /// `skopeo inspect oci:$DISTILL_ROOT:app:1.0` finds the image.
    pub fn familiar(&self) -> String {
        self.format_with(self.familiar_name())
    }

    fn format_with(&self, name: String) -> String {
        let mut out = name;
        if let Some(tag) = &self.tag {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            out.push('@');
            out.push_str(&digest.to_string());
        }
        out
    }
}

impl fmt::Display for Reference {
    /// The full normalised form: `docker.io/library/app:1.0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.format_with(self.name()))
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reference({self})")
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse_normalized(s)
    }
}

/// Whether `s` is 64 lowercase hex digits (an image ID without `sha256:`).
pub fn is_full_hex_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Docker's `splitDockerDomain`: the first component is a domain only if it
/// looks like one (has `.` or `:`, or is `localhost`, or has uppercase).
fn split_docker_domain(name: &str) -> (String, String) {
    let (mut domain, mut remainder) = match name.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" || first.to_lowercase() != first => {
            (first.to_string(), rest.to_string())
        }
        _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
    };
    if domain == LEGACY_DEFAULT_DOMAIN {
        domain = DEFAULT_DOMAIN.to_string();
    }
    if domain == DEFAULT_DOMAIN && !remainder.contains('/') {
        remainder = format!("{OFFICIAL_REPO_PREFIX}{remainder}");
    }
    (domain, remainder)
}

/// Checks `domain/remainder` against the reference grammar; `original` is
/// only used in error messages.
fn parse_full(original: &str, domain: &str, remainder: &str) -> Result<Reference, ReferenceError> {
    let format_err = || ReferenceError::Format(original.to_string());
    // The digest is after the last '@'; the tag after the last ':' that
    // follows the last '/' (a ':' before it belongs to a port).
    let (rest, digest) = match remainder.rsplit_once('@') {
        Some((rest, d)) => (rest, Some(parse_digest(original, d)?)),
        None => (remainder, None),
    };
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (path, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(tag) = tag
        && !is_valid_tag(tag)
    {
        return Err(format_err());
    }
    if !is_valid_domain(domain) || path.is_empty() || !path.split('/').all(is_valid_path_component) {
        return Err(format_err());
    }
    if domain.len() + 1 + path.len() > NAME_TOTAL_LENGTH_MAX {
        return Err(ReferenceError::NameTooLong);
    }
    Ok(Reference { domain: domain.to_string(), path: path.to_string(), tag: tag.map(str::to_string), digest })
}

fn parse_digest(original: &str, d: &str) -> Result<Digest, ReferenceError> {
    d.parse().map_err(|e: crate::digest::DigestError| ReferenceError::Digest {
        reference: original.to_string(),
        message: e.to_string(),
    })
}

/// `[\w][\w.-]{0,127}`
fn is_valid_tag(tag: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && word(bytes[0])
        && bytes[1..].iter().all(|&b| word(b) || b == b'.' || b == b'-')
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn is_valid_path_component(c: &str) -> bool {
    let bytes = c.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `host[:port]` where host is a DNS name or a bracketed IPv6 address.
fn is_valid_domain(domain: &str) -> bool {
    let (host, port) = if let Some(rest) = domain.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else { return false };
        if v6.is_empty() || !v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return false;
        }
        match after {
            "" => return true,
            _ => match after.strip_prefix(':') {
                Some(port) => ("", Some(port)),
                None => return false,
            },
        }
    } else {
        match domain.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (domain, None),
        }
    };
    if let Some(port) = port
        && (port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    if domain.starts_with('[') {
        return true;
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        Reference::parse_normalized(s).unwrap().to_string()
    }

    #[test]
    fn docker_hub_normalisation() {
        assert_eq!(norm("app"), "docker.io/library/app");
        assert_eq!(norm("app:1.0"), "docker.io/library/app:1.0");
        assert_eq!(norm("user/app"), "docker.io/user/app");
        assert_eq!(norm("index.docker.io/app"), "docker.io/library/app");
        assert_eq!(norm("docker.io/library/app:x"), "docker.io/library/app:x");
        assert_eq!(norm("localhost/app"), "localhost/app");
        assert_eq!(norm("localhost:5000/a/b:t"), "localhost:5000/a/b:t");
        assert_eq!(norm("quay.io/x/y"), "quay.io/x/y");
        assert_eq!(norm("[::1]:5000/app:v1"), "[::1]:5000/app:v1");
    }

    #[test]
    fn familiar_forms() {
        let r = Reference::parse_normalized("docker.io/library/app:1.0").unwrap();
        assert_eq!(r.familiar(), "app:1.0");
        assert_eq!(r.familiar_name(), "app");
        let r = Reference::parse_normalized("docker.io/library/a/b:1").unwrap();
        assert_eq!(r.familiar(), "library/a/b:1");
        let r = Reference::parse_normalized("user/app").unwrap().with_default_tag();
        assert_eq!(r.familiar(), "user/app:latest");
        let r = Reference::parse_normalized("localhost:5000/app:2").unwrap();
        assert_eq!(r.familiar(), "localhost:5000/app:2");
        assert_eq!(r.domain(), "localhost:5000");
        assert_eq!(r.path(), "app");
    }

    #[test]
    fn digests() {
        let d = Digest::of(b"x");
        let r = Reference::parse_normalized(&format!("app:1@{d}")).unwrap();
        assert_eq!(r.tag(), Some("1"));
        assert_eq!(r.digest(), Some(d));
        assert_eq!(r.familiar(), format!("app:1@{d}"));
        let r = Reference::parse_normalized(&format!("localhost:5000/app@{d}")).unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.clone().with_default_tag(), r);
        assert!(Reference::parse_normalized("app@sha256:abc").is_err());
    }

    #[test]
    fn rejects() {
        for bad in [
            "",
            "App",
            "app:",
            ":tag",
            "app:-x",
            "a//b",
            "a/b/",
            "-a",
            "a-",
            "a..b",
            "a___b",
            "app:tag:more",
            "has space",
            "quay.io:/x",
            "quay.io:port/x",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ] {
            assert!(Reference::parse_normalized(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(matches!(Reference::parse_normalized("Foo"), Err(ReferenceError::Uppercase(_))));
        // An uppercase first component is a domain (Docker's rule).
        assert_eq!(norm("Foo.com/bar"), "Foo.com/bar");
        assert_eq!(norm("Foo/bar"), "Foo/bar");
        let long = format!("a/{}", "b".repeat(260));
        assert_eq!(Reference::parse_normalized(&long), Err(ReferenceError::NameTooLong));
    }

    #[test]
    fn separators() {
        assert!(Reference::parse_normalized("a__b").is_ok());
        assert!(Reference::parse_normalized("a---b.c_d").is_ok());
        assert!(Reference::parse_normalized(&format!("a:{}", "t".repeat(128))).is_ok());
        assert!(Reference::parse_normalized(&format!("a:{}", "t".repeat(129))).is_err());
    }
}
