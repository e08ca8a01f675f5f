//! Platforms as `--platform` names them (`linux/arm64/v8`) and the choice
//! of one manifest from an image index.

use std::fmt;
use std::str::FromStr;

use distill_image::config::host_platform;
use distill_image::manifest::Descriptor;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    /// The platform this binary runs on (Linux).
    pub fn host() -> Platform {
        let (arch, variant) = host_platform();
        Platform { os: "linux".into(), architecture: arch.into(), variant: variant.map(str::to_string) }
    }

    /// The entry of an index for this platform: same OS and architecture,
    /// the same variant if one is wanted (arm64 without a variant means v8),
    /// else the first; attestation manifests (`unknown/unknown`) never match.
    pub fn select<'a>(&self, manifests: &'a [Descriptor]) -> Option<&'a Descriptor> {
        let normal = |v: Option<&str>, arch: &str| -> Option<String> {
            match (v, arch) {
                (None, "arm64") => Some("v8".into()),
                (v, _) => v.map(str::to_string),
            }
        };
        let want_variant = normal(self.variant.as_deref(), &self.architecture);
        let candidates: Vec<&Descriptor> = manifests
            .iter()
            .filter(|d| d.platform.as_ref().is_some_and(|p| p.os == self.os && p.architecture == self.architecture))
            .collect();
        let variant_of = |d: &Descriptor| {
            let p = d.platform.as_ref()?;
            normal(p.variant.as_deref(), &p.architecture)
        };
        if self.variant.is_some() {
            return candidates.into_iter().find(|d| variant_of(d) == want_variant);
        }
        candidates.iter().copied().find(|d| variant_of(d) == want_variant).or_else(|| candidates.first().copied())
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = String;

    /// `os/arch[/variant]`, or just `arch` (Linux).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split('/').collect();
        let bad = || format!("invalid platform {s:?}: expected os/arch[/variant], e.g. linux/arm64/v8");
        if parts.iter().any(|p| p.is_empty()) {
            return Err(bad());
        }
        let (os, arch, variant) = match parts.as_slice() {
            [arch] => ("linux", *arch, None),
            [os, arch] => (*os, *arch, None),
            [os, arch, v] => (*os, *arch, Some(v.to_string())),
            _ => return Err(bad()),
        };
        let arch = match arch {
            "x86_64" | "x86-64" => "amd64",
            "aarch64" => "arm64",
            a => a,
        };
        Ok(Platform { os: os.to_lowercase(), architecture: arch.to_lowercase(), variant })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use distill_image::digest::Digest;
    use distill_image::manifest::{self, media_type};

    fn desc(n: &[u8], os: &str, arch: &str, variant: Option<&str>) -> Descriptor {
        let mut d = Descriptor::new(media_type::OCI_MANIFEST, Digest::of(n), 1);
        d.platform = Some(manifest::Platform {
            os: os.into(),
            architecture: arch.into(),
            variant: variant.map(str::to_string),
            ..Default::default()
        });
        d
    }

    #[test]
    fn parses() {
        assert_eq!("linux/arm64/v8".parse::<Platform>().unwrap().to_string(), "linux/arm64/v8");
        assert_eq!("amd64".parse::<Platform>().unwrap().to_string(), "linux/amd64");
        assert!("linux//x".parse::<Platform>().is_err());
        assert!("a/b/c/d".parse::<Platform>().is_err());
    }

    #[test]
    fn selects_variant_and_skips_attestations() {
        let all = [
            desc(b"att", "unknown", "unknown", None),
            desc(b"v6", "linux", "arm", Some("v6")),
            desc(b"v7", "linux", "arm", Some("v7")),
            desc(b"arm64", "linux", "arm64", None),
            desc(b"amd", "linux", "amd64", None),
        ];
        let pick = |s: &str| s.parse::<Platform>().unwrap().select(&all).map(|d| d.digest);
        assert_eq!(pick("linux/arm/v7"), Some(Digest::of(b"v7")));
        assert_eq!(pick("linux/arm"), Some(Digest::of(b"v6")));
        assert_eq!(pick("linux/arm64/v8"), Some(Digest::of(b"arm64")));
        assert_eq!(pick("linux/amd64"), Some(Digest::of(b"amd")));
        assert_eq!(pick("linux/arm/v5"), None);
        assert_eq!(pick("windows/amd64"), None);
    }
}
