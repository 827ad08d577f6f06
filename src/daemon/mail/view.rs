//! What a mail template sees: the variables of a single mail and of a
//! digest, built from outbox rows, in the mail's language. Every field is
//! always present (`none` or an empty list when the violation has no such
//! thing), so templates run with strict undefined checking and a typo in a
//! variable name is an error, not an empty line.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::super::core::CONFIG_ERROR;
use super::super::record::Record;
use super::super::store::OutboxItem;
use crate::finding::Severity;

/// The language of a mail: Chinese (the default) or English.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Lang {
    #[default]
    Zh,
    En,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::Zh, Lang::En];

    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "zh" => Some(Lang::Zh),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }

    pub(super) fn index(self) -> usize {
        match self {
            Lang::Zh => 0,
            Lang::En => 1,
        }
    }
}

/// One violation as a template sees it (`v` in a single mail, each of
/// `items` in a digest).
#[derive(Debug, Serialize)]
pub(super) struct Violation<'a> {
    fingerprint: &'a str,
    rule: &'a str,
    /// `critical`, `high`, `medium` or `low`.
    severity: &'static str,
    /// The severity in the mail's language.
    severity_name: &'static str,
    /// The compliance department's tier (禁用/敏感/提示) in the mail's language.
    tier: &'static str,
    /// The rule's message in the mail's language: `message_en` in English
    /// mail, the Chinese message when the rule has none.
    message: &'a str,
    message_zh: &'a str,
    message_en: Option<&'a str>,
    clause: &'a [String],
    tags: &'a [String],
    /// What it is about; a file relative to its watched folder.
    subject: Cow<'a, str>,
    location: &'a [String],
    cue: Option<&'a str>,
    /// The part of a .docx or the field of a post, named in the mail's
    /// language (`页眉1`, `标题`); any other field as it is.
    field: Option<Cow<'a, str>>,
    matched: Option<&'a str>,
    excerpt: Option<&'a str>,
    /// The excerpt cut around the first occurrence of the match, so that a
    /// template can mark it; none when the excerpt does not contain it.
    highlight: Option<Highlight<'a>>,
    at: &'a str,
    due: Option<&'a str>,
    detail: Option<&'a str>,
    suggestion: Option<&'a str>,
    waiver: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct Highlight<'a> {
    before: &'a str,
    matched: &'a str,
    after: &'a str,
}

/// A file's path relative to the watched folder it is in (the deepest one
/// when folders nest): `2026/春季新品.srt`, not the absolute path that the
/// violation stores. Anything else (an account, a thread) unchanged.
pub(super) fn relative<'a>(subject: &'a str, roots: &[PathBuf]) -> Cow<'a, str> {
    roots
        .iter()
        .filter_map(|root| Path::new(subject).strip_prefix(root).ok())
        .filter(|rel| !rel.as_os_str().is_empty())
        .min_by_key(|rel| rel.components().count())
        .map_or(Cow::Borrowed(subject), |rel| {
            Cow::Owned(rel.display().to_string())
        })
}

pub(super) fn violation<'a>(r: &'a Record, lang: Lang, roots: &[PathBuf]) -> Violation<'a> {
    let message = match lang {
        Lang::En => r.message_en.as_deref().unwrap_or(&r.message),
        Lang::Zh => &r.message,
    };
    let highlight = r.excerpt.as_deref().and_then(|e| {
        let m = r.matched.as_deref().filter(|m| !m.is_empty())?;
        let i = e.find(m)?;
        Some(Highlight {
            before: &e[..i],
            matched: m,
            after: &e[i + m.len()..],
        })
    });
    Violation {
        fingerprint: &r.fingerprint,
        rule: &r.rule,
        severity: r.severity.as_str(),
        severity_name: severity_name(r.severity, lang),
        tier: tier(r.severity, lang),
        message,
        message_zh: &r.message,
        message_en: r.message_en.as_deref(),
        clause: &r.clause,
        tags: &r.tags,
        subject: relative(&r.subject, roots),
        location: &r.location,
        cue: r.cue.as_deref(),
        field: r.field.as_deref().map(|f| field_name(f, lang)),
        matched: r.matched.as_deref(),
        excerpt: r.excerpt.as_deref(),
        highlight,
        at: &r.at,
        due: r.due.as_deref(),
        detail: match lang {
            Lang::En => r.detail_en.as_deref().or(r.detail.as_deref()),
            Lang::Zh => r.detail.as_deref(),
        },
        suggestion: match lang {
            Lang::En => r.suggestion_en.as_deref().or(r.suggestion.as_deref()),
            Lang::Zh => r.suggestion.as_deref(),
        },
        waiver: r.waiver.as_ref().map(|w| w.note.as_str()),
    }
}

fn tier(s: Severity, lang: Lang) -> &'static str {
    match lang {
        Lang::Zh => s.tier(),
        Lang::En => match s {
            Severity::Critical => "Prohibited",
            Severity::High | Severity::Medium => "Sensitive",
            Severity::Low => "Notice",
        },
    }
}

fn field_name(f: &str, lang: Lang) -> Cow<'_, str> {
    if lang == Lang::En {
        return Cow::Borrowed(f);
    }
    let fixed = match f {
        "body" => "正文",
        "footnotes" => "脚注",
        "endnotes" => "尾注",
        "comments" => "批注",
        "title" => "标题",
        "caption" => "文案",
        "hashtags" => "话题标签",
        _ => "",
    };
    if !fixed.is_empty() {
        return Cow::Borrowed(fixed);
    }
    for (part, zh) in [("header", "页眉"), ("footer", "页脚")] {
        if let Some(n) = f.strip_prefix(part)
            && n.chars().all(|c| c.is_ascii_digit())
        {
            return Cow::Owned(format!("{zh}{n}"));
        }
    }
    Cow::Borrowed(f)
}

fn severity_name(s: Severity, lang: Lang) -> &'static str {
    match (lang, s) {
        (Lang::Zh, Severity::Critical) => "严重",
        (Lang::Zh, Severity::High) => "高",
        (Lang::Zh, Severity::Medium) => "中",
        (Lang::Zh, Severity::Low) => "低",
        (Lang::En, Severity::Critical) => "Critical",
        (Lang::En, Severity::High) => "High",
        (Lang::En, Severity::Medium) => "Medium",
        (Lang::En, Severity::Low) => "Low",
    }
}

/// The variables of a single mail.
#[derive(Debug, Serialize)]
pub(super) struct Single<'a> {
    /// `violation`, `reopened`, `retraction`, `reminder` or `config-error`.
    kind: &'a str,
    v: Violation<'a>,
}

pub(super) fn single<'a>(item: &'a OutboxItem, lang: Lang, roots: &[PathBuf]) -> Single<'a> {
    let mut v = violation(&item.record, lang, roots);
    // Rules or configuration that failed to reload are not a content
    // violation: their own mail, about the file in error.
    let kind = if item.record.rule == CONFIG_ERROR && item.kind == "violation" {
        if let Some(file) = item.record.location.first().and_then(|l| file_in_error(l)) {
            v.subject = Cow::Borrowed(file);
        }
        CONFIG_ERROR
    } else {
        &item.kind
    };
    Single { kind, v }
}

/// The file of a diagnostic line: `rules/a.yaml` of
/// `rules/a.yaml:3:5: error[missing-key]: …` (or of `dir: error[…]: …`).
pub(super) fn file_in_error(line: &str) -> Option<&str> {
    let (at, _) = line.split_once(": error[")?;
    let mut rest = at;
    // `:line:col` when the diagnostic has a place in the file.
    for _ in 0..2 {
        match rest.rsplit_once(':') {
            Some((head, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
                rest = head
            }
            _ => break,
        }
    }
    Some(rest).filter(|f| !f.is_empty())
}

/// The variables of a digest.
#[derive(Debug, Serialize)]
pub(super) struct Digest<'a> {
    /// Most severe first, then by rule (in the order found within a rule).
    items: Vec<Violation<'a>>,
    count: usize,
    /// The most severe violation (the first of them when several are).
    worst: Violation<'a>,
    /// The distinct subjects (files, accounts, threads), sorted.
    subjects: Vec<Cow<'a, str>>,
    /// How many of each severity, most severe first (only those present).
    by_severity: Vec<SeverityCount>,
    /// How many of each rule (and severity, should a reload have changed
    /// it), in the order of `items`.
    by_rule: Vec<RuleCount<'a>>,
    /// The digest holds as many violations as one can (`page`): more of the
    /// same window, if any, come in another digest.
    full: bool,
    /// The most violations one digest holds.
    page: usize,
}

#[derive(Debug, Serialize)]
struct SeverityCount {
    severity: &'static str,
    severity_name: &'static str,
    count: usize,
}

#[derive(Debug, Serialize)]
struct RuleCount<'a> {
    rule: &'a str,
    /// The rule's message in the mail's language.
    message: &'a str,
    severity_name: &'static str,
    count: usize,
}

/// `None` for an empty list.
pub(super) fn digest<'a>(
    items: &'a [OutboxItem],
    lang: Lang,
    roots: &[PathBuf],
) -> Option<Digest<'a>> {
    // A supervisor reads the worst first; within a severity, one rule's
    // violations together (a stable sort keeps each rule's in order found).
    let mut sorted: Vec<&Record> = items.iter().map(|i| &i.record).collect();
    sorted.sort_by(|a, b| (a.severity, &a.rule).cmp(&(b.severity, &b.rule)));
    let worst = *sorted.first()?;
    let items: Vec<Violation<'_>> = sorted.iter().map(|r| violation(r, lang, roots)).collect();
    let subjects: std::collections::BTreeSet<Cow<'_, str>> =
        items.iter().map(|v| v.subject.clone()).collect();
    let mut by_severity: Vec<SeverityCount> = Vec::new();
    let mut by_rule: Vec<RuleCount<'_>> = Vec::new();
    for v in &items {
        match by_severity.last_mut() {
            Some(c) if c.severity == v.severity => c.count += 1,
            _ => by_severity.push(SeverityCount {
                severity: v.severity,
                severity_name: v.severity_name,
                count: 1,
            }),
        }
        match by_rule.last_mut() {
            Some(c) if (c.rule, c.severity_name) == (v.rule, v.severity_name) => c.count += 1,
            _ => by_rule.push(RuleCount {
                rule: v.rule,
                message: v.message,
                severity_name: v.severity_name,
                count: 1,
            }),
        }
    }
    let page = super::super::mailer::PAGE;
    Some(Digest {
        full: items.len() >= page,
        page,
        count: items.len(),
        items,
        worst: violation(worst, lang, roots),
        subjects: subjects.into_iter().collect(),
        by_severity,
        by_rule,
    })
}

/// The `short(n)` filter: one line (control characters, CR and LF among
/// them, become spaces), at most `n` characters, `…` when cut. English is
/// cut between words (`Reply overdue for…`, not `Reply overdue fo…`) when
/// a space leaves at least half; Chinese, which has none, anywhere.
pub fn short(s: &str, n: usize) -> String {
    let s: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if s.chars().count() <= n {
        return s;
    }
    let mut t: String = s.chars().take(n).collect();
    let next = s.chars().nth(n);
    let in_word = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if in_word(t.chars().last())
        && in_word(next)
        && let Some(i) = t.rfind(' ')
        && t[..i].chars().count() >= n / 2
    {
        t.truncate(i);
    }
    let kept = t.trim_end_matches([' ', ',', ';', ':', '-']).len();
    t.truncate(kept);
    t.push('…');
    t
}

/// The `short_path(n)` filter, for subjects: one line, at most `n`
/// characters, cut from the left at a `/` so that the file name stays
/// (`…/2026/春季新品.srt`); a name longer than `n` alone keeps its start and
/// its end (`春季新品…第三版.srt`).
pub fn short_path(s: &str, n: usize) -> String {
    let s = short(s, usize::MAX);
    let len = |t: &str| t.chars().count();
    if len(&s) <= n {
        return s;
    }
    let name = s.rsplit('/').next().unwrap_or(&s);
    if len(name) + 2 > n {
        let keep = n.saturating_sub(1);
        let (head, tail) = (keep - keep / 2, keep / 2);
        let start: String = name.chars().take(head).collect();
        let end: String = name.chars().skip(len(name) - tail).collect();
        return format!("{start}…{end}");
    }
    // The longest tail of whole components that fits after `…/`.
    let mut from = s.len() - name.len();
    while let Some(i) = s[..from.saturating_sub(1)].rfind('/') {
        if len(&s[i + 1..]) + 2 > n {
            break;
        }
        from = i + 1;
    }
    format!("…/{}", &s[from..])
}

/// The `datetime` filter: a stored time (`2026-03-02 10:30`, or RFC 3339)
/// written out in the mail's language; anything else unchanged.
pub(super) fn datetime(s: &str, lang: Lang) -> String {
    let parsed = s
        .parse::<jiff::civil::DateTime>()
        .ok()
        .or_else(|| s.parse::<jiff::ZonedDateTime>().ok().map(|z| z.datetime()))
        .or_else(|| {
            s.parse::<jiff::Timestamp>()
                .ok()
                .map(|t| t.to_zoned_datetime(jiff::tz::TimeZone::UTC).datetime())
        });
    let Some(dt) = parsed else {
        return s.to_string();
    };
    match lang {
        Lang::En => dt.strftime("%a %-d %b %Y, %H:%M").to_string(),
        Lang::Zh => {
            let week = ["一", "二", "三", "四", "五", "六", "日"]
                [usize::from(dt.weekday().to_monday_zero_offset().unsigned_abs())];
            format!(
                "{}年{}月{}日（周{week}）{}",
                dt.year(),
                dt.month(),
                dt.day(),
                dt.strftime("%H:%M")
            )
        }
    }
}

/// Mails to render a template against when it is checked: a content
/// violation with every field, and a temporal one with none of the
/// optional fields, so both branches of every `{% if %}` run.
pub(super) fn samples() -> [Record; 2] {
    let full = Record {
        fingerprint: "0123456789abcdef0123456789abcdef".into(),
        rule: "cure-claims".into(),
        severity: Severity::Critical,
        message: "宣称治愈疾病".into(),
        message_en: Some("Disease treatment claims".into()),
        clause: vec!["广告法第十七条".into(), "保健食品广告审查办法第八条".into()],
        tags: vec!["claims".into()],
        suggestion: Some("删除疗效用语".into()),
        suggestion_en: Some("Remove the efficacy claims".into()),
        subject: "drop/春季新品.srt".into(),
        location: vec!["drop/春季新品.srt:12:9".into()],
        at: "2026-03-02 10:00".into(),
        due: Some("2026-03-02 11:00".into()),
        matched: Some("根治".into()),
        excerpt: Some("这款产品可以根治高血压，欢迎购买".into()),
        detail: Some("与“高血压”同句".into()),
        detail_en: None,
        cue: Some("00:01:02,500 --> 00:01:04,000".into()),
        field: Some("text".into()),
        waiver: Some(super::super::record::Waived {
            key: "file:1".into(),
            note: "已获批准（hegui，waivers.yaml:3）".into(),
        }),
        dispatch: None,
    };
    let bare = Record {
        fingerprint: "fedcba9876543210fedcba9876543210".into(),
        rule: "publish-without-approval".into(),
        severity: Severity::Low,
        message: "未经审核发布".into(),
        message_en: None,
        clause: Vec::new(),
        tags: Vec::new(),
        suggestion: None,
        suggestion_en: None,
        subject: "ks-main".into(),
        location: Vec::new(),
        at: "2026-03-02 10:30".into(),
        due: None,
        matched: None,
        excerpt: None,
        detail: None,
        detail_en: None,
        cue: None,
        field: None,
        waiver: None,
        dispatch: None,
    };
    [full, bare]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_and_fields_are_named_in_chinese_in_chinese_mail() {
        assert_eq!(field_name("header1", Lang::Zh), "页眉1");
        assert_eq!(field_name("body", Lang::Zh), "正文");
        assert_eq!(field_name("caption", Lang::Zh), "文案");
        assert_eq!(field_name("meta.summary", Lang::Zh), "meta.summary");
        assert_eq!(field_name("headerline", Lang::Zh), "headerline");
        assert_eq!(field_name("header1", Lang::En), "header1");
    }

    #[test]
    fn dates_read_in_each_language_and_other_text_is_left_alone() {
        assert_eq!(
            datetime("2026-03-02 10:30", Lang::En),
            "Mon 2 Mar 2026, 10:30"
        );
        assert_eq!(
            datetime("2026-03-08 09:05", Lang::Zh),
            "2026年3月8日（周日）09:05"
        );
        assert_eq!(
            datetime("2026-03-02T10:00:00+08:00", Lang::En),
            "Mon 2 Mar 2026, 10:00"
        );
        assert_eq!(datetime("soon", Lang::En), "soon");
    }

    #[test]
    fn english_falls_back_to_the_chinese_message_and_the_match_is_cut_out() {
        let [full, bare] = samples();
        let v = violation(&full, Lang::En, &[]);
        assert_eq!(v.message, "Disease treatment claims");
        assert_eq!((v.tier, v.severity_name), ("Prohibited", "Critical"));
        let h = v.highlight.unwrap();
        assert_eq!(
            (h.before, h.matched, h.after),
            ("这款产品可以", "根治", "高血压，欢迎购买")
        );
        let v = violation(&bare, Lang::En, &[]);
        assert_eq!(v.message, "未经审核发布");
        assert!(v.highlight.is_none());
        assert_eq!(short("a\r\nBcc: x", 20), "a  Bcc: x");
        assert_eq!(short("宣称治愈疾病", 4), "宣称治愈…");
        // English between words; a single long word is still cut.
        assert_eq!(
            short("Reply to a general question overdue", 20),
            "Reply to a general…"
        );
        assert_eq!(short("Reply to a, general question", 11), "Reply to a…");
        assert_eq!(short("Supercalifragilistic", 8), "Supercal…");
        assert_eq!(short("Reply overdue now", 13), "Reply overdue…");
    }

    #[test]
    fn english_mail_has_the_english_detail_when_the_rule_wrote_one() {
        let [full, _] = samples();
        let mut r = full.clone();
        r.detail = Some("回复应在1个工作小时内完成".into());
        r.detail_en = Some("a reply was due within 1 working hour".into());
        assert_eq!(
            violation(&r, Lang::En, &[]).detail,
            Some("a reply was due within 1 working hour")
        );
        assert_eq!(
            violation(&r, Lang::Zh, &[]).detail,
            Some("回复应在1个工作小时内完成")
        );
        // Content rules' details have no English yet: the Chinese one shows.
        r.detail_en = None;
        assert_eq!(
            violation(&r, Lang::En, &[]).detail,
            Some("回复应在1个工作小时内完成")
        );
    }

    #[test]
    fn a_digest_lists_the_worst_first_then_by_rule_and_counts_them() {
        let [full, bare] = samples();
        let mut other = full.clone();
        other.rule = "absolute-terms".into();
        other.severity = Severity::High;
        let mut later = full.clone();
        later.fingerprint = "later".into();
        let items: Vec<OutboxItem> = [bare, full, other.clone(), later, other]
            .into_iter()
            .map(|r| OutboxItem::new(1, "violation", r))
            .collect();
        let d = digest(&items, Lang::Zh, &[]).unwrap();
        let order: Vec<(&str, &str)> = d.items.iter().map(|v| (v.rule, v.fingerprint)).collect();
        assert_eq!(
            order,
            [
                ("cure-claims", "0123456789abcdef0123456789abcdef"),
                ("cure-claims", "later"),
                ("absolute-terms", "0123456789abcdef0123456789abcdef"),
                ("absolute-terms", "0123456789abcdef0123456789abcdef"),
                (
                    "publish-without-approval",
                    "fedcba9876543210fedcba9876543210"
                ),
            ]
        );
        let sev: Vec<(&str, usize)> = d
            .by_severity
            .iter()
            .map(|c| (c.severity_name, c.count))
            .collect();
        assert_eq!(sev, [("严重", 2), ("高", 2), ("低", 1)]);
        let rules: Vec<(&str, usize)> = d.by_rule.iter().map(|c| (c.rule, c.count)).collect();
        assert_eq!(
            rules,
            [
                ("cure-claims", 2),
                ("absolute-terms", 2),
                ("publish-without-approval", 1)
            ]
        );
        assert_eq!(d.worst.rule, "cure-claims");
        assert!(!d.full);
        let many: Vec<OutboxItem> = (0..super::super::super::mailer::PAGE)
            .map(|i| OutboxItem::new(i as i64, "violation", samples()[1].clone()))
            .collect();
        assert!(digest(&many, Lang::Zh, &[]).unwrap().full);
    }

    #[test]
    fn subjects_are_relative_to_their_folder_and_cut_from_the_left() {
        let roots = [PathBuf::from("/srv/drop"), PathBuf::from("/srv/drop/live")];
        assert_eq!(relative("/srv/drop/2026/a.srt", &roots), "2026/a.srt");
        assert_eq!(relative("/srv/drop/live/b.md", &roots), "b.md");
        assert_eq!(relative("/srv/dropped/c.md", &roots), "/srv/dropped/c.md");
        assert_eq!(relative("ks-main", &roots), "ks-main");
        let p = "/srv/content/drop/2026/03/春季新品推广/直播脚本.md";
        assert_eq!(short_path(p, 100), p);
        assert_eq!(short_path(p, 20), "…/03/春季新品推广/直播脚本.md");
        assert_eq!(short_path(p, 12), "…/直播脚本.md");
        assert_eq!(
            short_path("a/非常非常长的文件名称第三版.srt", 9),
            "非常非常….srt"
        );
        assert!(short_path(p, 20).chars().count() <= 20);
    }
}
