//! Test support (feature `testing`, for the other crates' tests): deterministic mangling of JSON
//! documents, for the "bad input gets an answer, never a crash" tests of the webhook and the
//! operator.

use serde_json::{Value, json};

/// Replacement values of every JSON type, odd for this API: empty, long, upper-case, with
/// reserved characters, template syntax, reserved and duplicate names.
pub fn odd_values() -> Vec<Value> {
    vec![
        json!(null),
        json!(true),
        json!(0),
        json!(-1),
        json!(70000),
        json!(1e308),
        json!(""),
        json!("x".repeat(300)),
        json!("UPPER_case"),
        json!("ü/:@..//##%"),
        json!("{{ .Missing }}"),
        json!([]),
        json!([""]),
        json!([null]),
        json!({}),
        json!({"name": 7}),
        json!({"name": "artifacts"}),
        json!([{"name": "dup"}, {"name": "dup"}]),
    ]
}

/// A seeded xorshift generator and what it does to documents: the same seed, the same variants.
pub struct Mangler {
    state: u64,
    odd: Vec<Value>,
}

impl Mangler {
    pub fn new(seed: u64) -> Self {
        Self {
            state: seed.max(1),
            odd: odd_values(),
        }
    }

    /// A number below `n` (which must not be 0).
    pub fn below(&mut self, n: usize) -> usize {
        let mut x = self.state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.state = x;
        (x % n as u64) as usize
    }

    /// One to three changes at random places of `doc`, each up to five levels down: a list may
    /// get one of its entries twice (names that must be unique), or a value is replaced, mostly
    /// by an odd value of the same JSON type (an apiserver's schema refuses the others).
    pub fn mangle(&mut self, doc: &mut Value) {
        for _ in 0..1 + self.below(3) {
            let depth = 1 + self.below(5);
            let at = self.walk(doc, depth);
            if let Value::Array(a) = at
                && !a.is_empty()
                && self.below(3) == 0
            {
                let twin = a[self.below(a.len())].clone();
                a.push(twin);
                continue;
            }
            let same: Vec<usize> = (0..self.odd.len())
                .filter(|&i| std::mem::discriminant(&self.odd[i]) == std::mem::discriminant(at))
                .collect();
            let pick = if same.is_empty() || self.below(3) == 0 {
                self.below(self.odd.len())
            } else {
                same[self.below(same.len())]
            };
            *at = self.odd[pick].clone();
        }
    }

    fn walk<'a>(&mut self, doc: &'a mut Value, depth: usize) -> &'a mut Value {
        let mut at = doc;
        for _ in 0..depth {
            let len = match &*at {
                Value::Object(m) => m.len(),
                Value::Array(a) => a.len(),
                _ => 0,
            };
            if len == 0 {
                break;
            }
            let i = self.below(len);
            at = match at {
                Value::Object(m) => match m.values_mut().nth(i) {
                    Some(v) => v,
                    None => unreachable!("index below the map's length"),
                },
                Value::Array(a) => &mut a[i],
                _ => unreachable!("only containers have a length"),
            };
        }
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_makes_the_same_variants_and_they_differ_from_the_input() {
        let doc = json!({"spec": {"imageName": "a", "bundles": ["b", "c"], "iso": true}});
        let run = |seed| {
            let mut m = Mangler::new(seed);
            (0..50)
                .map(|_| {
                    let mut d = doc.clone();
                    m.mangle(&mut d);
                    d
                })
                .collect::<Vec<_>>()
        };
        let a = run(7);
        assert_eq!(a, run(7));
        assert_ne!(a, run(8));
        assert!(a.iter().filter(|d| **d != doc).count() > 40, "{a:?}");
    }
}
