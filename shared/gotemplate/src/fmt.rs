//! Go's `fmt` printing (`Sprint`, `Sprintln`, `Sprintf`) for the value kinds a template
//! can hold, reproducing Go's flags, padding and `%!verb(...)` error forms.

use std::collections::BTreeMap;

use super::strconv::{can_backquote, format_float, quote_rune, quote_str};
use super::unicode::is_go_print;
use super::value::Value;

const LDIGITS: &[u8; 17] = b"0123456789abcdefx";
const UDIGITS: &[u8; 17] = b"0123456789ABCDEFX";

#[derive(Clone, Copy, Default)]
struct Flags {
    wid_present: bool,
    prec_present: bool,
    minus: bool,
    plus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    plus_v: bool,
    sharp_v: bool,
    wid: usize,
    prec: usize,
}

pub(crate) struct Printer<'a> {
    buf: Vec<u8>,
    f: Flags,
    data: &'a BTreeMap<String, String>,
}

fn rune_count(b: &[u8]) -> usize {
    b.utf8_chunks()
        .map(|c| c.valid().chars().count() + c.invalid().len())
        .sum()
}

/// Byte offsets of the first `n` runes of `b` (invalid bytes count as one rune each).
fn rune_prefix_len(b: &[u8], n: usize) -> usize {
    let mut count = 0;
    let mut off = 0;
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            if count == n {
                return off;
            }
            count += 1;
            off += c.len_utf8();
        }
        for _ in chunk.invalid() {
            if count == n {
                return off;
            }
            count += 1;
            off += 1;
        }
    }
    off
}

fn too_large(x: usize) -> bool {
    x > 1_000_000
}

/// Go's `parsenum`: (number, is_number, new index).
fn parse_num(s: &[u8], start: usize, end: usize) -> (usize, bool, usize) {
    if start >= end {
        return (0, false, end);
    }
    let mut num = 0usize;
    let mut isnum = false;
    let mut i = start;
    while i < end && s[i].is_ascii_digit() {
        if too_large(num) {
            return (0, false, end);
        }
        num = num * 10 + (s[i] - b'0') as usize;
        isnum = true;
        i += 1;
    }
    (num, isnum, i)
}

fn decode_rune(b: &[u8]) -> (char, usize) {
    match b.utf8_chunks().next() {
        Some(chunk) if !chunk.valid().is_empty() => {
            let c = chunk.valid().chars().next().unwrap_or('\u{FFFD}');
            (c, c.len_utf8())
        }
        _ => ('\u{FFFD}', 1),
    }
}

impl<'a> Printer<'a> {
    pub fn new(data: &'a BTreeMap<String, String>) -> Self {
        Printer {
            buf: Vec::new(),
            f: Flags::default(),
            data,
        }
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    fn write(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    fn write_str(&mut self, s: &str) {
        self.buf.extend_from_slice(s.as_bytes());
    }

    fn write_rune(&mut self, c: char) {
        let mut tmp = [0u8; 4];
        self.buf
            .extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
    }

    fn write_padding(&mut self, n: isize) {
        if n <= 0 {
            return;
        }
        let pad = if self.f.zero && !self.f.minus {
            b'0'
        } else {
            b' '
        };
        self.buf.extend(std::iter::repeat_n(pad, n as usize));
    }

    fn pad(&mut self, b: &[u8]) {
        if !self.f.wid_present || self.f.wid == 0 {
            self.write(b);
            return;
        }
        let width = self.f.wid as isize - rune_count(b) as isize;
        if !self.f.minus {
            self.write_padding(width);
            self.write(b);
        } else {
            self.write(b);
            self.write_padding(width);
        }
    }

    fn fmt_boolean(&mut self, v: bool) {
        self.pad(if v { b"true" } else { b"false" });
    }

    fn fmt_unicode(&mut self, u: u64) {
        let mut prec = 4;
        if self.f.prec_present && self.f.prec > 4 {
            prec = self.f.prec;
        }
        let hex = format!("{u:X}");
        let mut s = String::from("U+");
        for _ in hex.len()..prec {
            s.push('0');
        }
        s.push_str(&hex);
        if self.f.sharp
            && let Some(c) = char::from_u32(u as u32)
            && is_go_print(c)
        {
            s.push_str(" '");
            s.push(c);
            s.push('\'');
        }
        let old = self.f.zero;
        self.f.zero = false;
        self.pad(s.as_bytes());
        self.f.zero = old;
    }

    fn fmt_integer(&mut self, u: u64, base: u64, signed: bool, verb: char, digits: &[u8; 17]) {
        let negative = signed && (u as i64) < 0;
        let mut u = if negative {
            (u as i64).unsigned_abs()
        } else {
            u
        };
        let mut prec = 0usize;
        if self.f.prec_present {
            prec = self.f.prec;
            if prec == 0 && u == 0 {
                let old = self.f.zero;
                self.f.zero = false;
                self.write_padding(self.f.wid as isize);
                self.f.zero = old;
                return;
            }
        } else if self.f.zero && !self.f.minus && self.f.wid_present {
            prec = self.f.wid;
            if negative || self.f.plus || self.f.space {
                prec = prec.saturating_sub(1);
            }
        }
        // Built right to left, then reversed.
        let mut rev: Vec<u8> = Vec::with_capacity(24 + prec);
        while u >= base {
            rev.push(digits[(u % base) as usize]);
            u /= base;
        }
        rev.push(digits[u as usize]);
        while rev.len() < prec {
            rev.push(b'0');
        }
        if self.f.sharp {
            match base {
                2 => rev.extend_from_slice(b"b0"),
                8 if rev.last() != Some(&b'0') => rev.push(b'0'),
                16 => {
                    rev.push(digits[16]);
                    rev.push(b'0');
                }
                _ => {}
            }
        }
        if verb == 'O' {
            rev.extend_from_slice(b"o0");
        }
        if negative {
            rev.push(b'-');
        } else if self.f.plus {
            rev.push(b'+');
        } else if self.f.space {
            rev.push(b' ');
        }
        rev.reverse();
        let old = self.f.zero;
        self.f.zero = false;
        self.pad(&rev);
        self.f.zero = old;
    }

    fn truncate<'b>(&self, s: &'b [u8]) -> &'b [u8] {
        if self.f.prec_present {
            return &s[..rune_prefix_len(s, self.f.prec)];
        }
        s
    }

    fn fmt_s(&mut self, s: &[u8]) {
        let s = self.truncate(s);
        self.pad(s);
    }

    fn fmt_sx(&mut self, s: &[u8], digits: &[u8; 17]) {
        let mut length = s.len();
        if self.f.prec_present && self.f.prec < length {
            length = self.f.prec;
        }
        let mut width = 2 * length;
        if width > 0 {
            if self.f.space {
                if self.f.sharp {
                    width *= 2;
                }
                width += length - 1;
            } else if self.f.sharp {
                width += 2;
            }
        } else {
            if self.f.wid_present {
                self.write_padding(self.f.wid as isize);
            }
            return;
        }
        if self.f.wid_present && self.f.wid > width && !self.f.minus {
            self.write_padding((self.f.wid - width) as isize);
        }
        if self.f.sharp {
            self.buf.push(b'0');
            self.buf.push(digits[16]);
        }
        for (i, &c) in s[..length].iter().enumerate() {
            if self.f.space && i > 0 {
                self.buf.push(b' ');
                if self.f.sharp {
                    self.buf.push(b'0');
                    self.buf.push(digits[16]);
                }
            }
            self.buf.push(digits[(c >> 4) as usize]);
            self.buf.push(digits[(c & 15) as usize]);
        }
        if self.f.wid_present && self.f.wid > width && self.f.minus {
            self.write_padding((self.f.wid - width) as isize);
        }
    }

    fn fmt_q(&mut self, s: &[u8]) {
        let s = self.truncate(s);
        if self.f.sharp && can_backquote(s) {
            let mut v = Vec::with_capacity(s.len() + 2);
            v.push(b'`');
            v.extend_from_slice(s);
            v.push(b'`');
            self.pad(&v);
            return;
        }
        let q = quote_str(s, self.f.plus);
        self.pad(q.as_bytes());
    }

    fn rune_of(c: u64) -> char {
        if c > 0x10FFFF {
            return '\u{FFFD}';
        }
        // Go converts with rune(c), then invalid runes (surrogates) encode as U+FFFD.
        char::from_u32(c as u32).unwrap_or('\u{FFFD}')
    }

    fn fmt_c(&mut self, c: u64) {
        let r = Self::rune_of(c);
        let mut tmp = [0u8; 4];
        let s = r.encode_utf8(&mut tmp).as_bytes().to_vec();
        self.pad(&s);
    }

    fn fmt_qc(&mut self, c: u64) {
        let r = Self::rune_of(c);
        let q = quote_rune(r, self.f.plus);
        self.pad(q.as_bytes());
    }

    fn fmt_float_raw(&mut self, v: f64, verb: u8, prec: i32) {
        let prec = if self.f.prec_present {
            self.f.prec as i32
        } else {
            prec
        };
        let formatted = format_float(v, verb, prec);
        let mut num: Vec<u8> = Vec::with_capacity(formatted.len() + 1);
        if formatted.starts_with('-') || formatted.starts_with('+') {
            num.extend_from_slice(formatted.as_bytes());
        } else {
            num.push(b'+');
            num.extend_from_slice(formatted.as_bytes());
        }
        if self.f.space && num[0] == b'+' && !self.f.plus {
            num[0] = b' ';
        }
        if num.get(1) == Some(&b'I') || num.get(1) == Some(&b'N') {
            let old = self.f.zero;
            self.f.zero = false;
            if num[1] == b'N' && !self.f.space && !self.f.plus {
                num.remove(0);
            }
            self.pad(&num);
            self.f.zero = old;
            return;
        }
        if self.f.sharp && verb != b'b' {
            let mut digits: i32 = 0;
            if matches!(verb, b'v' | b'g' | b'G' | b'x') {
                digits = prec;
                if digits == -1 {
                    digits = 6;
                }
            }
            let mut tail: Vec<u8> = Vec::new();
            let mut has_dot = false;
            let mut saw_nonzero = false;
            let mut i = 1;
            while i < num.len() {
                match num[i] {
                    b'.' => has_dot = true,
                    b'p' | b'P' => {
                        tail.extend_from_slice(&num[i..]);
                        num.truncate(i);
                        break;
                    }
                    b'e' | b'E' if verb != b'x' && verb != b'X' => {
                        tail.extend_from_slice(&num[i..]);
                        num.truncate(i);
                        break;
                    }
                    c => {
                        if c != b'0' {
                            saw_nonzero = true;
                        }
                        if saw_nonzero {
                            digits -= 1;
                        }
                    }
                }
                i += 1;
            }
            if !has_dot {
                if num.len() == 2 && num[1] == b'0' {
                    digits -= 1;
                }
                num.push(b'.');
            }
            while digits > 0 {
                num.push(b'0');
                digits -= 1;
            }
            num.extend_from_slice(&tail);
        }
        if self.f.plus || num[0] != b'+' {
            if self.f.zero && !self.f.minus && self.f.wid_present && self.f.wid > num.len() {
                self.buf.push(num[0]);
                self.write_padding((self.f.wid - num.len()) as isize);
                self.write(&num[1..]);
                return;
            }
            self.pad(&num);
            return;
        }
        self.pad(&num[1..]);
    }

    fn fmt_float(&mut self, v: f64, verb: char) {
        match verb {
            'v' => self.fmt_float_raw(v, b'g', -1),
            'b' | 'g' | 'G' | 'x' | 'X' => self.fmt_float_raw(v, verb as u8, -1),
            'f' | 'e' | 'E' => self.fmt_float_raw(v, verb as u8, 6),
            'F' => self.fmt_float_raw(v, b'f', 6),
            _ => self.bad_verb(verb, &Value::Float(v)),
        }
    }

    fn fmt_complex(&mut self, re: f64, im: f64, verb: char) {
        match verb {
            'v' | 'b' | 'g' | 'G' | 'x' | 'X' | 'f' | 'F' | 'e' | 'E' => {
                let old_plus = self.f.plus;
                self.buf.push(b'(');
                self.fmt_float(re, verb);
                self.f.plus = true;
                self.fmt_float(im, verb);
                self.write_str("i)");
                self.f.plus = old_plus;
            }
            _ => self.bad_verb(verb, &Value::Complex(re, im)),
        }
    }

    fn fmt_int_verb(&mut self, v: u64, signed: bool, verb: char, orig: &Value) {
        match verb {
            'v' => {
                if self.f.sharp_v && !signed {
                    let sharp = self.f.sharp;
                    self.f.sharp = true;
                    self.fmt_integer(v, 16, false, 'v', LDIGITS);
                    self.f.sharp = sharp;
                } else {
                    self.fmt_integer(v, 10, signed, verb, LDIGITS);
                }
            }
            'd' => self.fmt_integer(v, 10, signed, verb, LDIGITS),
            'b' => self.fmt_integer(v, 2, signed, verb, LDIGITS),
            'o' | 'O' => self.fmt_integer(v, 8, signed, verb, LDIGITS),
            'x' => self.fmt_integer(v, 16, signed, verb, LDIGITS),
            'X' => self.fmt_integer(v, 16, signed, verb, UDIGITS),
            'c' => self.fmt_c(v),
            'q' => self.fmt_qc(v),
            'U' => self.fmt_unicode(v),
            _ => self.bad_verb(verb, orig),
        }
    }

    fn fmt_string(&mut self, s: &[u8], verb: char, orig: &Value) {
        match verb {
            'v' => {
                if self.f.sharp_v {
                    self.fmt_q(s);
                } else {
                    self.fmt_s(s);
                }
            }
            's' => self.fmt_s(s),
            'x' => self.fmt_sx(s, LDIGITS),
            'X' => self.fmt_sx(s, UDIGITS),
            'q' => self.fmt_q(s),
            _ => self.bad_verb(verb, orig),
        }
    }

    fn bad_verb(&mut self, verb: char, arg: &Value) {
        self.write_str("%!");
        self.write_rune(verb);
        self.buf.push(b'(');
        match arg {
            Value::Nil => self.write_str("<nil>"),
            _ => {
                self.write_str(arg.type_name());
                self.buf.push(b'=');
                self.print_arg(arg, 'v');
            }
        }
        self.buf.push(b')');
    }

    fn fmt_pointer(&mut self, arg: &Value, verb: char) {
        if let Value::Map = arg {
            // The real address is not reproducible; print a stable stand-in.
            let sharp = self.f.sharp;
            self.f.sharp = !sharp;
            self.fmt_integer(0xc000010000, 16, false, 'v', LDIGITS);
            self.f.sharp = sharp;
        } else {
            self.bad_verb(verb, arg);
        }
    }

    pub fn print_arg(&mut self, arg: &Value, verb: char) {
        if let Value::Nil = arg {
            match verb {
                'T' | 'v' => self.pad(b"<nil>"),
                _ => self.bad_verb(verb, arg),
            }
            return;
        }
        match verb {
            'T' => {
                self.fmt_s(arg.type_name().as_bytes());
                return;
            }
            'p' => {
                self.fmt_pointer(arg, 'p');
                return;
            }
            _ => {}
        }
        match arg {
            Value::Nil => {}
            Value::Bool(b) => match verb {
                't' | 'v' => self.fmt_boolean(*b),
                _ => self.bad_verb(verb, arg),
            },
            Value::Int(i) => self.fmt_int_verb(*i as u64, true, verb, arg),
            Value::Uint8(u) => self.fmt_int_verb(*u as u64, false, verb, arg),
            Value::Float(f) => self.fmt_float(*f, verb),
            Value::Complex(r, i) => self.fmt_complex(*r, *i, verb),
            Value::Str(s) => self.fmt_string(s, verb, arg),
            // %w wants an error value; a map is reported whole.
            Value::Map if verb == 'w' => self.bad_verb(verb, arg),
            Value::Map => self.print_map(verb),
        }
    }

    fn print_map(&mut self, verb: char) {
        let data = self.data;
        if self.f.sharp_v {
            self.write_str("map[string]string{");
        } else {
            self.write_str("map[");
        }
        for (i, (k, v)) in data.iter().enumerate() {
            if i > 0 {
                if self.f.sharp_v {
                    self.write_str(", ");
                } else {
                    self.buf.push(b' ');
                }
            }
            let kv = Value::str(k.as_bytes());
            self.fmt_string(k.as_bytes(), verb, &kv);
            self.buf.push(b':');
            let vv = Value::str(v.as_bytes());
            self.fmt_string(v.as_bytes(), verb, &vv);
        }
        self.buf.push(if self.f.sharp_v { b'}' } else { b']' });
    }

    /// Go's `Sprint`.
    pub fn sprint(&mut self, args: &[Value]) {
        let mut prev_string = false;
        for (i, a) in args.iter().enumerate() {
            let is_string = matches!(a, Value::Str(_));
            if i > 0 && !is_string && !prev_string {
                self.buf.push(b' ');
            }
            self.f = Flags::default();
            self.print_arg(a, 'v');
            prev_string = is_string;
        }
    }

    /// Go's `Sprintln`.
    pub fn sprintln(&mut self, args: &[Value]) {
        for (i, a) in args.iter().enumerate() {
            if i > 0 {
                self.buf.push(b' ');
            }
            self.f = Flags::default();
            self.print_arg(a, 'v');
        }
        self.buf.push(b'\n');
    }

    fn int_from_arg(args: &[Value], arg_num: usize) -> (usize, bool, bool, usize) {
        // Returns (magnitude, negative, is_int, new arg_num).
        if arg_num >= args.len() {
            return (0, false, false, arg_num);
        }
        let (n, ok): (i64, bool) = match &args[arg_num] {
            Value::Int(i) => (*i, true),
            Value::Uint8(u) => (*u as i64, true),
            _ => (0, false),
        };
        if !ok || !(-1_000_000..=1_000_000).contains(&n) {
            return (0, false, false, arg_num + 1);
        }
        (n.unsigned_abs() as usize, n < 0, true, arg_num + 1)
    }

    /// Go's `argNumber`: parses `[n]`. Returns (arg_num, new i, found, good).
    fn arg_number(
        &mut self,
        arg_num: usize,
        format: &[u8],
        i: usize,
        num_args: usize,
        reordered: &mut bool,
    ) -> (usize, usize, bool, bool) {
        if format.len() <= i || format[i] != b'[' {
            return (arg_num, i, false, true);
        }
        *reordered = true;
        let sub = &format[i..];
        // parseArgNumber
        let (index, wid, ok) = {
            if sub.len() < 3 {
                (0usize, 1usize, false)
            } else {
                let mut res = (0, 1, false);
                for j in 1..sub.len() {
                    if sub[j] == b']' {
                        let (width, ok, newi) = parse_num(sub, 1, j);
                        if !ok || newi != j {
                            res = (0, j + 1, false);
                        } else {
                            res = (width.wrapping_sub(1), j + 1, true);
                        }
                        break;
                    }
                }
                res
            }
        };
        if ok && index < num_args {
            return (index, i + wid, true, true);
        }
        (arg_num, i + wid, ok, false)
    }

    /// Go's `Sprintf`.
    pub fn sprintf(&mut self, format: &[u8], args: &[Value]) {
        let end = format.len();
        let mut arg_num = 0usize;
        let mut after_index;
        let mut reordered = false;
        let mut i = 0usize;
        'format: while i < end {
            let mut good_arg_num = true;
            let lasti = i;
            while i < end && format[i] != b'%' {
                i += 1;
            }
            if i > lasti {
                self.write(&format[lasti..i]);
            }
            if i >= end {
                break;
            }
            i += 1;
            self.f = Flags::default();
            // Flags, then the fast path for a simple verb.
            while i < end {
                let c = format[i];
                match c {
                    b'#' => self.f.sharp = true,
                    b'0' => self.f.zero = true,
                    b'+' => self.f.plus = true,
                    b'-' => self.f.minus = true,
                    b' ' => self.f.space = true,
                    _ => {
                        if c.is_ascii_lowercase() && arg_num < args.len() {
                            // Go treats %w's flags like %v's.
                            if c == b'v' || c == b'w' {
                                self.f.sharp_v = self.f.sharp;
                                self.f.sharp = false;
                                self.f.plus_v = self.f.plus;
                                self.f.plus = false;
                            }
                            self.print_arg(&args[arg_num], c as char);
                            arg_num += 1;
                            i += 1;
                            continue 'format;
                        }
                        break;
                    }
                }
                i += 1;
            }
            let (an, ni, found, good) =
                self.arg_number(arg_num, format, i, args.len(), &mut reordered);
            arg_num = an;
            i = ni;
            after_index = found;
            good_arg_num &= good;
            if i < end && format[i] == b'*' {
                i += 1;
                let (w, neg, ok, an) = Self::int_from_arg(args, arg_num);
                arg_num = an;
                self.f.wid = w;
                self.f.wid_present = ok;
                if !ok {
                    self.write_str("%!(BADWIDTH)");
                }
                if neg {
                    self.f.minus = true;
                    self.f.zero = false;
                }
                after_index = false;
            } else {
                let (w, ok, ni) = parse_num(format, i, end);
                self.f.wid = w;
                self.f.wid_present = ok;
                i = ni;
                if after_index && ok {
                    good_arg_num = false;
                }
            }
            if i + 1 < end && format[i] == b'.' {
                i += 1;
                if after_index {
                    good_arg_num = false;
                }
                let (an, ni, found, good) =
                    self.arg_number(arg_num, format, i, args.len(), &mut reordered);
                arg_num = an;
                i = ni;
                after_index = found;
                good_arg_num &= good;
                if i < end && format[i] == b'*' {
                    i += 1;
                    let (p, neg, ok, an) = Self::int_from_arg(args, arg_num);
                    arg_num = an;
                    self.f.prec = p;
                    self.f.prec_present = ok;
                    if neg {
                        self.f.prec = 0;
                        self.f.prec_present = false;
                    }
                    if !self.f.prec_present {
                        self.write_str("%!(BADPREC)");
                    }
                    after_index = false;
                } else {
                    let (p, ok, ni) = parse_num(format, i, end);
                    i = ni;
                    self.f.prec = p;
                    self.f.prec_present = true;
                    if !ok {
                        self.f.prec = 0;
                    }
                }
            }
            if !after_index {
                let (an, ni, _found, good) =
                    self.arg_number(arg_num, format, i, args.len(), &mut reordered);
                arg_num = an;
                i = ni;
                good_arg_num &= good;
            }
            if i >= end {
                self.write_str("%!(NOVERB)");
                break;
            }
            let (verb, size) = decode_rune(&format[i..]);
            i += size;
            if verb == '%' {
                self.buf.push(b'%');
            } else if !good_arg_num {
                self.write_str("%!");
                self.write_rune(verb);
                self.write_str("(BADINDEX)");
            } else if arg_num >= args.len() {
                self.write_str("%!");
                self.write_rune(verb);
                self.write_str("(MISSING)");
            } else {
                if verb == 'v' || verb == 'w' {
                    self.f.sharp_v = self.f.sharp;
                    self.f.sharp = false;
                    self.f.plus_v = self.f.plus;
                    self.f.plus = false;
                }
                self.print_arg(&args[arg_num], verb);
                arg_num += 1;
            }
        }
        if !reordered && arg_num < args.len() {
            self.f = Flags::default();
            self.write_str("%!(EXTRA ");
            for (k, a) in args[arg_num..].iter().enumerate() {
                if k > 0 {
                    self.write_str(", ");
                }
                if let Value::Nil = a {
                    self.write_str("<nil>");
                } else {
                    self.write_str(a.type_name());
                    self.buf.push(b'=');
                    self.print_arg(a, 'v');
                }
            }
            self.buf.push(b')');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sprintf(f: &str, args: &[Value]) -> String {
        let data = BTreeMap::new();
        let mut p = Printer::new(&data);
        p.sprintf(f.as_bytes(), args);
        String::from_utf8_lossy(&p.into_bytes()).into_owned()
    }

    #[test]
    fn printf_basics() {
        assert_eq!(
            sprintf(
                "%5.2f|%-4d|%x",
                &[Value::Float(2.5), Value::Int(7), Value::str(b"hi")]
            ),
            " 2.50|7   |6869"
        );
        assert_eq!(sprintf("%s %s", &[Value::str(b"a")]), "a %!s(MISSING)");
        assert_eq!(sprintf("%d", &[Value::str(b"a")]), "%!d(string=a)");
        assert_eq!(sprintf("x", &[Value::Int(1)]), "x%!(EXTRA int=1)");
        assert_eq!(
            sprintf(
                "%q %c %U",
                &[Value::Int(97), Value::Int(98), Value::Int(0x1F600)]
            ),
            "'a' b U+1F600"
        );
        assert_eq!(
            sprintf(
                "%08.3f|%+d|% d",
                &[Value::Float(-3.5), Value::Int(5), Value::Int(5)]
            ),
            "-003.500|+5| 5"
        );
    }
}
