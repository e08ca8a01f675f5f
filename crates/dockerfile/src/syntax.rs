//! The `# syntax=` parser directive.
//!
//! BuildKit pulls the named frontend image and runs it to convert the
//! Dockerfile. distill cannot run frontend images: it always uses its own
//! frontend, which follows `docker/dockerfile:1`. The official frontend's
//! usual references (`docker/dockerfile:1`, `:1.7`, `:1.7.1`, `:labs`,
//! `:1.7-labs`, with or without `docker.io/`, `index.docker.io/`, a
//! `@sha256:` pin) are accepted silently, as the Dockerfile means "the
//! standard syntax"; any other image gets a warning, since its own syntax
//! or behaviour will not be applied.

/// The warning for a `# syntax=` value, or `None` for the official frontend.
pub fn frontend_warning(value: &str) -> Option<String> {
    let value = value.trim();
    if value.is_empty() || is_official_frontend(value) {
        return None;
    }
    Some(format!(
        "# syntax={value}: distill cannot run BuildKit frontend images; \
         the Dockerfile is built with distill's own frontend (docker/dockerfile:1 syntax)"
    ))
}

/// `docker/dockerfile` (optionally `docker.io/` or `index.docker.io/`
/// in front, `@sha256:…` after) with no tag or a `1[.x[.y]][-labs]` or
/// `labs` tag.
fn is_official_frontend(reference: &str) -> bool {
    let name_tag = reference.split_once('@').map_or(reference, |(n, _)| n);
    let (name, tag) = match name_tag.rsplit_once(':') {
        // A colon in the last path component is a tag, not a registry port.
        Some((n, t)) if !t.contains('/') => (n, Some(t)),
        _ => (name_tag, None),
    };
    let name = name.strip_prefix("docker.io/").or_else(|| name.strip_prefix("index.docker.io/")).unwrap_or(name);
    if name != "docker/dockerfile" {
        return false;
    }
    let Some(tag) = tag else { return true };
    if tag == "labs" || tag == "latest" {
        return true;
    }
    let version = tag.strip_suffix("-labs").unwrap_or(tag);
    let mut parts = version.split('.');
    parts.next() == Some("1")
        && parts.all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        && version.split('.').count() <= 3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_official_frontend_is_accepted_silently() {
        for v in [
            "docker/dockerfile:1",
            "docker/dockerfile:1.7",
            "docker/dockerfile:1.7.1",
            "docker/dockerfile:labs",
            "docker/dockerfile:1-labs",
            "docker/dockerfile:1.7-labs",
            "docker.io/docker/dockerfile:1.7-labs",
            "index.docker.io/docker/dockerfile:1",
            "docker/dockerfile",
            "docker/dockerfile:1.4@sha256:9ba7531bd80fb0a858632727cf7a112fbfd19b17e94c4e84ced81e24ef1a0dbc",
            " docker/dockerfile:1 ",
        ] {
            assert_eq!(frontend_warning(v), None, "{v}");
        }
    }

    #[test]
    fn other_frontends_get_a_warning() {
        for v in [
            "docker/dockerfile:2",
            "docker/dockerfile:1.x",
            "docker/dockerfile-upstream:master",
            "example.com/my/frontend:1",
            "tonistiigi/dockerfile:runmount",
            "localhost:5000/docker/dockerfile:1",
        ] {
            let w = frontend_warning(v).unwrap_or_else(|| panic!("{v} should warn"));
            assert!(w.contains(v) && w.contains("cannot run"), "{w}");
        }
    }
}
