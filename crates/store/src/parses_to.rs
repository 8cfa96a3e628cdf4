//! Whether JSON text parses to a given value, answered while reading the text: no value is
//! built. Storing a received event asks it of every body (is the payload simply the body
//! parsed?), and parsing the body a second time into a `Value`, comparing and dropping it was a
//! tenth of the receive path's instructions.
//!
//! It answers `true` only when `serde_json::from_slice::<Value>(raw)` would succeed and equal
//! `value`, and answers as that does for any text without a repeated key (the tests compare the
//! two). It reads with serde_json's own parser, so numbers, strings, escapes, nesting limits and
//! trailing bytes are judged as that parse judges them; a JSON number is the same kind of number
//! (unsigned, negative or float) as that parse makes it. An object with a repeated key, whose
//! last value the parse would keep, answers `false`: a `false` costs only a second copy of the
//! payload, a wrong `true` would lose it.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// Whether `raw` is JSON that parses to `value`.
pub(crate) fn parses_to(raw: &[u8], value: &Value) -> bool {
    let mut reader = serde_json::Deserializer::from_slice(raw);
    matches!(Matches(value).deserialize(&mut reader), Ok(true)) && reader.end().is_ok()
}

/// Reads one JSON value and answers whether it equals the one held.
struct Matches<'v>(&'v Value);

impl<'de> DeserializeSeed<'de> for Matches<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, reader: D) -> Result<bool, D::Error> {
        reader.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Matches<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<bool, E> {
        Ok(*self.0 == Value::Bool(b))
    }

    // serde_json reads a non-negative integer as u64, a negative one as i64, anything else as
    // f64, and its `Value` keeps which: 1 and 1.0 differ.
    fn visit_u64<E>(self, n: u64) -> Result<bool, E> {
        Ok(matches!(self.0, Value::Number(m) if m.is_u64() && m.as_u64() == Some(n)))
    }

    fn visit_i64<E>(self, n: i64) -> Result<bool, E> {
        Ok(matches!(self.0, Value::Number(m) if !m.is_u64() && m.is_i64() && m.as_i64() == Some(n)))
    }

    fn visit_f64<E>(self, n: f64) -> Result<bool, E> {
        Ok(matches!(self.0, Value::Number(m) if m.is_f64() && m.as_f64() == Some(n)))
    }

    fn visit_str<E>(self, s: &str) -> Result<bool, E> {
        Ok(matches!(self.0, Value::String(t) if t == s))
    }

    fn visit_unit<E>(self) -> Result<bool, E> {
        Ok(self.0.is_null())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<bool, A::Error> {
        let Value::Array(expected) = self.0 else {
            return Ok(false);
        };
        // Stopping early leaves the array unread, and the parse fails: `false` still.
        for item in expected {
            if items.next_element_seed(Matches(item))? != Some(true) {
                return Ok(false);
            }
        }
        Ok(items.next_element::<serde::de::IgnoredAny>()?.is_none())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<bool, A::Error> {
        let Value::Object(expected) = self.0 else {
            return Ok(false);
        };
        // The entries found, to tell a repeated key (whose last value the parse would keep)
        // from one that is missing: either answers `false`. Sorted once at the end rather than
        // searched at each key, so a large object costs n log n, not n squared.
        let mut seen: Vec<*const String> = Vec::with_capacity(expected.len());
        while let Some(found) = entries.next_key_seed(Key(expected))? {
            let Some((key, value)) = found else {
                return Ok(false);
            };
            if seen.len() == expected.len() || !entries.next_value_seed(Matches(value))? {
                return Ok(false);
            }
            seen.push(key);
        }
        seen.sort_unstable();
        seen.dedup();
        Ok(seen.len() == expected.len())
    }
}

/// Reads an object's key and finds it among the expected entries.
struct Key<'v>(&'v serde_json::Map<String, Value>);

impl<'de, 'v> DeserializeSeed<'de> for Key<'v> {
    type Value = Option<(&'v String, &'v Value)>;

    fn deserialize<D: Deserializer<'de>>(self, reader: D) -> Result<Self::Value, D::Error> {
        reader.deserialize_str(self)
    }
}

impl<'v> Visitor<'_> for Key<'v> {
    type Value = Option<(&'v String, &'v Value)>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object's key")
    }

    fn visit_str<E>(self, key: &str) -> Result<Self::Value, E> {
        Ok(self.0.get_key_value(key))
    }
}

#[cfg(test)]
mod tests {
    use super::parses_to;
    use serde_json::{Value, json};

    /// What `parses_to` must answer: the body parsed whole, compared.
    fn reference(raw: &[u8], value: &Value) -> bool {
        serde_json::from_slice::<Value>(raw).is_ok_and(|parsed| parsed == *value)
    }

    #[test]
    fn it_answers_as_parsing_and_comparing_would() {
        let texts: &[&str] = &[
            r#"{"a":1,"b":[true,null,"x"]}"#,
            r#" { "b" : [ true , null , "x" ] , "a" : 1 } "#,
            r#"{"a":1,"a":1}"#,
            r#"{"a":1,"a":2,"b":[true,null,"x"]}"#,
            r#"{"a":1}"#,
            r#"{"a":1,"b":[true,null,"x"],"c":0}"#,
            r#"{"a":1.0,"b":[true,null,"x"]}"#,
            r#"{"a":1,"b":[true,null]}"#,
            r#"{"a":1,"b":[true,null,"x",1]}"#,
            r#"{"a":1,"b":[true,null,"x"]} x"#,
            r#"{"a":1,"b":[true,null,"x"]"#,
            r#"{"\u0061":1,"b":[true,null,"\u0078"]}"#,
            r#"{"a":-1,"n":-9223372036854775808,"u":18446744073709551615,"f":1e400}"#,
            r#"{"a":-1,"n":-9223372036854775808,"u":18446744073709551615,"f":1e2}"#,
            r#"{"big":18446744073709551616,"neg":-9223372036854775809,"e":-0.0,"z":0}"#,
            r#"{"s":"é \ud83d\ude00 \n \\ \"","t":"\ud800"}"#,
            r#"{"s":"é \ud83d\ude00 \n \\ \""}"#,
            r#"[1,2,3]"#,
            r#"[]"#,
            r#"{}"#,
            r#"null"#,
            r#""a""#,
            r#"17"#,
            r#"not json"#,
            "",
        ];
        let values = [
            json!({"a": 1, "b": [true, null, "x"]}),
            json!({"a": 1}),
            json!({"a": 2, "b": [true, null, "x"]}),
            json!({"a": 1.0, "b": [true, null, "x"]}),
            json!({"a": 1, "b": [true, null, "x"], "c": 0}),
            json!({"a": -1, "n": i64::MIN, "u": u64::MAX, "f": 100.0}),
            json!({"a": -1, "n": i64::MIN, "u": u64::MAX, "f": 100}),
            json!({"big": 18446744073709551616.0, "neg": -9223372036854775809.0, "e": -0.0, "z": 0}),
            json!({"big": 18446744073709551616.0, "neg": -9223372036854775809.0, "e": 0.0, "z": 0}),
            json!({"s": "é 😀 \n \\ \""}),
            json!([1, 2, 3]),
            json!([1, 2]),
            json!([]),
            json!({}),
            json!(null),
            json!("a"),
            json!(17),
            json!(17.0),
            json!({"a": [1, {"b": null}]}),
        ];
        // Texts with a repeated key: `false` whatever the parse says.
        let repeated = [r#"{"a":1,"a":1}"#, r#"{"a":1,"a":2,"b":[true,null,"x"]}"#];
        let mut agreed_true = 0;
        for text in texts {
            for value in &values {
                let expected = reference(text.as_bytes(), value) && !repeated.contains(text);
                assert_eq!(
                    parses_to(text.as_bytes(), value),
                    expected,
                    "{text} against {value}"
                );
                agreed_true += usize::from(expected);
            }
            // Each text against its own parse, when it has one.
            if let Ok(own) = serde_json::from_slice::<Value>(text.as_bytes()) {
                assert_eq!(
                    parses_to(text.as_bytes(), &own),
                    !repeated.contains(text),
                    "{text}"
                );
            }
        }
        assert!(
            agreed_true >= 10,
            "the cases include matches ({agreed_true})"
        );
    }

    #[test]
    fn a_repeated_key_never_stands_in_for_a_missing_one() {
        let value = json!({"a": 1, "b": 2});
        assert!(!parses_to(br#"{"a":1,"a":1}"#, &value));
        assert!(parses_to(br#"{"b":2,"a":1}"#, &value));
        assert!(!reference(br#"{"a":1,"a":1}"#, &value));
        // The parse keeps the last of a repeated key's values; this answers `false` all the same.
        assert!(reference(br#"{"a":5,"a":1,"b":2}"#, &value));
        assert!(!parses_to(br#"{"a":5,"a":1,"b":2}"#, &value));
    }

    #[test]
    fn deep_nesting_is_refused_as_the_parse_refuses_it() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let mut value = json!([]);
        for _ in 0..199 {
            value = json!([value]);
        }
        assert_eq!(
            parses_to(deep.as_bytes(), &value),
            reference(deep.as_bytes(), &value)
        );
        let shallow = format!("{}{}", "[".repeat(20), "]".repeat(20));
        let mut value = json!([]);
        for _ in 0..19 {
            value = json!([value]);
        }
        assert!(parses_to(shallow.as_bytes(), &value));
    }
}
