//! Runtime values. Data is a `map[string]string`, so only a handful of Go types can
//! ever appear: the map itself, strings, the constants' types and builtin results.

use std::rc::Rc;

#[derive(Clone, Debug)]
pub(crate) enum Value {
    /// Go's invalid `reflect.Value` / untyped nil.
    Nil,
    Bool(bool),
    /// Go `int` (64-bit).
    Int(i64),
    /// Go `uint8`, produced by `index` on a string.
    Uint8(u8),
    Float(f64),
    Complex(f64, f64),
    /// Go `string`: arbitrary bytes (slicing can split UTF-8 sequences).
    Str(Rc<[u8]>),
    /// The data map (the only map that exists at run time).
    Map,
}

impl Value {
    pub fn str(b: &[u8]) -> Value {
        Value::Str(Rc::from(b))
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Uint8(_) => "uint8",
            Value::Float(_) => "float64",
            Value::Complex(..) => "complex128",
            Value::Str(_) => "string",
            Value::Map => "map[string]string",
        }
    }

    /// Go's `isTrue` (every kind here has a defined truth).
    pub fn truth(&self, map_len: usize) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Uint8(u) => *u != 0,
            Value::Float(f) => *f != 0.0,
            Value::Complex(r, i) => *r != 0.0 || *i != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::Map => map_len > 0,
        }
    }
}
