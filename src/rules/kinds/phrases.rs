//! `phrases`: any listed phrase or regex is a finding, unless an exception's
//! match covers the hit's whole span (最近 covers the 最 inside it; an
//! exception inside a longer hit, or merely touching it, cancels nothing).

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::{CheckSpec, ContentCheck};
use crate::check::{DocHits, Flag};
use crate::diag::Pos;
use crate::matcher::SlotId;
use crate::rules::compile::Cx;
use crate::rules::spec::RawTerms;

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
}

#[derive(Debug)]
pub struct PhrasesCheck {
    hits: SlotId,
    exceptions: Vec<SlotId>,
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
        Some(PhrasesCheck {
            hits: hits?,
            exceptions,
        })
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
            emit(Flag {
                at: hit,
                detail: None,
            });
        }
    }
}
