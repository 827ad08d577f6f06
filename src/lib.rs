//! complyd checks what a health-products company publishes on Kuaishou, and
//! how it answers customers, against its regulation and Chinese advertising
//! law.
//!
//! # Data flow
//!
//! ```text
//!  rules/*.yaml ─► rules::yaml (serde-saphyr, budgets) ─► rules::spec (raw, with spans)
//!  rules/lists.yaml ─► rules::cond::Lists        │ problems ─► diag::Diagnostic
//!                                                ▼            (path:line:col: error[code]: …)
//!               rules::compile ─► RuleSet { rules: [Rule { meta, check }], matcher, lists }
//!                                   check = Content(phrases | required | together)
//!                                         | Event(deadline | prerequisite | staleness | event)
//!
//!  content file ─► extract (txt, md, srt, vtt, docx, *.post.json; encodings) ─► [TextUnit]
//!        ─► check::check_units ─ matcher::Matcher::scan: folding (normalize) fused with one
//!           Aho–Corasick automaton + one multi-pattern regex ─► DocHits by slot ─► ContentCheck ─► Finding
//!        ─► scan (CLI, human or JSON lines) · ruletest (`rules test`)
//!
//!  activity log ─► event (JSON lines, file:line evidence) ─► replay (merge, reorder window)
//!        ─► engine::evaluate(input, state, now) ─► [Effect] (violations, late discharges)
//!             fires obligations due before `now` (calendar: working hours, holidays, 调休),
//!             then each EventCheck reacts; reply and caption text go through check_units
//!           state behind engine::State (MemoryState for replay; daemon::store in the daemon)
//!
//!  daemon (complyd run): daemon::watch (notify, stable files, catch-up walk)
//!                        daemon::tail (log lines across rotation, cursors)
//!        ─► daemon::run core actor (one thread, one input at a time, timer at the next deadline)
//!        ─► daemon::core: check_file / log_lines (window::ReorderWindow) / tick
//!        ─► daemon::store: SQLite, ONE transaction per input: state changes, violations
//!           (daemon::record, content fingerprints), outbox rows, the source's cursor
//!        ─► mailer task ─► daemon::mail (.eml; SMTP in the notifications issue)
//! ```
//!
//! Both cores are pure and synchronous: `scan`, `replay` and `rules test`
//! call them directly, and the daemon runs the same functions in its async
//! shell (sources → core → store and mailer).

pub mod alloc;
pub mod calendar;
pub mod check;
pub mod cli;
pub mod config;
pub mod daemon;
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
pub mod window;
