//! An event's fields: a short list rather than a map.
//!
//! An event has a handful of fields, each read by name a few times. As a
//! `serde_json::Map` (a BTreeMap) every line paid an allocation per key and
//! per tree node, and as much again to drop them: ~15 % of the daemon's core
//! thread while a log was ingested. Here the field names that events use are
//! not allocated at all, and the fields sit in one vector, in line order.

use std::borrow::Cow;
use std::fmt;

use foldhash::HashMap;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// A field name: one of the names events use, or any other, owned.
type Name = Cow<'static, str>;

/// Names searched one by one while reading a line, before an index.
const LINEAR: usize = 32;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Fields(Vec<(Name, Value)>);

impl Fields {
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v)
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
        // Past a few dozen names a line is not an ordinary event (a 1 MiB
        // line may hold ~100k): repeated names are then found by hash, not
        // by a search that would make the line cost seconds.
        let mut index: Option<HashMap<Name, usize>> = None;
        while let Some(NameSeed(name)) = map.next_key()? {
            let value: Value = map.next_value()?;
            if fields.0.len() == LINEAR && index.is_none() {
                let by_name = fields
                    .0
                    .iter()
                    .enumerate()
                    .map(|(i, (n, _))| (n.clone(), i));
                index = Some(by_name.collect());
            }
            let at = match &index {
                Some(ix) => ix.get(&name).copied(),
                None => fields.0.iter().position(|(n, _)| *n == name),
            };
            match at {
                Some(i) => fields.0[i].1 = value,
                None => {
                    if let Some(ix) = &mut index {
                        ix.insert(name.clone(), fields.0.len());
                    }
                    fields.0.push((name, value));
                }
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
    fn a_line_of_a_hundred_thousand_names_reads_in_linear_time() {
        let mut s = String::from("{\"n\":0");
        for i in 0..100_000 {
            s.push_str(&format!(",\"k{i}\":{i}"));
        }
        // Repeats past the index's start keep the last value too.
        s.push_str(",\"k5\":\"again\",\"k99999\":true,\"n\":1}");
        let t = std::time::Instant::now();
        let f: Fields = serde_json::from_str(&s).unwrap();
        let took = t.elapsed();
        assert_eq!(f.len(), 100_001);
        assert_eq!(f.get("k5"), Some(&json!("again")));
        assert_eq!(f.get("k99999"), Some(&json!(true)));
        assert_eq!(f.get("n"), Some(&json!(1)));
        // Quadratic, this was ~60 s in a debug build; linear, well under one.
        assert!(took < std::time::Duration::from_secs(10), "{took:?}");
    }
}
