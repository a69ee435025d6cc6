//! The parts of Go's `strconv` the template engine needs: number syntax, string
//! unquoting, Go-style quoting and `FormatFloat`.

use super::unicode::is_go_print;

fn lower(b: u8) -> u8 {
    b | 0x20
}

/// Go's `underscoreOK`: underscores may only separate digits (or follow a base prefix).
fn underscore_ok(s: &[u8]) -> bool {
    let mut saw = b'^';
    let mut s = s;
    if let Some(b'-' | b'+') = s.first() {
        s = &s[1..];
    }
    let mut i = 0;
    let mut hex = false;
    if s.len() >= 2 && s[0] == b'0' && matches!(lower(s[1]), b'b' | b'o' | b'x') {
        i = 2;
        saw = b'0';
        hex = lower(s[1]) == b'x';
    }
    while i < s.len() {
        let c = s[i];
        i += 1;
        if c.is_ascii_digit() || (hex && (b'a'..=b'f').contains(&lower(c))) {
            saw = b'0';
            continue;
        }
        if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
            continue;
        }
        if saw == b'_' {
            return false;
        }
        saw = b'!';
    }
    saw != b'_'
}

/// Go's `strconv.ParseUint(s, 0, 64)`.
pub(crate) fn parse_uint0(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.is_empty() {
        return None;
    }
    let mut base = 10u64;
    let mut digits = b;
    if b[0] == b'0' {
        if b.len() >= 3 && lower(b[1]) == b'b' {
            base = 2;
            digits = &b[2..];
        } else if b.len() >= 3 && lower(b[1]) == b'o' {
            base = 8;
            digits = &b[2..];
        } else if b.len() >= 3 && lower(b[1]) == b'x' {
            base = 16;
            digits = &b[2..];
        } else {
            base = 8;
            digits = &b[1..];
        }
    }
    let mut n: u64 = 0;
    let mut underscores = false;
    for &c in digits {
        let d = match c {
            b'_' => {
                underscores = true;
                continue;
            }
            b'0'..=b'9' => (c - b'0') as u64,
            b'a'..=b'z' => (c - b'a' + 10) as u64,
            b'A'..=b'Z' => (c - b'A' + 10) as u64,
            _ => return None,
        };
        if d >= base {
            return None;
        }
        n = n.checked_mul(base)?.checked_add(d)?;
    }
    if underscores && !underscore_ok(b) {
        return None;
    }
    Some(n)
}

/// Go's `strconv.ParseInt(s, 0, 64)`.
pub(crate) fn parse_int0(s: &str) -> Option<i64> {
    let (neg, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let u = parse_uint0(rest)?;
    if neg {
        if u > 1u64 << 63 {
            return None;
        }
        Some((u as i64).wrapping_neg())
    } else {
        i64::try_from(u).ok()
    }
}

/// Go's `strconv.ParseFloat(s, 64)` for the syntax the template lexer can produce.
/// Returns `None` for syntax errors and for overflow (Go's range error).
pub(crate) fn parse_float(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut neg = false;
    if let Some(&c @ (b'+' | b'-')) = b.first() {
        neg = c == b'-';
        i = 1;
    }
    let mut base = 10;
    if b.len() >= i + 2 && b[i] == b'0' && lower(b[i + 1]) == b'x' {
        base = 16;
        i += 2;
    }
    let mant_start = i;
    let mut saw_dot = false;
    let mut saw_digits = false;
    let mut underscores = false;
    while i < b.len() {
        let c = b[i];
        if c == b'_' {
            underscores = true;
        } else if c == b'.' {
            if saw_dot {
                break;
            }
            saw_dot = true;
        } else if c.is_ascii_digit() || (base == 16 && (b'a'..=b'f').contains(&lower(c))) {
            saw_digits = true;
        } else {
            break;
        }
        i += 1;
    }
    if !saw_digits {
        return None;
    }
    let mant_end = i;
    let exp_char = if base == 10 { b'e' } else { b'p' };
    let mut exp: i64 = 0;
    if i < b.len() && lower(b[i]) == exp_char {
        i += 1;
        let mut esign = 1;
        if let Some(&c @ (b'+' | b'-')) = b.get(i) {
            if c == b'-' {
                esign = -1;
            }
            i += 1;
        }
        let mut saw_exp_digit = false;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
            if b[i] == b'_' {
                underscores = true;
            } else {
                saw_exp_digit = true;
                if exp < 1_000_000 {
                    exp = exp * 10 + (b[i] - b'0') as i64;
                }
            }
            i += 1;
        }
        if !saw_exp_digit {
            return None;
        }
        exp *= esign;
    } else if base == 16 {
        return None;
    }
    if i != b.len() {
        return None;
    }
    if underscores && !underscore_ok(b) {
        return None;
    }
    let v = if base == 10 {
        let clean: String = s.chars().filter(|&c| c != '_').collect();
        clean.parse::<f64>().ok()?
    } else {
        hex_float(&b[mant_start..mant_end], exp, neg)?
    };
    if v.is_infinite() {
        return None;
    }
    Some(if base == 10 {
        v
    } else if neg {
        -v
    } else {
        v
    })
}

/// Value of a hexadecimal mantissa (digits, '.', '_') times 2**exp, correctly rounded.
fn hex_float(mant: &[u8], exp: i64, _neg: bool) -> Option<f64> {
    let mut m: u64 = 0;
    let mut e = exp;
    let mut sticky = false;
    let mut after_dot = false;
    for &c in mant {
        match c {
            b'_' => continue,
            b'.' => {
                after_dot = true;
                continue;
            }
            _ => {}
        }
        let d = (c as char).to_digit(16)? as u64;
        if m >> 59 == 0 {
            m = m * 16 + d;
            if after_dot {
                e -= 4;
            }
        } else {
            sticky |= d != 0;
            if !after_dot {
                e += 4;
            }
        }
    }
    if m == 0 {
        return Some(0.0);
    }
    // Normalise to 64 significant bits, then round to 53 (or fewer for subnormals).
    let lz = m.leading_zeros() as i64;
    m <<= lz;
    e -= lz;
    // value = m * 2**e with m in [2**63, 2**64).
    let top_exp = e + 63; // exponent of the leading bit
    let mut keep = 53i64;
    if top_exp < -1022 {
        keep = 53 - (-1022 - top_exp);
    }
    if keep <= 0 {
        // Rounds to zero or the smallest subnormal.
        let half = keep == 0 && (m > 1 << 63 || (m == 1 << 63 && sticky));
        return Some(if half { f64::from_bits(1) } else { 0.0 });
    }
    let drop = 64 - keep;
    let mut q = m >> drop;
    let rem = m & ((1u64 << drop) - 1);
    let halfway = 1u64 << (drop - 1);
    if rem > halfway || (rem == halfway && (sticky || q & 1 == 1)) {
        q += 1;
    }
    let scale = e + drop;
    let v = (q as f64) * pow2(scale);
    Some(v)
}

fn pow2(e: i64) -> f64 {
    // Multiply in steps so intermediate values neither overflow nor flush to zero early.
    let mut v = 1.0f64;
    let mut e = e;
    while e > 1000 {
        v *= 2f64.powi(1000);
        e -= 1000;
    }
    while e < -1000 {
        v *= 2f64.powi(-1000);
        e += 1000;
    }
    v * 2f64.powi(e as i32)
}

/// Go's `strconv.UnquoteChar`: decodes one (possibly escaped) character.
/// Returns (value, multibyte, rest).
pub(crate) fn unquote_char(s: &[u8], quote: u8) -> Option<(u32, bool, &[u8])> {
    let c = *s.first()?;
    if c == quote && (quote == b'\'' || quote == b'"') {
        return None;
    }
    if c >= 0x80 {
        let st = std::str::from_utf8(&s[..s.len().min(4)])
            .or_else(|e| std::str::from_utf8(&s[..e.valid_up_to()]))
            .ok()?;
        return match st.chars().next() {
            Some(ch) => Some((ch as u32, true, &s[ch.len_utf8()..])),
            None => Some((0xFFFD, true, &s[1..])),
        };
    }
    if c != b'\\' {
        return Some((c as u32, false, &s[1..]));
    }
    let c = *s.get(1)?;
    let s = &s[2..];
    let simple = match c {
        b'a' => Some(7),
        b'b' => Some(8),
        b'f' => Some(12),
        b'n' => Some(10),
        b'r' => Some(13),
        b't' => Some(9),
        b'v' => Some(11),
        b'\\' => Some(b'\\' as u32),
        b'\'' | b'"' => {
            if c != quote {
                return None;
            }
            Some(c as u32)
        }
        _ => None,
    };
    if let Some(v) = simple {
        return Some((v, false, s));
    }
    match c {
        b'x' | b'u' | b'U' => {
            let n = match c {
                b'x' => 2,
                b'u' => 4,
                _ => 8,
            };
            if s.len() < n {
                return None;
            }
            let mut v: u32 = 0;
            for &d in &s[..n] {
                v = (v << 4) | (d as char).to_digit(16)?;
            }
            if c == b'x' {
                return Some((v, false, &s[n..]));
            }
            char::from_u32(v)?;
            Some((v, true, &s[n..]))
        }
        b'0'..=b'7' => {
            let mut v = (c - b'0') as u32;
            if s.len() < 2 {
                return None;
            }
            for &d in &s[..2] {
                if !(b'0'..=b'7').contains(&d) {
                    return None;
                }
                v = (v << 3) | (d - b'0') as u32;
            }
            if v > 255 {
                return None;
            }
            Some((v, false, &s[2..]))
        }
        _ => None,
    }
}

/// Go's `strconv.Unquote` for double-quoted and raw strings.
pub(crate) fn unquote(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    if b.len() < 2 {
        return None;
    }
    let quote = b[0];
    if b[b.len() - 1] != quote {
        return None;
    }
    let inner = &b[1..b.len() - 1];
    if quote == b'`' {
        if inner.contains(&b'`') {
            return None;
        }
        return Some(inner.iter().copied().filter(|&c| c != b'\r').collect());
    }
    if quote != b'"' {
        return None;
    }
    let mut out = Vec::with_capacity(inner.len());
    let mut rest = inner;
    while !rest.is_empty() {
        if rest[0] == b'\n' {
            return None;
        }
        let (r, multibyte, tail) = unquote_char(rest, quote)?;
        rest = tail;
        if r < 0x80 || !multibyte {
            out.push(r as u8);
        } else {
            let ch = char::from_u32(r).unwrap_or('\u{FFFD}');
            let mut buf = [0u8; 4];
            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
        }
    }
    Some(out)
}

const LOWER_HEX: &[u8; 16] = b"0123456789abcdef";

fn append_escaped_rune(out: &mut String, r: char, quote: char, ascii_only: bool) {
    if r == quote || r == '\\' {
        out.push('\\');
        out.push(r);
        return;
    }
    if ascii_only {
        if r.is_ascii() && is_go_print(r) {
            out.push(r);
            return;
        }
    } else if is_go_print(r) {
        out.push(r);
        return;
    }
    match r {
        '\x07' => out.push_str("\\a"),
        '\x08' => out.push_str("\\b"),
        '\x0c' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\x0b' => out.push_str("\\v"),
        _ => {
            let u = r as u32;
            if u < 0x20 || u == 0x7f {
                out.push_str("\\x");
                out.push(LOWER_HEX[(u >> 4) as usize] as char);
                out.push(LOWER_HEX[(u & 15) as usize] as char);
            } else if u < 0x10000 {
                out.push_str(&format!("\\u{u:04x}"));
            } else {
                out.push_str(&format!("\\U{u:08x}"));
            }
        }
    }
}

/// Go's `strconv.Quote` (or `QuoteToASCII` when `ascii_only`), byte-accurate for invalid UTF-8.
pub(crate) fn quote_str(s: &[u8], ascii_only: bool) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for chunk in s.utf8_chunks() {
        for c in chunk.valid().chars() {
            append_escaped_rune(&mut out, c, '"', ascii_only);
        }
        for &bad in chunk.invalid() {
            out.push_str("\\x");
            out.push(LOWER_HEX[(bad >> 4) as usize] as char);
            out.push(LOWER_HEX[(bad & 15) as usize] as char);
        }
    }
    out.push('"');
    out
}

/// Go's `strconv.QuoteRune` / `QuoteRuneToASCII`.
pub(crate) fn quote_rune(r: char, ascii_only: bool) -> String {
    let mut out = String::from("'");
    append_escaped_rune(&mut out, r, '\'', ascii_only);
    out.push('\'');
    out
}

/// Go's `strconv.CanBackquote`.
pub(crate) fn can_backquote(s: &[u8]) -> bool {
    let Ok(st) = std::str::from_utf8(s) else {
        return false;
    };
    st.chars().all(|c| {
        if c == '\u{FEFF}' || c == '`' {
            return false;
        }
        if (c as u32) < 0x20 && c != '\t' {
            return false;
        }
        c != '\x7f'
    })
}

/// `%#U` formatting of a rune as used in lexer error messages: `U+0022 '"'`.
pub(crate) fn format_unicode_sharp(c: char) -> String {
    let u = c as u32;
    if is_go_print(c) {
        format!("U+{u:04X} '{c}'")
    } else {
        format!("U+{u:04X}")
    }
}

/// Decimal digits of a float: `d` (no leading/trailing zeros), decimal point at `dp`.
struct Digits {
    d: Vec<u8>,
    dp: i32,
}

/// Parse Rust's `{:e}` output ("1.2345e-7") into digits.
fn digits_from_exp(s: &str) -> Digits {
    let (mant, exp) = s.split_once('e').unwrap_or((s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut d: Vec<u8> = mant.bytes().filter(|b| b.is_ascii_digit()).collect();
    while d.last() == Some(&b'0') {
        d.pop();
    }
    if d.is_empty() {
        return Digits { d, dp: 0 };
    }
    Digits { d, dp: exp + 1 }
}

fn fmt_e(out: &mut String, neg: bool, d: &Digits, prec: i32, fmt: u8) {
    if neg {
        out.push('-');
    }
    out.push(d.d.first().map_or('0', |&c| c as char));
    if prec > 0 {
        out.push('.');
        let m = (d.d.len() as i32).min(prec + 1);
        let mut i = 1;
        while i < m {
            out.push(d.d[i as usize] as char);
            i += 1;
        }
        while i <= prec {
            out.push('0');
            i += 1;
        }
    }
    out.push(fmt as char);
    let mut exp = if d.d.is_empty() { 0 } else { d.dp - 1 };
    if exp < 0 {
        out.push('-');
        exp = -exp;
    } else {
        out.push('+');
    }
    if exp < 10 {
        out.push('0');
    }
    out.push_str(&exp.to_string());
}

fn fmt_f(out: &mut String, neg: bool, d: &Digits, prec: i32) {
    if neg {
        out.push('-');
    }
    if d.dp > 0 {
        let m = (d.d.len() as i32).min(d.dp);
        for &c in &d.d[..m as usize] {
            out.push(c as char);
        }
        for _ in m..d.dp {
            out.push('0');
        }
    } else {
        out.push('0');
    }
    if prec > 0 {
        out.push('.');
        for i in 0..prec {
            let j = d.dp + i;
            let c = if j >= 0 && (j as usize) < d.d.len() {
                d.d[j as usize]
            } else {
                b'0'
            };
            out.push(c as char);
        }
    }
}

/// More fractional digits than any double's exact decimal expansion has (1,074).
const MAX_EXACT_FRACTION: usize = 1100;
/// More significant digits than any double's exact decimal expansion has (767).
const MAX_EXACT_DIGITS: usize = 800;

/// Go's `strconv.FormatFloat(v, fmt, prec, 64)`.
pub(crate) fn format_float(v: f64, fmt: u8, prec: i32) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v < 0.0 {
            "-Inf".into()
        } else {
            "+Inf".into()
        };
    }
    let neg = v.is_sign_negative();
    let a = v.abs();
    match fmt {
        b'b' => return fmt_b(v),
        b'x' | b'X' => return fmt_x(v, prec, fmt),
        _ => {}
    }
    let mut out = String::new();
    let shortest = prec < 0;
    let mut prec = prec;
    let digs = if a == 0.0 {
        Digits {
            d: Vec::new(),
            dp: 0,
        }
    } else if shortest {
        digits_from_exp(&format!("{a:e}"))
    } else {
        match fmt {
            b'f' => {
                // Rust's fixed formatting is exact with round-half-even, like Go's.
                if neg {
                    out.push('-');
                }
                // Rust's formatter panics on a precision above u16::MAX, which Go's `%.70000f`
                // asks for (found by fuzzing). A double's exact expansion ends within 1,074
                // fractional digits, so every digit past MAX_EXACT_FRACTION is a zero.
                let prec = prec as usize;
                out.push_str(&format!("{:.*}", prec.min(MAX_EXACT_FRACTION), a));
                out.extend(std::iter::repeat_n(
                    '0',
                    prec.saturating_sub(MAX_EXACT_FRACTION),
                ));
                return out;
            }
            // A double has at most 767 significant decimal digits, so a longer mantissa is
            // exact zeros, which `digits_from_exp` drops and the writers pad back.
            b'e' | b'E' => {
                digits_from_exp(&format!("{:.*e}", (prec as usize).min(MAX_EXACT_DIGITS), a))
            }
            _ => {
                if prec == 0 {
                    prec = 1;
                }
                digits_from_exp(&format!(
                    "{:.*e}",
                    ((prec - 1) as usize).min(MAX_EXACT_DIGITS),
                    a
                ))
            }
        }
    };
    let nd = digs.d.len() as i32;
    if shortest {
        prec = match fmt {
            b'e' | b'E' => (nd - 1).max(0),
            b'f' => (nd - digs.dp).max(0),
            _ => nd,
        };
    }
    match fmt {
        b'e' | b'E' => fmt_e(&mut out, neg, &digs, prec, fmt),
        b'f' => fmt_f(&mut out, neg, &digs, prec),
        _ => {
            let mut eprec = prec;
            if eprec > nd && nd >= digs.dp {
                eprec = nd;
            }
            if shortest {
                eprec = 6;
            }
            let exp = digs.dp - 1;
            if exp < -4 || exp >= eprec {
                if prec > nd {
                    prec = nd;
                }
                fmt_e(&mut out, neg, &digs, prec - 1, fmt + b'e' - b'g');
            } else {
                if prec > digs.dp {
                    prec = nd;
                }
                fmt_f(&mut out, neg, &digs, (prec - digs.dp).max(0));
            }
        }
    }
    out
}

fn float_parts(v: f64) -> (bool, u64, i32) {
    let bits = v.to_bits();
    let neg = bits >> 63 != 0;
    let mut exp = ((bits >> 52) & 0x7ff) as i32;
    let mut mant = bits & ((1u64 << 52) - 1);
    if exp == 0 {
        exp += 1;
    } else {
        mant |= 1u64 << 52;
    }
    exp -= 1023;
    (neg, mant, exp)
}

fn fmt_b(v: f64) -> String {
    let (neg, mant, exp) = float_parts(v);
    let e = exp - 52;
    format!(
        "{}{}p{}{}",
        if neg { "-" } else { "" },
        mant,
        if e >= 0 { "+" } else { "" },
        e
    )
}

fn fmt_x(v: f64, prec: i32, fmt: u8) -> String {
    let (neg, mut mant, mut exp) = float_parts(v);
    if mant == 0 {
        exp = 0;
    }
    mant <<= 60 - 52;
    while mant != 0 && mant & (1u64 << 60) == 0 {
        mant <<= 1;
        exp -= 1;
    }
    if (0..15).contains(&prec) {
        let shift = (prec * 4) as u32;
        let extra = (mant << shift) & ((1u64 << 60) - 1);
        mant >>= 60 - shift;
        if extra | (mant & 1) > 1u64 << 59 {
            mant += 1;
        }
        mant <<= 60 - shift;
        if mant & (1u64 << 61) != 0 {
            mant >>= 1;
            exp += 1;
        }
    }
    let hex: &[u8; 16] = if fmt == b'X' {
        b"0123456789ABCDEF"
    } else {
        LOWER_HEX
    };
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    out.push('0');
    out.push(fmt as char);
    out.push((b'0' + ((mant >> 60) & 1) as u8) as char);
    mant <<= 4;
    if prec < 0 && mant != 0 {
        out.push('.');
        while mant != 0 {
            out.push(hex[((mant >> 60) & 15) as usize] as char);
            mant <<= 4;
        }
    } else if prec > 0 {
        out.push('.');
        for _ in 0..prec {
            out.push(hex[((mant >> 60) & 15) as usize] as char);
            mant <<= 4;
        }
    }
    out.push(if fmt == b'X' { 'P' } else { 'p' });
    if exp < 0 {
        out.push('-');
        exp = -exp;
    } else {
        out.push('+');
    }
    if exp < 10 {
        out.push('0');
    }
    out.push_str(&exp.to_string());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_format_like_go() {
        assert_eq!(format_float(1e6, b'g', -1), "1e+06");
        assert_eq!(format_float(100000.0, b'g', -1), "100000");
        assert_eq!(format_float(1.5, b'g', 5), "1.5");
        assert_eq!(format_float(1.25, b'e', 6), "1.250000e+00");
        assert_eq!(format_float(0.0, b'e', 6), "0.000000e+00");
        assert_eq!(format_float(2.5, b'f', 0), "2");
        assert_eq!(format_float(1.0, b'x', -1), "0x1p+00");
        assert_eq!(format_float(-0.0, b'g', -1), "-0");
    }

    #[test]
    fn numbers_parse_like_go() {
        assert_eq!(parse_int0("0x_1F"), Some(31));
        assert_eq!(parse_int0("017"), Some(15));
        assert_eq!(parse_int0("08"), None);
        assert_eq!(parse_int0("1__0"), None);
        assert_eq!(parse_float("0x1p-2"), Some(0.25));
        assert_eq!(parse_float("0x1.8"), None);
        assert_eq!(parse_float("1e400"), None);
        assert_eq!(parse_float("08"), Some(8.0));
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_str(b"a\"\n\xff", false), "\"a\\\"\\n\\xff\"");
        assert_eq!(quote_str("é".as_bytes(), true), "\"\\u00e9\"");
        assert_eq!(unquote("`a\r\nb`"), Some(b"a\nb".to_vec()));
        assert_eq!(unquote("\"\\x41\\101\""), Some(b"AA".to_vec()));
        assert_eq!(unquote("\"\\'\""), None);
    }
}
