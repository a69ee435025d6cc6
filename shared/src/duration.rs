//! Durations as Kubernetes users write them (Go's `time.Duration` text, whole seconds): `3h`,
//! `90m`, `1h30m`, `45s`. Used for `spec.buildTimeout` and the operator's `--build-timeout`, which
//! both become an `activeDeadlineSeconds`.

/// The longest duration accepted: 30 days. A deadline is a guard against a hung build; a longer
/// one guards nothing, and the bound keeps every value far from `activeDeadlineSeconds`' limits.
pub const MAX_SECONDS: u64 = 30 * 24 * 3600;

/// Whole seconds of a duration such as `3h`, `1h30m` or `45s`: one or more `<number><unit>` with
/// units `h`, `m` and `s`, each at most once and in that order; positive and at most 30 days.
pub fn parse_seconds(text: &str) -> Result<u64, String> {
    const FORM: &str = "must be a duration such as \"3h\", \"90m\", \"1h30m\" or \"45s\" (units h, m, s, in that order)";
    let mut rest = text;
    let mut total: u64 = 0;
    let mut last_unit = 0usize;
    if rest.is_empty() {
        return Err(FORM.into());
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 9 {
            return Err(FORM.into());
        }
        let (number, tail) = rest.split_at(digits);
        let n: u64 = number.parse().map_err(|_| FORM.to_string())?;
        let (unit, factor) = match tail.bytes().next() {
            Some(b'h') => (1, 3600),
            Some(b'm') => (2, 60),
            Some(b's') => (3, 1),
            _ => return Err(FORM.into()),
        };
        if unit <= last_unit {
            return Err(FORM.into());
        }
        last_unit = unit;
        total = total.saturating_add(n.saturating_mul(factor));
        rest = &tail[1..];
    }
    if total == 0 {
        return Err("must be longer than 0s".into());
    }
    if total > MAX_SECONDS {
        return Err(format!(
            "must be at most {} (30 days)",
            format_seconds(MAX_SECONDS)
        ));
    }
    Ok(total)
}

/// The shortest text of a number of seconds: `3h`, `1h30m`, `45s`, `2h0m5s`.
pub fn format_seconds(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 || (h > 0 && s > 0) {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_style_durations() {
        assert_eq!(parse_seconds("3h"), Ok(10800));
        assert_eq!(parse_seconds("90m"), Ok(5400));
        assert_eq!(parse_seconds("1h30m"), Ok(5400));
        assert_eq!(parse_seconds("2h0m5s"), Ok(7205));
        assert_eq!(parse_seconds("45s"), Ok(45));
        assert_eq!(parse_seconds("720h"), Ok(MAX_SECONDS));
    }

    #[test]
    fn refuses_everything_else() {
        for bad in [
            "",
            "3",
            "h",
            "3 h",
            "3H",
            "1.5h",
            "-1h",
            "30m1h",
            "1h1h",
            "1d",
            "10ms",
            "3h ",
            "9999999999s",
        ] {
            assert!(parse_seconds(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_seconds("0s"), Err("must be longer than 0s".into()));
        assert!(parse_seconds("721h").unwrap_err().contains("at most 720h"));
    }

    #[test]
    fn formats_shortest() {
        assert_eq!(format_seconds(10800), "3h");
        assert_eq!(format_seconds(5400), "1h30m");
        assert_eq!(format_seconds(7205), "2h0m5s");
        assert_eq!(format_seconds(45), "45s");
        assert_eq!(format_seconds(0), "0s");
        for s in [1, 59, 60, 61, 3599, 3600, 3661, MAX_SECONDS] {
            assert_eq!(parse_seconds(&format_seconds(s)), Ok(s));
        }
    }
}
