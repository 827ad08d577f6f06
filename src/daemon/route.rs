//! Who hears of a violation, and when: recipient groups and routes.
//!
//! ```yaml
//! mail:
//!   groups:
//!     supervision: [jiandu@example.com]        # 内部监督小组
//!     rule-admins: [hegui@example.com]
//!     service-leads: [kefu-lead@example.com]
//!   routes:                                    # every matching route sends
//!     - {severity: [critical], to: [supervision], delivery: immediate}
//!     - {tags: [replies, timeliness], to: [service-leads], delivery: 30m, language: en}
//!     - {to: [supervision], delivery: "daily 09:00"}   # no condition: everything
//!   config_errors: [rule-admins]
//! ```
//!
//! Without `routes`, every violation goes at once to `mail.to`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::mail::Lang;
use super::record::Record;
use crate::diag::{Code, Diagnostic, Pos};
use crate::finding::Severity;

/// A route as written in the configuration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    #[serde(default)]
    rules: Vec<Spanned<String>>,
    #[serde(default)]
    tags: Vec<Spanned<String>>,
    #[serde(default)]
    severity: Vec<Spanned<String>>,
    to: Vec<Spanned<String>>,
    #[serde(default)]
    delivery: Option<Spanned<String>>,
    /// The language of this route's mail (default: `mail.language`).
    #[serde(default)]
    language: Option<Spanned<String>>,
}

/// Validates groups and routes: every group a route or `config_errors`
/// names must exist; severities and deliveries must parse.
pub fn build(
    path: &Path,
    groups: BTreeMap<String, Vec<String>>,
    routes: &[RawRoute],
    config_errors: &[Spanned<String>],
    diags: &mut Vec<Diagnostic>,
) -> Routing {
    let mut bad = |s: &Spanned<String>, m: String| {
        diags.push(Diagnostic::new(
            path,
            Pos::from(&s.referenced),
            Code::InvalidValue,
            m,
        ));
    };
    let group = |g: &Spanned<String>, bad: &mut dyn FnMut(&Spanned<String>, String)| {
        if !groups.contains_key(&g.value) {
            let known: Vec<&str> = groups.keys().map(String::as_str).collect();
            bad(
                g,
                format!(
                    "no group `{}` under mail.groups (known: {})",
                    g.value,
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            );
        }
        g.value.clone()
    };
    let mut out = Vec::new();
    let mut names = Vec::new();
    for r in routes {
        let to = r.to.iter().map(|g| group(g, &mut bad)).collect();
        let severity = r
            .severity
            .iter()
            .filter_map(|s| {
                let v = Severity::parse(&s.value);
                if v.is_none() {
                    bad(
                        s,
                        format!("`{}` is not critical, high, medium or low", s.value),
                    );
                }
                v
            })
            .collect();
        let delivery = match &r.delivery {
            None => Delivery::Immediate,
            Some(d) => Delivery::parse(&d.value).unwrap_or_else(|e| {
                bad(d, e);
                Delivery::Immediate
            }),
        };
        let language = r.language.as_ref().and_then(|l| {
            let v = Lang::parse(&l.value);
            if v.is_none() {
                bad(l, format!("unknown language `{}`: write zh or en", l.value));
            }
            v
        });
        for (tag, list) in [(false, &r.rules), (true, &r.tags)] {
            names.extend(list.iter().map(|n| NameRef {
                tag,
                value: n.value.clone(),
                path: path.to_path_buf(),
                pos: Pos::from(&n.referenced),
            }));
        }
        out.push(Route {
            rules: r.rules.iter().map(|n| n.value.clone()).collect(),
            tags: r.tags.iter().map(|n| n.value.clone()).collect(),
            severity,
            to,
            delivery,
            language,
        });
    }
    let config_errors = config_errors.iter().map(|g| group(g, &mut bad)).collect();
    Routing {
        groups,
        routes: out,
        config_errors,
        names,
    }
}

/// A rule id or tag a route names, where the configuration names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameRef {
    pub tag: bool,
    pub value: String,
    pub path: std::path::PathBuf,
    pub pos: Pos,
}

impl Routing {
    /// Routes naming a rule the rules do not have, or a tag no rule has:
    /// a typo would otherwise route nothing, and mail would silently stop.
    pub fn unknown_names(&self, rules: &crate::rules::RuleSet) -> Vec<Diagnostic> {
        let ids: Vec<&str> = rules.rules.iter().map(|r| r.meta.id.as_str()).collect();
        let mut tags: Vec<&str> = rules
            .rules
            .iter()
            .flat_map(|r| r.meta.tags.iter().map(String::as_str))
            .collect();
        tags.sort_unstable();
        tags.dedup();
        let mut out = Vec::new();
        for n in &self.names {
            let (known, what) = match n.tag {
                false => (&ids, "rule"),
                true => (&tags, "tag"),
            };
            if known.contains(&n.value.as_str()) {
                continue;
            }
            let mut msg = format!(
                "no {what} `{}` in the rules: this route would never match it",
                n.value
            );
            if let Some(close) = known
                .iter()
                .map(|k| (crate::rules::yaml::edit_distance(&n.value, k), *k))
                .filter(|&(d, _)| d <= 2)
                .min()
            {
                msg.push_str(&format!(" (did you mean `{}`?)", close.1));
            }
            let d = Diagnostic::new(&n.path, n.pos, Code::InvalidValue, msg);
            out.push(match n.tag {
                true => d.with_note(format!("tags in the rules: {}", tags.join(", "))),
                false => d,
            });
        }
        out
    }
}

/// When a route's messages go out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Immediate,
    /// Collected and sent as one digest at the end of each window.
    Every(Duration),
    /// One digest a day at this local time.
    DailyAt(jiff::civil::Time),
}

impl Delivery {
    pub fn parse(s: &str) -> Result<Delivery, String> {
        let s = s.trim();
        if s == "immediate" {
            return Ok(Delivery::Immediate);
        }
        if let Some(t) = s.strip_prefix("daily") {
            let t: jiff::civil::Time = t
                .trim()
                .parse()
                .map_err(|_| format!("`{s}`: write the time as daily HH:MM, e.g. daily 09:00"))?;
            return Ok(Delivery::DailyAt(t));
        }
        crate::rules::cond::parse_duration(s)
            .map(Delivery::Every)
            .map_err(|_| format!("`{s}` is not immediate, a window such as 30m, or daily HH:MM"))
    }

    /// As written in the configuration: `immediate`, `30m`, `daily 09:00`.
    pub fn describe(&self) -> String {
        match self {
            Delivery::Immediate => "immediate".into(),
            Delivery::Every(d) => {
                let s = d.as_secs();
                match s {
                    s if s % 86_400 == 0 => format!("{}d", s / 86_400),
                    s if s % 3600 == 0 => format!("{}h", s / 3600),
                    s if s % 60 == 0 => format!("{}m", s / 60),
                    s => format!("{s}s"),
                }
            }
            Delivery::DailyAt(t) => format!("daily {}", t.strftime("%H:%M")),
        }
    }

    /// When a violation found at `now` is sent: at once, or at the end of
    /// the window it falls in (windows are aligned to the epoch, so every
    /// violation of the same window shares the instant and one digest).
    pub fn send_at(&self, now: Timestamp, tz: &jiff::tz::TimeZone) -> Timestamp {
        match self {
            Delivery::Immediate => now,
            Delivery::Every(d) => {
                let w = i64::try_from(d.as_millis()).unwrap_or(i64::MAX).max(1);
                let ms = now.as_millisecond();
                let end = (ms.div_euclid(w) + 1).saturating_mul(w);
                Timestamp::from_millisecond(end).unwrap_or(now)
            }
            Delivery::DailyAt(t) => {
                let local = tz.to_datetime(now);
                let today = local.date().to_datetime(*t);
                let at = if today > local {
                    today
                } else {
                    today + SignedDuration::from_hours(24)
                };
                tz.to_timestamp(at).unwrap_or(now)
            }
        }
    }
}

/// One route: conditions (all given ones must hold; none = everything),
/// recipients, delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub rules: Vec<String>,
    pub tags: Vec<String>,
    pub severity: Vec<Severity>,
    /// Group names.
    pub to: Vec<String>,
    pub delivery: Delivery,
    /// The language of its mail; `None`: `mail.language`.
    pub language: Option<Lang>,
}

impl Route {
    pub fn matches(&self, r: &Record) -> bool {
        (self.rules.is_empty() || self.rules.contains(&r.rule))
            && (self.tags.is_empty() || r.tags.iter().any(|t| self.tags.contains(t)))
            && (self.severity.is_empty() || self.severity.contains(&r.severity))
    }
}

/// Groups and routes, validated (every group named by a route exists).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routing {
    pub groups: BTreeMap<String, Vec<String>>,
    pub routes: Vec<Route>,
    /// Groups that receive configuration errors raised by a reload.
    pub config_errors: Vec<String>,
    /// The rule ids and tags routes name, checked against the rules once
    /// they are loaded ([`Routing::unknown_names`]).
    pub names: Vec<NameRef>,
}

/// Where and when one violation is mailed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dispatch {
    /// Index of the route (for grouping digests); `None`: the default.
    pub route: Option<usize>,
    pub to: Vec<String>,
    pub send_at: Timestamp,
}

impl Routing {
    /// Every matching route's dispatch; without routes, `fallback` at once.
    /// Configuration errors go to `config_errors` (or `fallback`) at once.
    pub fn dispatch(
        &self,
        r: &Record,
        fallback: &[String],
        now: Timestamp,
        tz: &jiff::tz::TimeZone,
    ) -> Vec<Dispatch> {
        let addresses = |groups: &[String]| -> Vec<String> {
            let mut v: Vec<String> = groups
                .iter()
                .flat_map(|g| self.groups.get(g).cloned().unwrap_or_default())
                .collect();
            v.sort();
            v.dedup();
            v
        };
        if r.rule == super::core::CONFIG_ERROR {
            let to = if self.config_errors.is_empty() {
                fallback.to_vec()
            } else {
                addresses(&self.config_errors)
            };
            return vec![Dispatch {
                route: None,
                to,
                send_at: now,
            }];
        }
        if self.routes.is_empty() {
            return vec![Dispatch {
                route: None,
                to: fallback.to_vec(),
                send_at: now,
            }];
        }
        self.routes
            .iter()
            .enumerate()
            .filter(|(_, route)| route.matches(r))
            .map(|(i, route)| Dispatch {
                route: Some(i),
                to: addresses(&route.to),
                send_at: route.delivery.send_at(now, tz),
            })
            .filter(|d| !d.to.is_empty())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tz() -> jiff::tz::TimeZone {
        jiff::tz::TimeZone::get("Asia/Shanghai").unwrap()
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn windows_and_daily_digests_end_where_expected() {
        let now = ts("2026-03-02T10:07:00+08:00");
        assert_eq!(
            Delivery::parse("immediate").unwrap().send_at(now, &tz()),
            now
        );
        assert_eq!(
            Delivery::parse("30m").unwrap().send_at(now, &tz()),
            ts("2026-03-02T10:30:00+08:00")
        );
        assert_eq!(
            Delivery::parse("daily 09:00").unwrap().send_at(now, &tz()),
            ts("2026-03-03T09:00:00+08:00")
        );
        assert_eq!(
            Delivery::parse("daily 18:00").unwrap().send_at(now, &tz()),
            ts("2026-03-02T18:00:00+08:00")
        );
        assert!(Delivery::parse("daily 9am").is_err());
        assert!(Delivery::parse("soon").is_err());
    }
}
