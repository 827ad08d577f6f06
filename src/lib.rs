//! complyd checks what a health-products company publishes on Kuaishou, and
//! how it answers customers, against its regulation and Chinese advertising
//! law.
//!
//! # Data flow
//!
//! ```text
//!  rules/*.yaml ──► rules::yaml (serde-saphyr, budgets) ──► rules::spec (raw, with spans)
//!                      │ problems ──► diag::Diagnostic  (path:line:col: error[code]: …)
//!                      ▼
//!                  rules::compile ──► RuleSet { rules: [Rule { meta, check }], matcher }
//!                                         │            one slot per phrase group
//!                                         ▼
//!  file ──► extract (txt, md, srt, vtt, docx, *.post.json; encodings)
//!             ──► Document { units: [TextUnit] }
//!                      ▼
//!        check::check_document
//!             matcher::Matcher::scan  — one pass per unit: fold (normalize) fused
//!                                       with one Aho–Corasick automaton + one RegexSet
//!             DocHits (hits by slot) ──► each rule kind's ContentCheck ──► Flag
//!             ──► finding::Finding (line, column, matched text, message, clause)
//!                      ▼
//!        scan (CLI: human or JSON lines)      ruletest (`rules test`: examples)
//! ```
//!
//! `check_document` is pure and synchronous: the CLI's `scan` and the
//! examples runner call it directly, and the daemon will call the same core.

pub mod calendar;
pub mod check;
pub mod cli;
pub mod config;
pub mod diag;
pub mod engine;
pub mod event;
pub mod extract;
pub mod finding;
pub mod matcher;
pub mod normalize;
pub mod replay;
pub mod rules;
pub mod ruletest;
pub mod scan;
