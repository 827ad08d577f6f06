//! Raw rule-pack specs, exactly as written in YAML, with source locations.
//!
//! These types only describe the file's shape; [`super::compile`] turns them
//! into validated rules. Every value a diagnostic may point at is wrapped in
//! [`Spanned`]. The YAML is shaped `check: { phrases: {...} }` (an externally
//! tagged enum) because serde's internally tagged enums and `flatten` buffer
//! values and lose their locations.

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_saphyr::Spanned;

use super::kinds::RawCheck;

/// The top of a pack file. Rules are kept opaque here and parsed one by one,
/// so that a mistake in one rule does not hide the mistakes in the others.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPackHeader {
    /// Display name of the pack; defaults to the file name.
    #[serde(default)]
    pub pack: Option<Spanned<String>>,
    #[serde(default)]
    pub description: Option<String>,
    /// Exceptions that apply to every `phrases` rule of the pack.
    #[serde(default)]
    pub exceptions: Option<Spanned<RawTerms>>,
    #[serde(default)]
    pub rules: Vec<Spanned<IgnoredAny>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub id: Spanned<String>,
    pub severity: Spanned<String>,
    /// Shown to people (Chinese).
    pub message: Spanned<String>,
    /// English message, for English e-mail and logs.
    #[serde(default)]
    pub message_en: Option<String>,
    /// Regulation clause(s) and law article(s): `5.3`, `广告法第十七条`.
    pub clause: Spanned<OneOrMany>,
    #[serde(default)]
    pub tags: Vec<Spanned<String>>,
    #[serde(default)]
    pub suggestion: Option<String>,
    /// English suggestion, for English e-mail.
    #[serde(default)]
    pub suggestion_en: Option<String>,
    #[serde(default)]
    pub examples: Option<RawExamples>,
    pub check: Spanned<RawCheck>,
}

/// A string or a list of strings.
#[derive(Debug)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

// By hand rather than `untagged`: serde's message for an untagged enum
// ("data did not match any variant") tells a rule author nothing, and the
// usual mistake is an unquoted clause number (`clause: 4.10`, read as 4.1).
impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<OneOrMany, D::Error> {
        struct V;
        const NUMBER: &str = "a clause is text: put it in quotes (\"4.10\"); unquoted, YAML reads a \
                              number (4.10 becomes 4.1)";
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a text or a list of texts")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany::One(s.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<OneOrMany, E> {
                Err(E::custom(NUMBER))
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<OneOrMany, E> {
                Err(E::custom(NUMBER))
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<OneOrMany, E> {
                Err(E::custom(NUMBER))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<OneOrMany, A::Error> {
                let mut v = Vec::new();
                loop {
                    match seq.next_element::<OneOrMany>()? {
                        Some(OneOrMany::One(s)) => v.push(s),
                        Some(OneOrMany::Many(_)) => {
                            return Err(serde::de::Error::custom("a list inside the list"));
                        }
                        None => return Ok(OneOrMany::Many(v)),
                    }
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// Texts the rule must flag and texts it must let pass; run by `complyd rules test`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawExamples {
    #[serde(default)]
    pub flag: Vec<Spanned<RawExample>>,
    #[serde(default)]
    pub pass: Vec<Spanned<RawExample>>,
}

/// A text (content rules), or a sequence of events on a virtual clock
/// (temporal rules).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawExample {
    Text(String),
    Events(RawEventExample),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEventExample {
    /// Events as in a log (`ts`, `type` and fields), in any order.
    pub events: Vec<serde_json::Value>,
    /// The virtual clock after the last event (RFC 3339).
    pub now: String,
}

/// A group of literal phrases and regexes, used wherever a rule names
/// "something to look for": hits, exceptions, triggers, markers.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawTerms {
    /// Literal phrases; matched after folding (see docs/rules.md).
    #[serde(default)]
    pub terms: Vec<Spanned<String>>,
    /// Plain-text files, one phrase per line, `#` starts a comment; paths
    /// are relative to the pack file.
    #[serde(default)]
    pub files: Vec<Spanned<String>>,
    /// Regular expressions (Rust `regex` syntax, case-insensitive).
    #[serde(default)]
    pub regex: Vec<Spanned<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// From a new user's trial: `clause: 5.3` said "data did not match any
    /// variant of untagged enum OneOrMany".
    #[test]
    fn a_clause_is_a_text_or_a_list_and_an_unquoted_number_says_to_quote_it() {
        let one: OneOrMany = serde_saphyr::from_str("\"4.10\"").unwrap();
        assert_eq!(one.into_vec(), ["4.10"]);
        let many: OneOrMany = serde_saphyr::from_str("[\"5.3\", 广告法第十七条]").unwrap();
        assert_eq!(many.into_vec(), ["5.3", "广告法第十七条"]);
        for bad in ["5.3", "[\"5.3\", 4.10]", "7"] {
            let e = serde_saphyr::from_str::<OneOrMany>(bad)
                .unwrap_err()
                .to_string();
            assert!(e.contains("put it in quotes"), "{bad}: {e}");
        }
        let e = serde_saphyr::from_str::<OneOrMany>("[[a]]")
            .unwrap_err()
            .to_string();
        assert!(e.contains("a list inside the list"), "{e}");
    }
}
