//! An event's fields: a short list rather than a map.
//!
//! An event has a handful of fields, each read by name a few times. As a
//! `serde_json::Map` (a BTreeMap) every line paid an allocation per key and
//! per tree node, and as much again to drop them: ~15 % of the daemon's core
//! thread while a log was ingested. Here the field names that events use are
//! not allocated at all, and the fields sit in one vector, in line order.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// A field name: one of the names events use, or any other, owned.
type Name = Cow<'static, str>;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Fields(Vec<(Name, Value)>);

impl Fields {
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// Sets a field; a name given twice keeps the last value, as JSON
    /// parsers do.
    pub fn insert(&mut self, name: &str, value: Value) {
        match self.0.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name_of(name), value)),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0.iter().map(|(n, v)| (n.as_ref(), v))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The names of the fields events have (docs/events.md), shared.
fn name_of(s: &str) -> Name {
    let known = match s {
        "ts" => "ts",
        "type" => "type",
        "thread" => "thread",
        "account" => "account",
        "channel" => "channel",
        "complexity" => "complexity",
        "text" => "text",
        "by" => "by",
        "content" => "content",
        "author" => "author",
        "sha256" => "sha256",
        "stage" => "stage",
        "decision" => "decision",
        "hashtags" => "hashtags",
        "title" => "title",
        "detail" => "detail",
        "complaint" => "complaint",
        "employee" => "employee",
        "period" => "period",
        "grade" => "grade",
        "supervisor" => "supervisor",
        "customer" => "customer",
        "id" => "id",
        _ => return Cow::Owned(s.to_owned()),
    };
    Cow::Borrowed(known)
}

impl Serialize for Fields {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (n, v) in &self.0 {
            map.serialize_entry(n.as_ref(), v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Fields, D::Error> {
        d.deserialize_map(FieldsVisitor)
    }
}

struct FieldsVisitor;

impl<'de> Visitor<'de> for FieldsVisitor {
    type Value = Fields;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields, A::Error> {
        let mut fields = Fields(Vec::with_capacity(map.size_hint().unwrap_or(8)));
        while let Some(NameSeed(name)) = map.next_key()? {
            let value: Value = map.next_value()?;
            match fields.0.iter_mut().find(|(n, _)| *n == name) {
                Some(slot) => slot.1 = value,
                None => fields.0.push((name, value)),
            }
        }
        Ok(fields)
    }
}

/// A field name read without allocating when it is a known one.
struct NameSeed(Name);

impl<'de> Deserialize<'de> for NameSeed {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<NameSeed, D::Error> {
        d.deserialize_str(NameVisitor)
    }
}

struct NameVisitor;

impl Visitor<'_> for NameVisitor {
    type Value = NameSeed;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<NameSeed, E> {
        Ok(NameSeed(name_of(s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_and_writes_an_object_and_the_last_of_a_repeated_name_wins() {
        let f: Fields =
            serde_json::from_str(r#"{"ts":"x","n":1,"odd name":[1,{"a":null}],"n":2}"#).unwrap();
        assert_eq!(f.len(), 3);
        assert_eq!(f.get("n"), Some(&json!(2)));
        assert_eq!(f.get("odd name"), Some(&json!([1, {"a": null}])));
        assert_eq!(f.get("missing"), None);
        let back = serde_json::to_string(&f).unwrap();
        assert_eq!(back, r#"{"ts":"x","n":2,"odd name":[1,{"a":null}]}"#);
        let again: Fields = serde_json::from_str(&back).unwrap();
        assert_eq!(again, f);
    }

    #[test]
    fn names_with_escapes_are_read_as_written() {
        let f: Fields = serde_json::from_str(r#"{"t\u0065xt":"a","\"q\"":"b"}"#).unwrap();
        assert_eq!(f.get("text"), Some(&json!("a")));
        assert_eq!(f.get("\"q\""), Some(&json!("b")));
        assert!(matches!(f.0[0].0, Cow::Borrowed(_)), "known once unescaped");
    }

    #[test]
    fn anything_but_an_object_is_refused() {
        for bad in ["[1]", "\"s\"", "12", "null"] {
            let e = serde_json::from_str::<Fields>(bad).unwrap_err();
            assert!(e.is_data(), "{bad}: {e}");
        }
    }

    #[test]
    fn insert_replaces_or_appends() {
        let mut f = Fields::default();
        f.insert("a", json!(1));
        f.insert("text", json!("x"));
        f.insert("a", json!(3));
        let all: Vec<_> = f.iter().collect();
        assert_eq!(all, [("a", &json!(3)), ("text", &json!("x"))]);
    }
}
