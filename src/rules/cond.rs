//! Event patterns (`{type: …, where: {…}}`) and named lists.
//!
//! A condition tests one field of an event: equality (a plain value),
//! `ne`, `in`, `not_in`, `exists`, `regex`, numeric `gt/ge/lt/le`, and
//! membership in a named list (`in_list` / `not_in_list`, with `key:` for
//! lists keyed by another field, such as an account's roster). Values are
//! compared as text, so `1` and `"1"` are equal.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;

use regex::Regex;
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::compile::{Cx, pos_of};
use crate::diag::{Code, Diagnostic};
use crate::event::{Event, FieldValue, TYPES};

/// The file in a rules directory that holds named lists.
pub const LISTS_FILE: &str = "lists.yaml";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEventMatch {
    #[serde(rename = "type")]
    pub kind: Spanned<String>,
    #[serde(default, rename = "where")]
    pub conditions: BTreeMap<String, Spanned<RawCond>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawCond {
    Equals(Scalar),
    Ops(Box<RawOps>),
}

#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum Scalar {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

impl Scalar {
    fn text(&self) -> String {
        match self {
            Scalar::Bool(b) => b.to_string(),
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Str(s) => s.clone(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOps {
    #[serde(default)]
    eq: Option<Scalar>,
    #[serde(default)]
    ne: Option<Scalar>,
    #[serde(default, rename = "in")]
    one_of: Option<Vec<Scalar>>,
    #[serde(default)]
    not_in: Option<Vec<Scalar>>,
    #[serde(default)]
    exists: Option<bool>,
    #[serde(default)]
    regex: Option<String>,
    #[serde(default)]
    gt: Option<f64>,
    #[serde(default)]
    ge: Option<f64>,
    #[serde(default)]
    lt: Option<f64>,
    #[serde(default)]
    le: Option<f64>,
    #[serde(default)]
    in_list: Option<String>,
    #[serde(default)]
    not_in_list: Option<String>,
    /// For keyed lists: the event field whose value selects the list entry.
    #[serde(default)]
    key: Option<String>,
}

#[derive(Debug)]
enum Test {
    Eq(String),
    Ne(String),
    OneOf(Vec<String>, bool),
    Exists(bool),
    Regex(Regex),
    Cmp(fn(f64, f64) -> bool, f64),
    List {
        list: String,
        key: Option<String>,
        member: bool,
    },
}

#[derive(Debug)]
struct Cond {
    field: String,
    test: Test,
}

/// A compiled event pattern.
#[derive(Debug)]
pub struct EventMatch {
    pub kind: String,
    conds: Vec<Cond>,
}

impl EventMatch {
    pub fn matches(&self, ev: &Event, lists: &Lists) -> bool {
        ev.kind == self.kind && self.conds.iter().all(|c| c.holds(ev, lists))
    }
}

impl Cond {
    fn holds(&self, ev: &Event, lists: &Lists) -> bool {
        let value = ev.get(&self.field);
        let text = value.and_then(FieldValue::text);
        match &self.test {
            Test::Exists(want) => value.is_some_and(|v| !v.is_empty()) == *want,
            Test::Eq(v) => text.is_some_and(|t| same_value(t, v)),
            Test::Ne(v) => !text.is_some_and(|t| same_value(t, v)),
            Test::OneOf(vs, member) => {
                text.is_some_and(|t| vs.iter().any(|v| same_value(t, v))) == *member
            }
            Test::Regex(re) => text.is_some_and(|t| re.is_match(t)),
            Test::Cmp(op, n) => text
                .and_then(|t| t.parse::<f64>().ok())
                .is_some_and(|x| op(x, *n)),
            Test::List { list, key, member } => {
                let Some(t) = text else { return false };
                let entries = match key {
                    None => lists.flat(list),
                    Some(k) => ev.str(k).and_then(|kv| lists.keyed(list, kv)),
                };
                entries.is_some_and(|e| e.iter().any(|v| v == t)) == *member
            }
        }
    }
}

/// Equal as text, or as numbers when both are numbers (`1`, `1.0`, `1e0`).
fn same_value(a: &str, b: &str) -> bool {
    a == b || matches!((a.parse::<f64>(), b.parse::<f64>()), (Ok(x), Ok(y)) if x == y)
}

/// Compiles an event pattern, reporting problems to `cx`.
pub fn compile_match(cx: &mut Cx<'_>, raw: &RawEventMatch) -> Option<EventMatch> {
    let mut ok = true;
    if !TYPES.iter().any(|(t, _)| *t == raw.kind.value) {
        ok = false;
        let known: Vec<&str> = TYPES.iter().map(|(t, _)| *t).collect();
        cx.error(
            pos_of(&raw.kind),
            Code::InvalidValue,
            format!(
                "unknown event type `{}`; known types: {}",
                raw.kind.value,
                known.join(", ")
            ),
        );
    }
    let mut conds = Vec::new();
    for (field, cond) in &raw.conditions {
        match compile_cond(cx, field, cond) {
            Some(c) => conds.extend(c),
            None => ok = false,
        }
    }
    ok.then(|| EventMatch {
        kind: raw.kind.value.clone(),
        conds,
    })
}

fn compile_cond(cx: &mut Cx<'_>, field: &str, raw: &Spanned<RawCond>) -> Option<Vec<Cond>> {
    let at = pos_of(raw);
    let cond = |test| Cond {
        field: field.to_string(),
        test,
    };
    let ops = match &raw.value {
        RawCond::Equals(v) => return Some(vec![cond(Test::Eq(v.text()))]),
        RawCond::Ops(ops) => ops,
    };
    let mut out = Vec::new();
    let mut ok = true;
    let texts = |v: &[Scalar]| v.iter().map(Scalar::text).collect::<Vec<_>>();
    if let Some(v) = &ops.eq {
        out.push(cond(Test::Eq(v.text())));
    }
    if let Some(v) = &ops.ne {
        out.push(cond(Test::Ne(v.text())));
    }
    if let Some(v) = &ops.one_of {
        out.push(cond(Test::OneOf(texts(v), true)));
    }
    if let Some(v) = &ops.not_in {
        out.push(cond(Test::OneOf(texts(v), false)));
    }
    if let Some(v) = ops.exists {
        out.push(cond(Test::Exists(v)));
    }
    if let Some(re) = &ops.regex {
        match Regex::new(re) {
            Ok(r) => out.push(cond(Test::Regex(r))),
            Err(e) => {
                ok = false;
                cx.error(at, Code::InvalidRegex, format!("invalid regex: {e}"));
            }
        }
    }
    type Compare = fn(f64, f64) -> bool;
    let cmps: [(Option<f64>, Compare); 4] = [
        (ops.gt, |a, b| a > b),
        (ops.ge, |a, b| a >= b),
        (ops.lt, |a, b| a < b),
        (ops.le, |a, b| a <= b),
    ];
    for (n, op) in cmps {
        if let Some(n) = n {
            out.push(cond(Test::Cmp(op, n)));
        }
    }
    for (name, member) in [(&ops.in_list, true), (&ops.not_in_list, false)] {
        let Some(name) = name else { continue };
        let keyed = cx.lists.is_keyed(name);
        match (keyed, &ops.key) {
            (None, _) => {
                ok = false;
                let known = cx.lists.names().join(", ");
                cx.error(
                    at,
                    Code::InvalidValue,
                    format!(
                        "no list named `{name}` in {LISTS_FILE}{}",
                        if known.is_empty() {
                            String::new()
                        } else {
                            format!(" (lists: {known})")
                        }
                    ),
                );
            }
            (Some(true), None) => {
                ok = false;
                cx.error(
                    at,
                    Code::InvalidValue,
                    format!("list `{name}` is keyed: add `key:` naming the event field that selects the entry"),
                );
            }
            (Some(false), Some(_)) => {
                ok = false;
                cx.error(
                    at,
                    Code::InvalidValue,
                    format!("list `{name}` is a plain list: remove `key:`"),
                );
            }
            _ => out.push(cond(Test::List {
                list: name.clone(),
                key: ops.key.clone(),
                member,
            })),
        }
    }
    if ok && out.is_empty() {
        ok = false;
        cx.error(
            at,
            Code::InvalidValue,
            "empty condition: use a value, or one of eq, ne, in, not_in, exists, regex, gt, ge, lt, le, in_list, not_in_list",
        );
    }
    ok.then_some(out)
}

/// Named lists: designated publishers, account rosters, groups.
#[derive(Debug, Default, Clone)]
pub struct Lists {
    flat: BTreeMap<String, Vec<String>>,
    keyed: BTreeMap<String, BTreeMap<String, Vec<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLists {
    lists: BTreeMap<String, RawList>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawList {
    Flat(Vec<String>),
    Keyed(BTreeMap<String, Vec<String>>),
}

impl Lists {
    /// Parses `lists.yaml`.
    pub fn parse(path: &Path, src: &str) -> Result<Lists, Diagnostic> {
        let raw: RawLists = super::yaml::parse(path, src)?;
        let mut lists = Lists::default();
        for (name, list) in raw.lists {
            match list {
                RawList::Flat(v) => {
                    lists.flat.insert(name, v);
                }
                RawList::Keyed(m) => {
                    lists.keyed.insert(name, m);
                }
            }
        }
        Ok(lists)
    }

    pub fn flat(&self, name: &str) -> Option<&Vec<String>> {
        self.flat.get(name)
    }

    pub fn keyed(&self, name: &str, key: &str) -> Option<&Vec<String>> {
        self.keyed.get(name)?.get(key)
    }

    /// `Some(true)` for a keyed list, `Some(false)` for a plain one.
    pub fn is_keyed(&self, name: &str) -> Option<bool> {
        if self.keyed.contains_key(name) {
            Some(true)
        } else {
            self.flat.contains_key(name).then_some(false)
        }
    }

    pub fn names(&self) -> Vec<&str> {
        self.flat
            .keys()
            .chain(self.keyed.keys())
            .map(String::as_str)
            .collect()
    }

    /// Every member of a plain list, or of all entries of a keyed one.
    pub fn members(&self, name: &str) -> Vec<String> {
        match (self.flat.get(name), self.keyed.get(name)) {
            (Some(v), _) => v.clone(),
            (None, Some(m)) => m.keys().cloned().collect(),
            _ => Vec::new(),
        }
    }
}

/// The key of an event: the values of `fields`, joined. `None` when a field
/// is missing (the event cannot belong to any obligation).
pub fn key_of(ev: &Event, fields: &[String]) -> Option<(String, String)> {
    let key = key_ref(ev, fields)?;
    let subject = subject_of(ev, fields, &key);
    Some((key.into_owned(), subject))
}

/// [`key_of`]'s key alone, borrowed from the event when it is one field (as
/// nearly every rule's is): rules look obligations and facts up by it for
/// every event they are interested in, and only the rare event that opens
/// an obligation or is reported needs it as a `String`.
pub fn key_ref<'e>(ev: &'e Event, fields: &[String]) -> Option<Cow<'e, str>> {
    if let [only] = fields {
        return ev.str(only).map(Cow::Borrowed);
    }
    let values: Option<Vec<_>> = fields.iter().map(|f| ev.str(f)).collect();
    // U+001F (unit separator) cannot occur in the ids people type.
    Some(Cow::Owned(values?.join("\u{1f}")))
}

/// [`key_of`]'s subject (the key as people read it) of an event whose key
/// [`key_ref`] gave as `key`.
pub fn subject_of(ev: &Event, fields: &[String], key: &str) -> String {
    match fields {
        [_] => key.to_owned(),
        _ => (fields.iter())
            .map(|f| ev.str(f).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("/"),
    }
}

/// A duration as rule authors write it: `90m`, `1h`, `24h`, `5d`, `2w`,
/// `1h30m`. Days and weeks are 24 h and 7 × 24 h of counted time.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let err = || {
        format!(
            "invalid duration `{s}`: write a number and a unit, such as 30m, 1h, 24h, 5d, 2w or 1h30m"
        )
    };
    let mut total: u64 = 0;
    let mut num = String::new();
    let mut any = false;
    for c in s.trim().chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit: u64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return Err(err()),
        };
        let n: u64 = num.parse().map_err(|_| err())?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(err)?;
        num.clear();
        any = true;
    }
    if !num.is_empty() || !any || total == 0 {
        return Err(err());
    }
    Ok(std::time::Duration::from_secs(total))
}

/// Reports an empty key list.
pub fn check_key(cx: &mut Cx<'_>, key: &Spanned<Vec<String>>) -> bool {
    if key.value.is_empty() {
        cx.error(
            pos_of(key),
            Code::InvalidValue,
            "`key` needs at least one field name",
        );
        return false;
    }
    true
}

/// Compiles a spanned duration, reporting a bad one.
pub fn compile_duration(cx: &mut Cx<'_>, d: &Spanned<String>) -> Option<std::time::Duration> {
    match parse_duration(&d.value) {
        Ok(v) => Some(v),
        Err(e) => {
            cx.error(pos_of(d), Code::InvalidValue, e);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_compare_as_numbers_when_both_are() {
        assert!(same_value("1.0", "1"));
        assert!(same_value("1e3", "1000"));
        assert!(same_value("abc", "abc"));
        assert!(!same_value("1.0", "1.5"));
        assert!(!same_value("01a", "1a"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h").unwrap().as_secs(), 3600);
        assert_eq!(parse_duration("1h30m").unwrap().as_secs(), 5400);
        assert_eq!(parse_duration("90d").unwrap().as_secs(), 90 * 86_400);
        assert!(parse_duration("1").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("0h").is_err());
        assert!(parse_duration("1y").is_err());
    }
}
