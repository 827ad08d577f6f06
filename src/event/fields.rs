//! An event's fields: all their text in one buffer, each field two ranges.
//!
//! An event has a handful of fields, each read by name a few times. As
//! `serde_json::Value`s every value was a `String` of its own (~6 per line),
//! allocated while the line was parsed, again when the event was remembered
//! as a fact, and freed each time: ~12 % of the daemon's core thread while a
//! log was ingested. Here names and values are written one after another into
//! one `String` (strings unescaped, numbers as serde_json writes them, lists
//! and objects as compact JSON), and each field is a name range, a value range
//! and what kind of value it is. An event's fields are then two allocations
//! however many there are, to build, to copy and to drop.

use std::fmt;
use std::fmt::Write as _;

use foldhash::HashMap;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Names searched one by one while reading a line, before an index.
const LINEAR: usize = 32;

/// One field's value, borrowed from its event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValue<'a> {
    Null,
    /// A string, unescaped.
    Str(&'a str),
    /// A number as serde_json writes it (`1`, `-2`, `1.5`, `1e300`).
    Num(&'a str),
    Bool(bool),
    /// A list or an object, as compact JSON.
    Json(&'a str),
}

impl<'a> FieldValue<'a> {
    /// As text: strings as they are, numbers and booleans written out;
    /// `None` for null and for a list or an object.
    pub fn text(self) -> Option<&'a str> {
        match self {
            FieldValue::Str(s) | FieldValue::Num(s) => Some(s),
            FieldValue::Bool(b) => Some(if b { "true" } else { "false" }),
            FieldValue::Null | FieldValue::Json(_) => None,
        }
    }

    pub fn is_null(self) -> bool {
        self == FieldValue::Null
    }

    /// An empty list, object or text (blank included) counts as absent for
    /// `exists` (`hashtags: []` has no hashtags).
    pub fn is_empty(self) -> bool {
        match self {
            FieldValue::Str(s) => s.trim().is_empty(),
            FieldValue::Json(j) => j == "[]" || j == "{}",
            _ => false,
        }
    }

    /// As JSON, the way the line could have written it.
    pub fn to_json(self) -> String {
        match self {
            FieldValue::Null => "null".into(),
            FieldValue::Str(s) => serde_json::to_string(s).unwrap_or_default(),
            FieldValue::Num(s) | FieldValue::Json(s) => s.into(),
            FieldValue::Bool(b) => b.to_string(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Null,
    Str,
    Num,
    Bool,
    Json,
}

/// A range of [`Fields::text`]. `u32`: a line is far below 4 GiB (the
/// tailer cuts lines at `max_line_bytes`); a longer one is refused.
#[derive(Debug, Clone, Copy)]
struct Span {
    at: u32,
    end: u32,
}

#[derive(Debug, Clone, Copy)]
struct Field {
    /// The name's [`tag`], compared before the name itself.
    tag: u32,
    name: Span,
    value: Span,
    kind: Kind,
}

/// A name's length, first and last byte: different for the names events use
/// of the same length (`ts`/`by`, `account`/`content`/`channel`), so a look-up
/// compares whole names only where it finds one.
fn tag(name: &str) -> u32 {
    let b = name.as_bytes();
    let (first, last) = (b.first().copied(), b.last().copied());
    (b.len() as u32) << 16 | u32::from(first.unwrap_or(0)) << 8 | u32::from(last.unwrap_or(0))
}

#[derive(Debug, Clone, Default)]
pub struct Fields {
    /// Every name and value, one after another (a value replaced by a
    /// repeated name stays behind, unused).
    text: String,
    /// In line order; a repeated name keeps its first place.
    list: Vec<Field>,
}

impl Fields {
    /// A field's value, null included; `None` when absent.
    pub fn get(&self, name: &str) -> Option<FieldValue<'_>> {
        let (t, want) = (tag(name), name.as_bytes());
        let text = self.text.as_bytes();
        // Compared as bytes: a `str` slice would check both ends for
        // character boundaries on every candidate (~10 look-ups per event,
        // each a measurable part of evaluating it); equal bytes are equal
        // text all the same.
        let f = self.list.iter().find(|f| {
            f.tag == t && text.get(f.name.at as usize..f.name.end as usize) == Some(want)
        })?;
        Some(self.value(f))
    }

    /// Every field in line order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, FieldValue<'_>)> {
        self.list.iter().map(|f| (self.at(f.name), self.value(f)))
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    fn at(&self, s: Span) -> &str {
        &self.text[s.at as usize..s.end as usize]
    }

    fn value(&self, f: &Field) -> FieldValue<'_> {
        let s = self.at(f.value);
        match f.kind {
            Kind::Null => FieldValue::Null,
            Kind::Str => FieldValue::Str(s),
            Kind::Num => FieldValue::Num(s),
            Kind::Bool => FieldValue::Bool(s == "true"),
            Kind::Json => FieldValue::Json(s),
        }
    }
}

/// Equal when the same names have the same values in the same order,
/// whatever replaced values the text still holds.
impl PartialEq for Fields {
    fn eq(&self, other: &Fields) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Serialize for Fields {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.list.len()))?;
        for (name, value) in self.iter() {
            map.serialize_entry(name, &AsJson(value))?;
        }
        map.end()
    }
}

struct AsJson<'a>(FieldValue<'a>);

impl Serialize for AsJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        // Numbers, lists and objects are rare in events: read back here
        // rather than kept twice.
        let parsed =
            |t: &str| serde_json::from_str::<serde_json::Value>(t).map_err(S::Error::custom);
        match self.0 {
            FieldValue::Null => s.serialize_unit(),
            FieldValue::Str(t) => s.serialize_str(t),
            FieldValue::Bool(b) => s.serialize_bool(b),
            FieldValue::Num(t) | FieldValue::Json(t) => parsed(t)?.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Fields, D::Error> {
        FieldsSeed { capacity: 64 }.deserialize(d)
    }
}

/// Reads an object into [`Fields`], its text sized for `capacity` bytes
/// (the line's length: one allocation for all of it).
pub(crate) struct FieldsSeed {
    pub capacity: usize,
}

impl<'de> DeserializeSeed<'de> for FieldsSeed {
    type Value = Fields;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Fields, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FieldsSeed {
    type Value = Fields;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields, A::Error> {
        let mut fields = Fields {
            text: String::with_capacity(self.capacity),
            list: Vec::with_capacity(map.size_hint().unwrap_or(8)),
        };
        // Past a few dozen names a line is not an ordinary event (a 1 MiB
        // line may hold ~100k): repeated names are then found by hash, not
        // by a search that would make the line cost seconds.
        let mut index: Option<HashMap<Box<str>, usize>> = None;
        while let Some(name) = map.next_key_seed(Append(&mut fields.text))? {
            if fields.list.len() == LINEAR && index.is_none() {
                let by_name = fields.list.iter().enumerate();
                index = Some(
                    by_name
                        .map(|(i, f)| (fields.at(f.name).into(), i))
                        .collect(),
                );
            }
            let new = fields.at(name);
            let t = tag(new);
            let at = match &index {
                Some(ix) => ix.get(new).copied(),
                None => (fields.list.iter()).position(|f| f.tag == t && fields.at(f.name) == new),
            };
            if at.is_some() {
                // Known already: its name is not kept twice.
                fields.text.truncate(name.at as usize);
            } else if let Some(ix) = &mut index {
                ix.insert(new.into(), fields.list.len());
            }
            let start = fields.text.len();
            let kind = map.next_value_seed(ValueSeed(&mut fields.text))?;
            let value = span(start, &fields.text)?;
            match at {
                Some(i) => (fields.list[i].value, fields.list[i].kind) = (value, kind),
                None => fields.list.push(Field {
                    tag: t,
                    name,
                    value,
                    kind,
                }),
            }
        }
        Ok(fields)
    }
}

fn span<E: de::Error>(start: usize, text: &str) -> Result<Span, E> {
    match (u32::try_from(start), u32::try_from(text.len())) {
        (Ok(at), Ok(end)) => Ok(Span { at, end }),
        _ => Err(E::custom("an event longer than 4 GiB")),
    }
}

/// A field name, appended to the text as read (unescaped).
struct Append<'b>(&'b mut String);

impl<'de> DeserializeSeed<'de> for Append<'_> {
    type Value = Span;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Span, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for Append<'_> {
    type Value = Span;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Span, E> {
        let start = self.0.len();
        self.0.push_str(s);
        span(start, self.0)
    }
}

/// A field value, appended to the text as read; says what kind it was.
struct ValueSeed<'b>(&'b mut String);

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Kind;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Kind, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Kind;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Kind, E> {
        self.0.push_str(s);
        Ok(Kind::Str)
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Kind, E> {
        self.0.push_str(if b { "true" } else { "false" });
        Ok(Kind::Bool)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Kind, E> {
        Ok(Kind::Null)
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Kind, E> {
        self.number(serde_json::Number::from(n))
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Kind, E> {
        self.number(serde_json::Number::from(n))
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Kind, E> {
        match serde_json::Number::from_f64(n) {
            Some(n) => self.number(n),
            None => self.visit_unit(),
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Kind, A::Error> {
        let v = serde_json::Value::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
        self.json(&v)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Kind, A::Error> {
        let v = serde_json::Value::deserialize(de::value::MapAccessDeserializer::new(map))?;
        self.json(&v)
    }
}

impl ValueSeed<'_> {
    /// Written as serde_json writes a number (`1.0` stays `1.0`, `1e2` is
    /// `100.0`), so conditions read the text a `Value` would have given.
    fn number<E: de::Error>(self, n: serde_json::Number) -> Result<Kind, E> {
        write!(self.0, "{n}").map_err(E::custom)?;
        Ok(Kind::Num)
    }

    /// A list or an object as compact JSON, read back when written out.
    fn json<E: de::Error>(self, v: &serde_json::Value) -> Result<Kind, E> {
        write!(self.0, "{v}").map_err(E::custom)?;
        Ok(Kind::Json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(s: &str) -> Fields {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn reads_and_writes_an_object_and_the_last_of_a_repeated_name_wins() {
        let f = read(r#"{"ts":"x","n":1,"odd name":[1,{"a":null}],"n":2}"#);
        assert_eq!(f.len(), 3);
        assert_eq!(f.get("n"), Some(FieldValue::Num("2")));
        assert_eq!(
            f.get("odd name"),
            Some(FieldValue::Json(r#"[1,{"a":null}]"#))
        );
        assert_eq!(f.get("missing"), None);
        let back = serde_json::to_string(&f).unwrap();
        assert_eq!(back, r#"{"ts":"x","n":2,"odd name":[1,{"a":null}]}"#);
        let again: Fields = serde_json::from_str(&back).unwrap();
        assert_eq!(again, f);
        assert_ne!(read(r#"{"ts":"x","n":1,"odd name":[1,{"a":null}]}"#), f);
    }

    #[test]
    fn every_kind_of_value_reads_as_serde_json_values_would_and_round_trips() {
        let line = r#"{"s":"a\"b\\c\u00e9\n","i":-2,"u":18446744073709551615,"f":1.50,"e":1e2,"t":true,"b":false,"z":null,"l":["养生",""],"o":{"b":1,"a":[]},"el":[],"eo":{},"blank":" "}"#;
        let f = read(line);
        let old: serde_json::Map<String, serde_json::Value> = serde_json::from_str(line).unwrap();
        for (name, v) in f.iter() {
            let want = &old[name];
            let text = match want {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                serde_json::Value::Bool(b) => Some(b.to_string()),
                _ => None,
            };
            assert_eq!(v.text().map(str::to_owned), text, "{name}");
            assert_eq!(v.is_null(), want.is_null(), "{name}");
            assert_eq!(v.to_json(), want.to_string(), "{name}");
        }
        assert_eq!(f.get("s"), Some(FieldValue::Str("a\"b\\cé\n")));
        assert_eq!(f.get("f").and_then(FieldValue::text), Some("1.5"));
        assert_eq!(f.get("e").and_then(FieldValue::text), Some("100.0"));
        let empty: Vec<&str> = f
            .iter()
            .filter(|(_, v)| v.is_empty())
            .map(|(n, _)| n)
            .collect();
        assert_eq!(empty, ["el", "eo", "blank"]);
        let back = serde_json::to_string(&f).unwrap();
        let reread: serde_json::Value = serde_json::from_str(&back).unwrap();
        assert_eq!(reread, serde_json::Value::Object(old));
        assert_eq!(read(&back), f);
    }

    #[test]
    fn names_with_escapes_are_read_as_written() {
        let f = read(r#"{"t\u0065xt":"a","\"q\"":"b"}"#);
        assert_eq!(f.get("text"), Some(FieldValue::Str("a")));
        assert_eq!(f.get("\"q\""), Some(FieldValue::Str("b")));
        assert_eq!(
            serde_json::to_string(&f).unwrap(),
            r#"{"text":"a","\"q\"":"b"}"#
        );
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
        assert_eq!(f.get("k5"), Some(FieldValue::Str("again")));
        assert_eq!(f.get("k99999"), Some(FieldValue::Bool(true)));
        assert_eq!(f.get("n"), Some(FieldValue::Num("1")));
        assert_eq!(f.get("k6"), Some(FieldValue::Num("6")));
        // Quadratic, this was ~60 s in a debug build; linear, well under one.
        assert!(took < std::time::Duration::from_secs(10), "{took:?}");
    }
}
