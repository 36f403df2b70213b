//! The fast path of JSON decoding: rows of plain numbers read straight from the body into
//! the feature vector with a `DeserializeSeed`, without building a `serde_json::Value`
//! tree. It accepts only what the full decoder ([`crate::decode`]) accepts the same way
//! (an object of every input with numbers, an array of numbers, a batch of those); on
//! anything else (strings holding numbers, `instances`, an error) it gives up and the
//! full decoder reads the body again, so every message stays the full decoder's.

use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// Rows decoded from `body`: `(values, count, batch)`, or `None` to use the full path.
pub(crate) fn decode(body: &[u8], inputs: &[String]) -> Option<(Vec<f32>, usize, bool)> {
    let mut out = Vec::with_capacity(inputs.len());
    let mut de = serde_json::Deserializer::from_slice(body);
    let shape = Top {
        inputs,
        out: &mut out,
    }
    .deserialize(&mut de)
    .ok()?;
    de.end().ok()?;
    let (count, batch) = match shape {
        Shape::Row => (1, false),
        Shape::Batch(0) => return None,
        Shape::Batch(n) => (n, true),
    };
    Some((out, count, batch))
}

/// The fast path's only error: "not mine, ask the full decoder".
type Giveup = serde_json::Error;

fn giveup() -> Giveup {
    Giveup::custom("")
}

enum Shape {
    Row,
    Batch(usize),
}

/// The finite 32-bit float of a JSON number, if it is one.
fn finite(x: f64) -> Result<f32, Giveup> {
    let f = x as f32;
    if x.is_finite() && f.is_finite() {
        Ok(f)
    } else {
        Err(giveup())
    }
}

struct Top<'a> {
    inputs: &'a [String],
    out: &'a mut Vec<f32>,
}

impl<'de> DeserializeSeed<'de> for Top<'_> {
    type Value = Shape;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Shape, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Top<'_> {
    type Value = Shape;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a row or a batch")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Shape, A::Error> {
        object_row(self.inputs, self.out, map)?;
        Ok(Shape::Row)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
        // An array of numbers is one row; an array of arrays or objects is a batch.
        let start = self.out.len();
        let mut numbers = 0;
        let mut rows = 0;
        while let Some(item) = seq.next_element_seed(Item {
            inputs: self.inputs,
            out: self.out,
        })? {
            match item {
                ItemKind::Number => numbers += 1,
                ItemKind::Row => rows += 1,
            }
            if numbers > 0 && rows > 0 {
                return Err(A::Error::custom(""));
            }
        }
        if rows > 0 {
            return Ok(Shape::Batch(rows));
        }
        if self.out.len() - start != self.inputs.len() {
            return Err(A::Error::custom(""));
        }
        Ok(Shape::Row)
    }
}

enum ItemKind {
    Number,
    Row,
}

/// An element of a top-level array: a number (of a row) or a row (of a batch).
struct Item<'a> {
    inputs: &'a [String],
    out: &'a mut Vec<f32>,
}

impl<'de> DeserializeSeed<'de> for Item<'_> {
    type Value = ItemKind;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<ItemKind, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Item<'_> {
    type Value = ItemKind;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number or a row")
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<ItemKind, E> {
        self.out.push(finite(v).map_err(|_| E::custom(""))?);
        Ok(ItemKind::Number)
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ItemKind, E> {
        self.visit_f64(v as f64)
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ItemKind, E> {
        self.visit_f64(v as f64)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ItemKind, A::Error> {
        object_row(self.inputs, self.out, map)?;
        Ok(ItemKind::Row)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ItemKind, A::Error> {
        let start = self.out.len();
        while let Some(v) = seq.next_element_seed(Number)? {
            self.out.push(v);
        }
        if self.out.len() - start != self.inputs.len() {
            return Err(A::Error::custom(""));
        }
        Ok(ItemKind::Row)
    }
}

/// A JSON number that is a finite 32-bit float.
struct Number;

impl<'de> DeserializeSeed<'de> for Number {
    type Value = f32;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<f32, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Number {
    type Value = f32;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number")
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<f32, E> {
        finite(v).map_err(|_| E::custom(""))
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<f32, E> {
        self.visit_f64(v as f64)
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<f32, E> {
        self.visit_f64(v as f64)
    }
}

/// A key of a row object, read as the index of the input it names without a `String` of
/// its own (serde's `Cow<str>` always allocates); a key that is not an input gives up.
struct InputIndex<'a>(&'a [String]);

impl<'de> DeserializeSeed<'de> for InputIndex<'_> {
    type Value = usize;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for InputIndex<'_> {
    type Value = usize;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an input's name")
    }
    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<usize, E> {
        self.0
            .iter()
            .position(|n| n == key)
            .ok_or_else(|| E::custom(""))
    }
}

/// An object naming every input once, each with a number, appended in input order.
fn object_row<'de, A: MapAccess<'de>>(
    inputs: &[String],
    out: &mut Vec<f32>,
    mut map: A,
) -> Result<(), A::Error> {
    let base = out.len();
    out.resize(base + inputs.len(), 0.0);
    // Which inputs were given: a bit each (models with more than 64 named inputs are
    // rare, and sent as arrays; they take the full path).
    if inputs.len() > 64 {
        return Err(A::Error::custom(""));
    }
    let mut seen = 0u64;
    while let Some(i) = map.next_key_seed(InputIndex(inputs))? {
        let v = map.next_value_seed(Number)?;
        if seen & (1 << i) != 0 {
            return Err(A::Error::custom(""));
        }
        seen |= 1 << i;
        out[base + i] = v;
    }
    if seen.count_ones() as usize != inputs.len() {
        return Err(A::Error::custom(""));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn what_it_takes_and_what_it_leaves_to_the_full_decoder() {
        let n = names(&["a", "b"]);
        let d = |b: &str| decode(b.as_bytes(), &n);
        assert_eq!(d(r#"{"b": 2, "a": 1}"#), Some((vec![1.0, 2.0], 1, false)));
        assert_eq!(d("[1, 2.5]"), Some((vec![1.0, 2.5], 1, false)));
        assert_eq!(
            d(r#"[[1, 2], {"a": 3, "b": 4}]"#),
            Some((vec![1.0, 2.0, 3.0, 4.0], 2, true))
        );
        for full in [
            r#"{"a": "1", "b": 2}"#,
            r#"{"a": 1}"#,
            r#"{"a": 1, "a": 2}"#,
            r#"{"a": 1, "b": 2, "c": 3}"#,
            r#"{"instances": [[1, 2]]}"#,
            r#"{"a": 1e39, "b": 2}"#,
            "[1]",
            "[]",
            "[[1, 2], 3]",
            "[[1, 2, 3]]",
            r#"{"a": 1, "b": 2} x"#,
            "42",
            "",
        ] {
            assert_eq!(d(full), None, "{full}");
        }
    }
}
