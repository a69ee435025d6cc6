//! Log lines in the shape AuroraBoot's zerolog console writer prints (`<time> INF <message>`),
//! on stderr, so the builder pod's logs read like the real tool's.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static DEBUG: AtomicBool = AtomicBool::new(false);

pub fn set_debug(on: bool) {
    DEBUG.store(on, Ordering::Relaxed);
}

pub fn debug_enabled() -> bool {
    DEBUG.load(Ordering::Relaxed)
}

fn emit(level: &str, msg: &str) {
    eprintln!("{} {level} {msg}", rfc3339_now());
}

pub fn info(msg: impl AsRef<str>) {
    emit("INF", msg.as_ref());
}

pub fn warn(msg: impl AsRef<str>) {
    emit("WRN", msg.as_ref());
}

pub fn error(msg: impl AsRef<str>) {
    emit("ERR", msg.as_ref());
}

pub fn debug(msg: impl AsRef<str>) {
    if debug_enabled() {
        emit("DBG", msg.as_ref());
    }
}

/// Sets the level from a zerolog level name (`debug`, `info`, ...), as `--loglevel` does.
pub fn set_level(level: &str) {
    set_debug(matches!(level, "debug" | "trace"));
}

fn rfc3339_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    rfc3339(secs)
}

/// UTC `YYYY-MM-DDTHH:MM:SSZ` for seconds since the epoch.
pub fn rfc3339(secs: u64) -> String {
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let s = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        (s / 60) % 60,
        s % 60
    )
}

/// `YYYYMMDD` for seconds since the epoch (the date suffix `build-iso --date` adds).
pub fn yyyymmdd(secs: u64) -> String {
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    format!("{y:04}{m:02}{d:02}")
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_781_654_400 + 3661), "2026-06-17T01:01:01Z");
        assert_eq!(yyyymmdd(1_781_654_400), "20260617");
    }
}
