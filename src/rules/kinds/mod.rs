//! Rule kinds: one file each, plus one line in the registry below.
//!
//! A kind has a raw spec (what the YAML under `check: { kind: … }` holds),
//! which compiles into a [`ContentCheck`]: the pure function that decides,
//! from the matcher's hits in one document, where the rule fires.

use serde::Deserialize;

use super::compile::Cx;
use crate::check::{DocHits, Flag};
use crate::diag::Pos;

mod phrases;
mod required;
mod together;

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

macro_rules! registry {
    ($($name:literal => $module:ident :: $spec:ident),* $(,)?) => {
        /// `check:` holds exactly one of these keys.
        #[derive(Debug, Deserialize)]
        pub enum RawCheck {
            $(#[serde(rename = $name)] $spec($module::$spec),)*
        }

        impl RawCheck {
            pub const KINDS: &'static [&'static str] = &[$($name),*];

            pub fn compile(self, cx: &mut Cx<'_>, at: Pos) -> Option<Box<dyn ContentCheck>> {
                match self {
                    $(RawCheck::$spec(s) => s
                        .compile(cx, at)
                        .map(|c| Box::new(c) as Box<dyn ContentCheck>),)*
                }
            }
        }
    };
}

registry! {
    "phrases" => phrases::Phrases,
    "required" => required::Required,
    "together" => together::Together,
}
