//! Rule kinds: one file each, plus one line in the registry below.
//!
//! A kind has a raw spec (what the YAML under `check: { kind: … }` holds),
//! which compiles into a [`ContentCheck`]: the pure function that decides,
//! from the matcher's hits in one document, where the rule fires.

use serde::Deserialize;

use super::compile::Cx;
use crate::check::{DocHits, Flag};
use crate::diag::Pos;
use crate::engine::EventCheck;

mod deadline;
mod event;
mod phrases;
mod prerequisite;
mod required;
mod staleness;
mod together;
pub mod wording;

/// A compiled check, evaluated once per document.
pub trait ContentCheck: std::fmt::Debug + Send + Sync {
    fn evaluate(&self, doc: &DocHits<'_>, emit: &mut dyn FnMut(Flag));
}

/// A raw spec that compiles into a check, reporting problems through `cx`.
pub trait CheckSpec {
    type Check: ContentCheck + 'static;
    /// `None` when the spec has errors (already reported to `cx`).
    fn compile(self, cx: &mut Cx<'_>, at: Pos) -> Option<Self::Check>;
}

/// A raw spec of a temporal kind, compiled into an [`EventCheck`].
pub trait EventSpec {
    type Check: EventCheck + 'static;
    fn compile(self, cx: &mut Cx<'_>, at: Pos) -> Option<Self::Check>;
}

/// A compiled check of either family.
#[derive(Debug)]
pub enum CompiledCheck {
    /// Judges a document's text.
    Content(Box<dyn ContentCheck>),
    /// Judges activity events over time.
    Event(Box<dyn EventCheck>),
}

macro_rules! registry {
    (
        content { $($cname:literal => $cmod:ident :: $cspec:ident),* $(,)? }
        event { $($ename:literal => $emod:ident :: $espec:ident),* $(,)? }
    ) => {
        /// `check:` holds exactly one of these keys.
        #[derive(Debug, Deserialize)]
        pub enum RawCheck {
            $(#[serde(rename = $cname)] $cspec($cmod::$cspec),)*
            $(#[serde(rename = $ename)] $espec($emod::$espec),)*
        }

        impl RawCheck {
            pub fn compile(self, cx: &mut Cx<'_>, at: Pos) -> Option<CompiledCheck> {
                match self {
                    $(RawCheck::$cspec(s) => CheckSpec::compile(s, cx, at)
                        .map(|c| CompiledCheck::Content(Box::new(c))),)*
                    $(RawCheck::$espec(s) => EventSpec::compile(s, cx, at)
                        .map(|c| CompiledCheck::Event(Box::new(c))),)*
                }
            }
        }
    };
}

registry! {
    content {
        "phrases" => phrases::Phrases,
        "required" => required::Required,
        "together" => together::Together,
    }
    event {
        "deadline" => deadline::Deadline,
        "prerequisite" => prerequisite::Prerequisite,
        "staleness" => staleness::Staleness,
        "event" => event::EventRule,
    }
}
