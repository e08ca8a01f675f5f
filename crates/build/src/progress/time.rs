//! Clocks and time formatting.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::Clock;

/// The system clock, made monotonic: wall time at creation plus the time elapsed
/// since on the monotonic clock, so durations never go negative.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    base: SystemTime,
    start: Instant,
}

impl SystemClock {
    pub fn new() -> Self {
        SystemClock { base: SystemTime::now(), start: Instant::now() }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        self.base + self.start.elapsed()
    }
}

/// `later − earlier`, or zero when `later` is not later.
pub(crate) fn since(later: SystemTime, earlier: SystemTime) -> Duration {
    later.duration_since(earlier).unwrap_or_default()
}

/// `t` as RFC 3339 in UTC with Go's `RFC3339Nano` fraction: nanoseconds without
/// trailing zeros, no fraction when zero. Times before 1970 clamp to the epoch.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    let mut out = format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60);
    let nanos = d.subsec_nanos();
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A log line's time offset as BuildKit prints it: 3 decimals below 10 s, 2 below
/// 100 s, else 1.
pub(crate) fn log_offset(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 10.0 {
        format!("{s:.3}")
    } else if s < 100.0 {
        format!("{s:.2}")
    } else {
        format!("{s:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_like_go() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::new(1_714_557_600, 123_000_000);
        assert_eq!(rfc3339(t), "2024-05-01T10:00:00.123Z");
        let t = UNIX_EPOCH + Duration::new(951_782_400 + 86_399, 1);
        assert_eq!(rfc3339(t), "2000-02-29T23:59:59.000000001Z");
    }

    #[test]
    fn log_offsets() {
        assert_eq!(log_offset(Duration::from_millis(215)), "0.215");
        assert_eq!(log_offset(Duration::from_millis(12_346)), "12.35");
        assert_eq!(log_offset(Duration::from_millis(123_456)), "123.5");
    }
}
