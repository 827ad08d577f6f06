//! `phrases`: any listed phrase or regex is a finding, unless an exception's
//! match covers the hit's whole span (最近 covers the 最 inside it; an
//! exception inside a longer hit, or merely touching it, cancels nothing).
//!
//! Two optional refinements, applied in this order after the exceptions:
//! - `validate: luhn | cn-id | cn-mobile` keeps only hits whose original
//!   text passes the validator (see [`crate::rules::validators`]);
//! - `near: { terms/files/regex, within: N }` keeps only hits with a hit of
//!   the `near` group at most N characters away in the same sentence (no
//!   `。！？；，` or line break between them); the finding then spans both.

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::{CheckSpec, ContentCheck};
use crate::check::{DocHits, Flag, UnitHit};
use crate::diag::{Code, Pos};
use crate::matcher::SlotId;
use crate::rules::compile::{Cx, pos_of};
use crate::rules::spec::RawTerms;
use crate::rules::validators::{self, Validator};

/// The largest `within:` accepted: proximity beyond a sentence is what
/// `together` is for.
const MAX_WITHIN: u32 = 50;
const DEFAULT_WITHIN: u32 = 6;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phrases {
    #[serde(default)]
    terms: Vec<Spanned<String>>,
    #[serde(default)]
    files: Vec<Spanned<String>>,
    #[serde(default)]
    regex: Vec<Spanned<String>>,
    #[serde(default)]
    exceptions: Option<Spanned<RawTerms>>,
    /// Name of a validator applied to each hit's original text.
    #[serde(default)]
    validate: Option<Box<Spanned<String>>>,
    /// A second group that must occur close to the hit.
    #[serde(default)]
    near: Option<Box<Spanned<Near>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Near {
    #[serde(default)]
    terms: Vec<Spanned<String>>,
    #[serde(default)]
    files: Vec<Spanned<String>>,
    #[serde(default)]
    regex: Vec<Spanned<String>>,
    /// Characters allowed between the hit and the `near` hit.
    #[serde(default)]
    within: Option<Spanned<u32>>,
}

#[derive(Debug)]
pub struct PhrasesCheck {
    hits: SlotId,
    exceptions: Vec<SlotId>,
    validate: Option<Validator>,
    near: Option<(SlotId, u32)>,
}

impl CheckSpec for Phrases {
    type Check = PhrasesCheck;

    fn compile(self, cx: &mut Cx<'_>, at: Pos) -> Option<PhrasesCheck> {
        let terms = RawTerms {
            terms: self.terms,
            files: self.files,
            regex: self.regex,
        };
        let hits = cx.terms(&terms, "phrases", at);
        let mut exceptions: Vec<SlotId> = cx.pack_exceptions.into_iter().collect();
        if let Some(ex) = &self.exceptions {
            exceptions.extend(cx.terms(&ex.value, "exceptions", Pos::from(&ex.referenced)));
        }
        let mut ok = true;
        let validate = match &self.validate {
            None => None,
            Some(name) => {
                let v = validators::by_name(name.value.trim());
                if v.is_none() {
                    ok = false;
                    cx.error(
                        pos_of(name),
                        Code::InvalidValue,
                        format!(
                            "unknown validator `{}`; expected one of: {}",
                            name.value,
                            validators::names().join(", ")
                        ),
                    );
                }
                v
            }
        };
        let near = match self.near {
            None => None,
            Some(n) => {
                let n = *n;
                let pos = Pos::from(&n.referenced);
                let Near {
                    terms,
                    files,
                    regex,
                    within,
                } = n.value;
                let within = match within {
                    Some(w) if w.value > MAX_WITHIN => {
                        ok = false;
                        cx.error(
                            pos_of(&w),
                            Code::InvalidValue,
                            format!(
                                "`within: {}` is too far; at most {MAX_WITHIN} characters (use `together` for whole documents)",
                                w.value
                            ),
                        );
                        MAX_WITHIN
                    }
                    Some(w) => w.value,
                    None => DEFAULT_WITHIN,
                };
                let raw = RawTerms {
                    terms,
                    files,
                    regex,
                };
                match cx.terms(&raw, "near", pos) {
                    Some(slot) => Some((slot, within)),
                    None => {
                        ok = false;
                        None
                    }
                }
            }
        };
        let hits = hits?;
        ok.then_some(PhrasesCheck {
            hits,
            exceptions,
            validate,
            near,
        })
    }
}

/// Characters that end the sentence (or clause) a `near` match must stay in.
fn breaks_sentence(c: char) -> bool {
    matches!(
        c,
        '。' | '！' | '？' | '；' | '，' | '!' | '?' | ';' | ',' | '\n' | '\r' | '｡' | '．'
    )
}

impl PhrasesCheck {
    /// The span from `hit` to the closest hit of the `near` group that lies
    /// within `within` characters in the same sentence, if any.
    fn near_span(
        &self,
        doc: &DocHits<'_>,
        slot: SlotId,
        within: u32,
        hit: UnitHit,
    ) -> Option<UnitHit> {
        let mut best: Option<(usize, UnitHit)> = None;
        for &n in doc.hits(slot) {
            if n.unit != hit.unit {
                continue;
            }
            let (gap_start, gap_end) = if n.end <= hit.start {
                (n.end, hit.start)
            } else if n.start >= hit.end {
                (hit.end, n.start)
            } else {
                (0, 0) // overlapping: no gap
            };
            let gap = doc.text(UnitHit {
                unit: hit.unit,
                start: gap_start,
                end: gap_end,
            });
            if gap.chars().any(breaks_sentence) {
                continue;
            }
            let len = gap.chars().filter(|c| !c.is_whitespace()).count();
            if len > within as usize || best.is_some_and(|(l, _)| l <= len) {
                continue;
            }
            let span = UnitHit {
                unit: hit.unit,
                start: hit.start.min(n.start),
                end: hit.end.max(n.end),
            };
            best = Some((len, span));
        }
        best.map(|(_, span)| span)
    }
}

impl ContentCheck for PhrasesCheck {
    fn evaluate(&self, doc: &DocHits<'_>, emit: &mut dyn FnMut(Flag)) {
        // Hits are de-duplicated per slot: a span found by a phrase and a
        // regex is one finding.
        for &hit in doc.hits(self.hits) {
            if self.exceptions.iter().any(|&ex| doc.covered(ex, hit)) {
                continue;
            }
            if let Some(valid) = self.validate
                && !valid(doc.text(hit))
            {
                continue;
            }
            let at = match self.near {
                None => hit,
                Some((slot, within)) => match self.near_span(doc, slot, within, hit) {
                    Some(span) => span,
                    None => continue,
                },
            };
            emit(Flag { at, detail: None });
        }
    }
}
