//! Value syntaxes used by instruction flags and arguments: file modes, Go
//! durations, port specs, RAM sizes, Go booleans, and "did you mean"
//! suggestions.

use super::error::{DurationError, InstructionError};

/// Checks a `--chmod` value as BuildKit (Dockerfile 1.14+) accepts it: an
/// octal mode of at most `07777` (`755`, `0755`), or a symbolic mode as in
/// chmod(1): comma-separated clauses `[ugoa]*([-+=][rwxXstugo]*)+`
/// (`+x`, `u=rwX,go=rX`, `g=u`, `go=`).
pub fn validate_chmod(value: &str) -> Result<(), InstructionError> {
    let bad = || InstructionError::InvalidChmod { value: value.to_string() };
    let Some(first) = value.bytes().next() else {
        return Err(bad());
    };
    if first.is_ascii_digit() {
        // strconv.ParseUint(v, 8, 32) followed by the 07777 bound.
        if !value.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
            return Err(bad());
        }
        let mut mode: u64 = 0;
        for b in value.bytes() {
            mode = mode * 8 + u64::from(b - b'0');
            if mode > 0o7777 {
                return Err(bad());
            }
        }
        return Ok(());
    }
    if symbolic_mode_is_valid(value.as_bytes()) { Ok(()) } else { Err(bad()) }
}

/// The grammar of BSD `setmode(3)` as implemented by the mode package
/// BuildKit uses: `clause (',' clause)*`, `clause = who* action+`,
/// `action = op perm*`.
fn symbolic_mode_is_valid(mut s: &[u8]) -> bool {
    loop {
        while let [b'a' | b'u' | b'g' | b'o', rest @ ..] = s {
            s = rest;
        }
        // At least one action.
        loop {
            let [b'+' | b'-' | b'=', rest @ ..] = s else {
                return false;
            };
            s = rest;
            while let [b'r' | b's' | b't' | b'w' | b'X' | b'x' | b'u' | b'g' | b'o', rest @ ..] = s {
                s = rest;
            }
            match s {
                [] => return true,
                [b',', rest @ ..] => {
                    s = rest;
                    break;
                }
                _ => continue,
            }
        }
        if s.is_empty() {
            // A trailing comma.
            return false;
        }
    }
}

const NANOS_PER_UNIT: &[(&str, u64)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("\u{b5}s", 1_000),  // µ (micro sign)
    ("\u{3bc}s", 1_000), // μ (Greek small letter mu)
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// Go's `time.ParseDuration`: a signed sequence of decimal numbers with
/// optional fraction and a unit each (`300ms`, `-1.5h`, `2h45m`, `1µs`).
/// Returns nanoseconds.
pub fn parse_go_duration(input: &str) -> Result<i64, DurationError> {
    const LIMIT: u128 = 1 << 63;
    let mut s = input;
    let mut negative = false;
    if let Some(rest) = s.strip_prefix('-') {
        negative = true;
        s = rest;
    } else if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(DurationError::Invalid);
    }
    let mut total: u128 = 0;
    while !s.is_empty() {
        let bytes = s.as_bytes();
        if !(bytes[0] == b'.' || bytes[0].is_ascii_digit()) {
            return Err(DurationError::Invalid);
        }
        let int_len = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
        let mut whole: u128 = 0;
        for &b in &bytes[..int_len] {
            whole = whole * 10 + u128::from(b - b'0');
            if whole > LIMIT {
                return Err(DurationError::Invalid);
            }
        }
        s = &s[int_len..];
        let mut frac: u128 = 0;
        let mut scale: u128 = 1;
        let mut frac_len = 0;
        if let Some(rest) = s.strip_prefix('.') {
            frac_len = rest.bytes().take_while(u8::is_ascii_digit).count();
            for &b in &rest.as_bytes()[..frac_len] {
                // Go stops adding precision once it would overflow.
                if scale < 10u128.pow(18) {
                    frac = frac * 10 + u128::from(b - b'0');
                    scale *= 10;
                }
            }
            s = &rest[frac_len..];
        }
        if int_len == 0 && frac_len == 0 {
            return Err(DurationError::Invalid);
        }
        let unit_len = s.find(|c: char| c == '.' || c.is_ascii_digit()).unwrap_or(s.len());
        if unit_len == 0 {
            return Err(DurationError::MissingUnit);
        }
        let unit = &s[..unit_len];
        s = &s[unit_len..];
        let Some(&(_, per)) = NANOS_PER_UNIT.iter().find(|(name, _)| *name == unit) else {
            return Err(DurationError::UnknownUnit(unit.to_string()));
        };
        let per = u128::from(per);
        let mut value = whole.checked_mul(per).ok_or(DurationError::Overflow)?;
        if value > LIMIT {
            return Err(DurationError::Overflow);
        }
        value += frac * per / scale;
        total += value;
        if total > LIMIT {
            return Err(DurationError::Overflow);
        }
    }
    if negative {
        // total <= 2^63, so the negation fits.
        return Ok(i64::try_from(-(total as i128)).unwrap_or(i64::MIN));
    }
    i64::try_from(total).map_err(|_| DurationError::Overflow)
}

/// One parsed EXPOSE entry: a port range and its protocol (lowercase).
pub type PortRange = (u16, u16, String);

/// Parses one port spec the way moby's `nat.ParsePortSpec` does (what
/// BuildKit's EXPOSE calls after expansion): `80`, `80/tcp`,
/// `8000-8010/udp`, `80/TCP`, and also `[ip:][hostPort:]containerPort[/proto]`
/// (accepted by moby; the linter flags it). Ports are 0-65535; protocols are
/// tcp, udp and sctp in any case. Returns the container port range.
pub fn parse_port_spec(spec: &str) -> Result<Vec<PortRange>, InstructionError> {
    let (start, end, proto) = port_spec(spec)?;
    Ok(vec![(start, end, proto.to_ascii_lowercase())])
}

/// [`parse_port_spec`] without building the result.
pub(crate) fn check_port_spec(spec: &str) -> Result<(), InstructionError> {
    port_spec(spec).map(|_| ())
}

/// The container port range and the protocol as written.
fn port_spec(spec: &str) -> Result<(u16, u16, &str), InstructionError> {
    let err = |reason: String| InstructionError::InvalidPort { value: spec.to_string(), reason };
    // `[ip:][host:]container`; the ip is everything before the last two colons.
    let (rest, container) = match spec.rsplit_once(':') {
        Some((rest, container)) => (Some(rest), container),
        None => (None, spec),
    };
    let (ip, host) = match rest {
        None => ("", ""),
        Some(rest) => rest.rsplit_once(':').unwrap_or(("", rest)),
    };
    let (proto, container) = split_proto_port(container);
    if !ip.is_empty() {
        let bare =
            if ip.starts_with('[') { ip.strip_prefix('[').and_then(|s| s.strip_suffix(']')).unwrap_or("") } else { ip };
        if bare.parse::<std::net::IpAddr>().is_err() {
            return Err(err(format!("invalid IP address {ip:?}")));
        }
    }
    if container.is_empty() {
        return Err(err("no port specified".to_string()));
    }
    let (start, end) =
        parse_port_range(container).map_err(|r| err(format!("invalid container port {container:?}: {r}")))?;
    if !host.is_empty() {
        let (hs, he) = parse_port_range(host).map_err(|r| err(format!("invalid host port {host:?}: {r}")))?;
        if end - start != he - hs && end != start {
            return Err(err(format!("invalid ranges specified for container and host ports: {container} and {host}")));
        }
    }
    if !["tcp", "udp", "sctp"].iter().any(|p| proto.eq_ignore_ascii_case(p)) {
        return Err(err(format!("invalid protocol {:?}", proto.to_ascii_lowercase())));
    }
    Ok((start, end, proto))
}

/// `nat.SplitProtoPort`: `80/udp` → ("udp", "80"); no protocol means tcp.
fn split_proto_port(raw: &str) -> (&str, &str) {
    let mut parts = raw.split('/');
    let port = parts.next().unwrap_or("");
    if raw.is_empty() || port.is_empty() {
        return ("", "");
    }
    match parts.next() {
        None | Some("") => ("tcp", port),
        Some(proto) => (proto, port),
    }
}

fn parse_port_range(ports: &str) -> Result<(u16, u16), String> {
    let (start, end) = match ports.split_once('-') {
        Some((s, e)) => (s, Some(e)),
        None => (ports, None),
    };
    let start_port = parse_port_number(start).map_err(|r| format!("invalid start port {start:?}: {r}"))?;
    let Some(end) = end.filter(|e| *e != start) else {
        return Ok((start_port, start_port));
    };
    let end_port = parse_port_number(end).map_err(|r| format!("invalid end port {end:?}: {r}"))?;
    if end_port < start_port {
        return Err(format!("invalid port range {ports}: the end is below the start"));
    }
    Ok((start_port, end_port))
}

fn parse_port_number(raw: &str) -> Result<u16, &'static str> {
    if raw.is_empty() {
        return Err("value is empty");
    }
    if !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err("not a number");
    }
    raw.parse::<u16>().map_err(|_| "value out of range (0-65535)")
}

/// Go's `strconv.ParseBool`.
pub fn parse_go_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// `strconv.ParseUint(value, base, 32)`: digits only, no sign or prefix.
pub fn parse_go_u32(value: &str, radix: u32) -> Option<u32> {
    if value.is_empty() || !value.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u32::from_str_radix(value, radix).ok()
}

/// docker/go-units `RAMInBytes`: a decimal number, an optional space and an
/// optional binary unit (`k`, `m`, `g`, `t`, `p`, each optionally followed
/// by `b` or `ib`, any case; or a bare `b`).
pub fn parse_ram_size(value: &str) -> Option<u64> {
    let sep = value.rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ')?;
    let (num, suffix) = if value.as_bytes()[sep] == b' ' {
        (&value[..sep], &value[sep + 1..])
    } else {
        (&value[..=sep], &value[sep + 1..])
    };
    let num_ok = !num.is_empty()
        && num.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && num.bytes().filter(|&b| b == b'.').count() <= 1
        && num.bytes().any(|b| b.is_ascii_digit());
    if !num_ok {
        return None;
    }
    let size: f64 = num.parse().ok()?;
    let suffix = suffix.to_ascii_lowercase();
    let mul: u64 = match suffix.as_str() {
        "" | "b" => 1,
        s => {
            let mut chars = s.chars();
            let mul = match chars.next()? {
                'k' => 1 << 10,
                'm' => 1 << 20,
                'g' => 1 << 30,
                't' => 1 << 40,
                'p' => 1 << 50,
                _ => return None,
            };
            match chars.as_str() {
                "" | "b" | "ib" => mul,
                _ => return None,
            }
        }
    };
    // Go converts the float to int64 by truncation.
    let bytes = size * mul as f64;
    if !bytes.is_finite() || bytes >= 9.223_372_036_854_776e18 {
        return None;
    }
    Some(bytes as u64)
}

/// BuildKit's `suggest.Search`: the option closest to `value` by Levenshtein
/// distance, when the distance is below 3 (and `value` is not itself an option).
pub fn suggest(value: &str, options: &[&'static str], case_sensitive: bool) -> Option<&'static str> {
    if value.is_empty() {
        return None;
    }
    let norm = |s: &str| {
        if case_sensitive { s.to_string() } else { s.to_lowercase() }
    };
    let value = norm(value);
    let mut best: Option<&'static str> = None;
    let mut score = 3;
    for &opt in options {
        let o = norm(opt);
        if o == value {
            return None;
        }
        let d = levenshtein(&value, &o);
        if d < score {
            score = d;
            best = Some(opt);
        }
    }
    best
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// A source word that introduces a heredoc (`<<EOF`, `<<-EOF`, `3<<"EOF"`):
/// BuildKit's `^(\d*)<<(-?)([^<]*)$` with a non-empty rest. Returns the
/// delimiter name with quotes removed, `chomp`, and whether the body is
/// expanded (no part of the delimiter was quoted).
pub fn heredoc_word(word: &str) -> Option<(String, bool, bool)> {
    let digits = word.len() - word.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let rest = word[digits..].strip_prefix("<<")?;
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    if rest.is_empty() || rest.contains('<') {
        return None;
    }
    let mut name = String::with_capacity(rest.len());
    let mut quoted = false;
    let mut chars = rest.chars();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') => {
                if let Some(next) = chars.next() {
                    if !matches!(next, '"' | '$' | '\\') {
                        name.push('\\');
                    }
                    name.push(next);
                }
            }
            (Some(_), c) => name.push(c),
            (None, '\'' | '"') => {
                quoted = true;
                quote = Some(c);
            }
            (None, '\\') => {
                if let Some(next) = chars.next() {
                    name.push(next);
                }
            }
            (None, c) if c.is_whitespace() => return None,
            (None, c) => name.push(c),
        }
    }
    if name.is_empty() {
        return None;
    }
    Some((name, chomp, !quoted))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chmod_octal() {
        for ok in ["0", "755", "0755", "4755", "7777", "07777", "0000644"] {
            assert!(validate_chmod(ok).is_ok(), "{ok}");
        }
        for bad in ["", "8", "8x", "64a", "10000", "17777", "0o755", "99999999999999999999999"] {
            assert!(validate_chmod(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn chmod_symbolic() {
        for ok in ["+x", "u+x", "a+rwx", "u=rwX,go=rX", "g=u", "go=", "=rw,+X", "u=rwx,go=u-w", "ug+s", "+t", "u+x-w"] {
            assert!(validate_chmod(ok).is_ok(), "{ok}");
        }
        for bad in ["u", "x", "u+x,", ",u+x", "u+y", "a+r w", "ugo", "+x,u", "u+x;g+w", "-"] {
            let ok = bad == "-";
            assert_eq!(validate_chmod(bad).is_ok(), ok, "{bad}");
        }
    }

    #[test]
    fn chmod_error_message() {
        let e = validate_chmod("8x").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid --chmod value \"8x\": expected an octal mode like 0755 (at most 07777) or a symbolic mode like u+x,go=rX"
        );
    }

    #[test]
    fn go_durations() {
        let cases: &[(&str, i64)] = &[
            ("0", 0),
            ("-0", 0),
            ("+0", 0),
            ("0s", 0),
            ("5s", 5_000_000_000),
            ("30s", 30_000_000_000),
            ("1h2m3.5s", 3_723_500_000_000),
            ("300ms", 300_000_000),
            ("1us", 1_000),
            ("1µs", 1_000),
            ("1μs", 1_000),
            ("10ns", 10),
            ("1.5h", 5_400_000_000_000),
            (".5s", 500_000_000),
            ("5.s", 5_000_000_000),
            ("-1.5m", -90_000_000_000),
            ("2h45m", 9_900_000_000_000),
            ("9223372036854775807ns", i64::MAX),
            ("-9223372036854775808ns", i64::MIN),
        ];
        for &(s, want) in cases {
            assert_eq!(parse_go_duration(s), Ok(want), "{s}");
        }
        assert_eq!(parse_go_duration(""), Err(DurationError::Invalid));
        assert_eq!(parse_go_duration("-"), Err(DurationError::Invalid));
        assert_eq!(parse_go_duration("5"), Err(DurationError::MissingUnit));
        assert_eq!(parse_go_duration("1h5"), Err(DurationError::MissingUnit));
        assert_eq!(parse_go_duration(".s"), Err(DurationError::Invalid));
        assert_eq!(parse_go_duration("s"), Err(DurationError::Invalid));
        assert_eq!(parse_go_duration("5x"), Err(DurationError::UnknownUnit("x".into())));
        assert_eq!(parse_go_duration("5 s"), Err(DurationError::UnknownUnit(" s".into())));
        assert_eq!(parse_go_duration("5S"), Err(DurationError::UnknownUnit("S".into())));
        assert_eq!(parse_go_duration("9223372036854775808ns"), Err(DurationError::Overflow));
        assert_eq!(parse_go_duration("3000000h"), Err(DurationError::Overflow));
        assert!(parse_go_duration("99999999999999999999999s").is_err());
    }

    #[test]
    fn port_specs() {
        assert_eq!(parse_port_spec("80").unwrap(), vec![(80, 80, "tcp".to_string())]);
        assert_eq!(parse_port_spec("80/tcp").unwrap(), vec![(80, 80, "tcp".to_string())]);
        assert_eq!(parse_port_spec("80/TCP").unwrap(), vec![(80, 80, "tcp".to_string())]);
        assert_eq!(parse_port_spec("53/udp").unwrap(), vec![(53, 53, "udp".to_string())]);
        assert_eq!(parse_port_spec("132/sctp").unwrap(), vec![(132, 132, "sctp".to_string())]);
        assert_eq!(parse_port_spec("8000-8010/udp").unwrap(), vec![(8000, 8010, "udp".to_string())]);
        assert_eq!(parse_port_spec("80-80").unwrap(), vec![(80, 80, "tcp".to_string())]);
        assert_eq!(parse_port_spec("80/").unwrap(), vec![(80, 80, "tcp".to_string())]);
        assert_eq!(parse_port_spec("0").unwrap(), vec![(0, 0, "tcp".to_string())]);
        assert_eq!(parse_port_spec("65535").unwrap(), vec![(65535, 65535, "tcp".to_string())]);
        assert_eq!(parse_port_spec("8080:80").unwrap(), vec![(80, 80, "tcp".to_string())]);
        assert_eq!(parse_port_spec("127.0.0.1:8080:80/udp").unwrap(), vec![(80, 80, "udp".to_string())]);
        assert_eq!(parse_port_spec("[::1]:8080:80").unwrap(), vec![(80, 80, "tcp".to_string())]);
        for bad in [
            "",
            "65536",
            "-1",
            "+80",
            "abc",
            "80/xyz",
            "/tcp",
            "80-70",
            "80-",
            "80-90-100",
            "1.2.3:80:80",
            "8000-8010:80-81",
            "80:",
            " 80",
        ] {
            assert!(parse_port_spec(bad).is_err(), "{bad:?}");
        }
        let e = parse_port_spec("80/xyz").unwrap_err().to_string();
        assert!(e.contains("invalid protocol \"xyz\""), "{e}");
    }

    #[test]
    fn ram_sizes() {
        assert_eq!(parse_ram_size("1048576"), Some(1_048_576));
        assert_eq!(parse_ram_size("64m"), Some(64 << 20));
        assert_eq!(parse_ram_size("64M"), Some(64 << 20));
        assert_eq!(parse_ram_size("1g"), Some(1 << 30));
        assert_eq!(parse_ram_size("1GiB"), Some(1 << 30));
        assert_eq!(parse_ram_size("1 kb"), Some(1024));
        assert_eq!(parse_ram_size("10b"), Some(10));
        assert_eq!(parse_ram_size("1.5k"), Some(1536));
        assert_eq!(parse_ram_size("1 "), Some(1));
        for bad in ["", "m", "abc", "1x", "1kbb", "-1", "1mi", "1e3", "1..2"] {
            assert_eq!(parse_ram_size(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn go_bool_and_uint() {
        assert_eq!(parse_go_bool("True"), Some(true));
        assert_eq!(parse_go_bool("0"), Some(false));
        assert_eq!(parse_go_bool("yes"), None);
        assert_eq!(parse_go_u32("0755", 8), Some(0o755));
        assert_eq!(parse_go_u32("8", 8), None);
        assert_eq!(parse_go_u32("+1", 10), None);
        assert_eq!(parse_go_u32("4294967296", 10), None);
    }

    #[test]
    fn suggestions() {
        let kw = &["FROM", "RUN", "COPY", "ARG"];
        assert_eq!(suggest("FRM", kw, false), Some("FROM"));
        assert_eq!(suggest("cpy", kw, false), Some("COPY"));
        assert_eq!(suggest("BANANA", kw, false), None);
        assert_eq!(suggest("from", kw, false), None);
    }

    #[test]
    fn heredoc_words() {
        assert_eq!(heredoc_word("<<EOF"), Some(("EOF".into(), false, true)));
        assert_eq!(heredoc_word("<<-EOF"), Some(("EOF".into(), true, true)));
        assert_eq!(heredoc_word("3<<'EOF'"), Some(("EOF".into(), false, false)));
        assert_eq!(heredoc_word("<<E\"O\"F"), Some(("EOF".into(), false, false)));
        assert_eq!(heredoc_word("<<"), None);
        assert_eq!(heredoc_word("a<<EOF"), None);
        assert_eq!(heredoc_word("<<EOF<"), None);
        assert_eq!(heredoc_word("file"), None);
    }
}
