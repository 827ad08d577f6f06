//! `required`: when any trigger appears in a document, one of the required
//! phrases must appear too (the health-food disclaimer). The finding points
//! at the first trigger.

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
pub struct Required {
    triggers: Spanned<RawTerms>,
    require: Spanned<RawTerms>,
}

#[derive(Debug)]
pub struct RequiredCheck {
    triggers: SlotId,
    require: SlotId,
    /// The first required phrase, named in the finding so the author knows
    /// what to add.
    first_required: String,
}

impl CheckSpec for Required {
    type Check = RequiredCheck;

    fn compile(self, cx: &mut Cx<'_>, _at: Pos) -> Option<RequiredCheck> {
        let triggers = cx.terms(
            &self.triggers.value,
            "triggers",
            Pos::from(&self.triggers.referenced),
        );
        let require = cx.terms(
            &self.require.value,
            "require",
            Pos::from(&self.require.referenced),
        );
        let first_required = self
            .require
            .value
            .terms
            .first()
            .map(|t| t.value.clone())
            .unwrap_or_default();
        Some(RequiredCheck {
            triggers: triggers?,
            require: require?,
            first_required,
        })
    }
}

impl ContentCheck for RequiredCheck {
    fn evaluate(&self, doc: &DocHits<'_>, emit: &mut dyn FnMut(Flag)) {
        if !doc.hits(self.require).is_empty() {
            return;
        }
        if let Some(&first) = doc.hits(self.triggers).first() {
            let detail = if self.first_required.is_empty() {
                None
            } else {
                Some((
                    format!("缺少：{}", self.first_required),
                    format!("missing: {}", self.first_required),
                ))
            };
            emit(Flag { at: first, detail });
        }
    }
}
