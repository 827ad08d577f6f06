//! `together`: phrase groups that must not all occur in the same document
//! unless a marker is present (health-knowledge wording plus a purchase link
//! without a "广告" mark). The finding points at the earliest hit of the
//! group completed last, i.e. where the combination became a violation.

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::{CheckSpec, ContentCheck};
use crate::check::{DocHits, Flag};
use crate::diag::{Code, Pos};
use crate::matcher::SlotId;
use crate::rules::compile::Cx;
use crate::rules::spec::RawTerms;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Together {
    groups: Vec<Spanned<Group>>,
    #[serde(default)]
    unless: Option<Spanned<RawTerms>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    name: String,
    #[serde(default)]
    terms: Vec<Spanned<String>>,
    #[serde(default)]
    files: Vec<Spanned<String>>,
    #[serde(default)]
    regex: Vec<Spanned<String>>,
}

#[derive(Debug)]
pub struct TogetherCheck {
    groups: Vec<(String, SlotId)>,
    unless: Option<SlotId>,
}

impl CheckSpec for Together {
    type Check = TogetherCheck;

    fn compile(self, cx: &mut Cx<'_>, at: Pos) -> Option<TogetherCheck> {
        if self.groups.len() < 2 {
            cx.error(
                at,
                Code::InvalidValue,
                "`together` needs at least two groups of phrases",
            );
        }
        let mut groups = Vec::new();
        let mut ok = self.groups.len() >= 2;
        for g in self.groups {
            let pos = Pos::from(&g.referenced);
            let Group {
                name,
                terms,
                files,
                regex,
            } = g.value;
            let raw = RawTerms {
                terms,
                files,
                regex,
            };
            match cx.terms(&raw, &format!("group `{name}`"), pos) {
                Some(slot) => groups.push((name, slot)),
                None => ok = false,
            }
        }
        let unless = match &self.unless {
            Some(u) => {
                let slot = cx.terms(&u.value, "unless", Pos::from(&u.referenced));
                ok &= slot.is_some();
                slot
            }
            None => None,
        };
        ok.then_some(TogetherCheck { groups, unless })
    }
}

impl ContentCheck for TogetherCheck {
    fn evaluate(&self, doc: &DocHits<'_>, emit: &mut dyn FnMut(Flag)) {
        if self.unless.is_some_and(|u| !doc.hits(u).is_empty()) {
            return;
        }
        let mut firsts = Vec::with_capacity(self.groups.len());
        for (name, slot) in &self.groups {
            match doc.hits(*slot).first() {
                Some(&h) => firsts.push((name, h)),
                None => return,
            }
        }
        let detail = firsts
            .iter()
            .map(|(name, h)| format!("{name}「{}」", doc.text(*h)))
            .collect::<Vec<_>>()
            .join(" + ");
        let detail_en = firsts
            .iter()
            .map(|(name, h)| format!("{name} “{}”", doc.text(*h)))
            .collect::<Vec<_>>()
            .join(" + ");
        let at = firsts
            .iter()
            .map(|&(_, h)| h)
            .max_by_key(|h| (h.unit, h.start))
            .expect("at least two groups");
        emit(Flag {
            at,
            detail: Some((
                format!("同时出现：{detail}"),
                format!("together: {detail_en}"),
            )),
        });
    }
}
