//! Builtin functions of Go's `text/template` that are plain functions of their
//! (already evaluated) arguments: comparisons, `index`, `slice`, `len` and the escapers.

use std::collections::BTreeMap;

use super::fmt::Printer;
use super::unicode::is_go_print;
use super::value::Value;

pub(crate) type FuncResult = Result<Value, String>;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Invalid,
    Bool,
    Complex,
    Int,
    Float,
    String,
    Uint,
}

fn basic_kind(v: &Value) -> Kind {
    match v {
        Value::Bool(_) => Kind::Bool,
        Value::Int(_) => Kind::Int,
        Value::Uint8(_) => Kind::Uint,
        Value::Float(_) => Kind::Float,
        Value::Complex(..) => Kind::Complex,
        Value::Str(_) => Kind::String,
        Value::Nil | Value::Map => Kind::Invalid,
    }
}

fn as_i64(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        Value::Uint8(u) => *u as i64,
        _ => 0,
    }
}

fn as_u64(v: &Value) -> u64 {
    match v {
        Value::Uint8(u) => *u as u64,
        Value::Int(i) => *i as u64,
        _ => 0,
    }
}

fn sprint_v(v: &Value, data: &BTreeMap<String, String>) -> String {
    let mut p = Printer::new(data);
    p.sprint(std::slice::from_ref(v));
    String::from_utf8_lossy(&p.into_bytes()).into_owned()
}

/// Go's `eq arg1 arg2...`: true if arg1 equals any later argument.
pub(crate) fn eq(
    arg1: &Value,
    rest: &[Value],
    data: &BTreeMap<String, String>,
) -> Result<bool, String> {
    if rest.is_empty() {
        return Err("missing argument for comparison".into());
    }
    let k1 = basic_kind(arg1);
    for arg in rest {
        let k2 = basic_kind(arg);
        let truth = if k1 != k2 {
            match (k1, k2) {
                (Kind::Int, Kind::Uint) => as_i64(arg1) >= 0 && as_i64(arg1) as u64 == as_u64(arg),
                (Kind::Uint, Kind::Int) => as_i64(arg) >= 0 && as_u64(arg1) == as_i64(arg) as u64,
                _ => {
                    if !matches!(arg1, Value::Nil) && !matches!(arg, Value::Nil) {
                        return Err(format!(
                            "incompatible types for comparison: {} and {}",
                            arg1.type_name(),
                            arg.type_name()
                        ));
                    }
                    false
                }
            }
        } else {
            match (arg1, arg) {
                (Value::Bool(a), Value::Bool(b)) => a == b,
                (Value::Complex(a, b), Value::Complex(c, d)) => a == c && b == d,
                (Value::Float(a), Value::Float(b)) => a == b,
                (Value::Int(a), Value::Int(b)) => a == b,
                (Value::Uint8(a), Value::Uint8(b)) => a == b,
                (Value::Str(a), Value::Str(b)) => a == b,
                _ => {
                    let n1 = matches!(arg1, Value::Nil);
                    let n2 = matches!(arg, Value::Nil);
                    if n1 || n2 {
                        n1 == n2
                    } else {
                        return Err(format!(
                            "non-comparable type {}: {}",
                            sprint_v(arg, data),
                            arg.type_name()
                        ));
                    }
                }
            }
        };
        if truth {
            return Ok(true);
        }
    }
    Ok(false)
}

pub(crate) fn lt(a: &Value, b: &Value) -> Result<bool, String> {
    let k1 = basic_kind(a);
    let k2 = basic_kind(b);
    if k1 == Kind::Invalid || k2 == Kind::Invalid {
        return Err("invalid type for comparison".into());
    }
    if k1 != k2 {
        return match (k1, k2) {
            (Kind::Int, Kind::Uint) => Ok(as_i64(a) < 0 || (as_i64(a) as u64) < as_u64(b)),
            (Kind::Uint, Kind::Int) => Ok(as_i64(b) >= 0 && as_u64(a) < as_i64(b) as u64),
            _ => Err(format!(
                "incompatible types for comparison: {} and {}",
                a.type_name(),
                b.type_name()
            )),
        };
    }
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => Ok(x < y),
        (Value::Int(x), Value::Int(y)) => Ok(x < y),
        (Value::Uint8(x), Value::Uint8(y)) => Ok(x < y),
        (Value::Str(x), Value::Str(y)) => Ok(x < y),
        _ => Err("invalid type for comparison".into()),
    }
}

pub(crate) fn le(a: &Value, b: &Value, data: &BTreeMap<String, String>) -> Result<bool, String> {
    if lt(a, b)? {
        return Ok(true);
    }
    eq(a, std::slice::from_ref(b), data)
}

fn index_arg(v: &Value, cap: usize) -> Result<usize, String> {
    let x: i64 = match v {
        Value::Int(i) => *i,
        Value::Uint8(u) => *u as i64,
        Value::Nil => return Err("cannot index slice/array with nil".into()),
        other => {
            return Err(format!(
                "cannot index slice/array with type {}",
                other.type_name()
            ));
        }
    };
    if x < 0 || x as u64 > cap as u64 {
        return Err(format!("index out of range: {x}"));
    }
    Ok(x as usize)
}

pub(crate) fn index(
    item: &Value,
    indexes: &[Value],
    data: &BTreeMap<String, String>,
) -> FuncResult {
    if let Value::Nil = item {
        return Err("index of untyped nil".into());
    }
    let mut item = item.clone();
    for idx in indexes {
        item = match &item {
            Value::Str(s) => {
                let x = index_arg(idx, s.len())?;
                match s.get(x) {
                    Some(&b) => Value::Uint8(b),
                    None => return Err("reflect: string index out of range".into()),
                }
            }
            Value::Map => match idx {
                Value::Str(k) => {
                    let key = String::from_utf8_lossy(k);
                    let found = std::str::from_utf8(k).ok().and_then(|k| data.get(k));
                    let _ = key;
                    Value::str(found.map(|s| s.as_bytes()).unwrap_or(b""))
                }
                Value::Nil => return Err("value is nil; should be of type string".into()),
                other => {
                    return Err(format!(
                        "value has type {}; should be string",
                        other.type_name()
                    ));
                }
            },
            other => return Err(format!("can't index item of type {}", other.type_name())),
        };
    }
    Ok(item)
}

pub(crate) fn slice(item: &Value, indexes: &[Value]) -> FuncResult {
    if let Value::Nil = item {
        return Err("slice of untyped nil".into());
    }
    if indexes.len() > 3 {
        return Err(format!("too many slice indexes: {}", indexes.len()));
    }
    let s = match item {
        Value::Str(s) => {
            if indexes.len() == 3 {
                return Err("cannot 3-index slice a string".into());
            }
            s
        }
        other => return Err(format!("can't slice item of type {}", other.type_name())),
    };
    let cap = s.len();
    let mut idx = [0usize, s.len()];
    for (i, v) in indexes.iter().enumerate() {
        idx[i] = index_arg(v, cap)?;
    }
    if idx[0] > idx[1] {
        return Err(format!("invalid slice index: {} > {}", idx[0], idx[1]));
    }
    Ok(Value::str(&s[idx[0]..idx[1]]))
}

pub(crate) fn len(item: &Value, data: &BTreeMap<String, String>) -> FuncResult {
    match item {
        Value::Str(s) => Ok(Value::Int(s.len() as i64)),
        Value::Map => Ok(Value::Int(data.len() as i64)),
        Value::Nil => Err("reflect: call of reflect.Value.Type on zero Value".into()),
        other => Err(format!("len of type {}", other.type_name())),
    }
}

/// Go's `evalArgs` for html/js/urlquery: a lone string is used as is, anything else is
/// printed with `Sprint` (nil shows as `<no value>`).
pub(crate) fn eval_args(args: &[Value], data: &BTreeMap<String, String>) -> Vec<u8> {
    if let [Value::Str(s)] = args {
        return s.to_vec();
    }
    let printable: Vec<Value> = args
        .iter()
        .map(|a| match a {
            Value::Nil => Value::str(b"<no value>"),
            other => other.clone(),
        })
        .collect();
    let mut p = Printer::new(data);
    p.sprint(&printable);
    p.into_bytes()
}

pub(crate) fn html_escape(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    for &c in s {
        match c {
            0 => out.extend_from_slice("\u{FFFD}".as_bytes()),
            b'"' => out.extend_from_slice(b"&#34;"),
            b'\'' => out.extend_from_slice(b"&#39;"),
            b'&' => out.extend_from_slice(b"&amp;"),
            b'<' => out.extend_from_slice(b"&lt;"),
            b'>' => out.extend_from_slice(b"&gt;"),
            _ => out.push(c),
        }
    }
    out
}

pub(crate) fn js_escape(s: &[u8]) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if c < 0x80 {
            match c {
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\'' => out.extend_from_slice(b"\\'"),
                b'"' => out.extend_from_slice(b"\\\""),
                b'<' => out.extend_from_slice(b"\\u003C"),
                b'>' => out.extend_from_slice(b"\\u003E"),
                b'&' => out.extend_from_slice(b"\\u0026"),
                b'=' => out.extend_from_slice(b"\\u003D"),
                c if c < b' ' => {
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[(c >> 4) as usize]);
                    out.push(HEX[(c & 15) as usize]);
                }
                c => out.push(c),
            }
            i += 1;
            continue;
        }
        // Decode one rune; an invalid byte decodes as U+FFFD of width 1, which is printable.
        let end = (i + 4).min(s.len());
        let (r, size) = match s[i..end].utf8_chunks().next() {
            Some(ch) if !ch.valid().is_empty() => {
                let r = ch.valid().chars().next().unwrap_or('\u{FFFD}');
                (r, r.len_utf8())
            }
            _ => ('\u{FFFD}', 1),
        };
        if is_go_print(r) {
            out.extend_from_slice(&s[i..i + size]);
        } else {
            out.extend_from_slice(format!("\\u{:04X}", r as u32).as_bytes());
        }
        i += size;
    }
    out
}

/// Go's `url.QueryEscape`.
pub(crate) fn urlquery_escape(s: &[u8]) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = Vec::with_capacity(s.len());
    for &c in s {
        if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'~') {
            out.push(c);
        } else if c == b' ' {
            out.push(b'+');
        } else {
            out.push(b'%');
            out.push(HEX[(c >> 4) as usize]);
            out.push(HEX[(c & 15) as usize]);
        }
    }
    out
}
