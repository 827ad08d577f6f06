//! Mail templates (minijinja, the Jinja dialect): Chinese and English ones
//! built into the binary, any of whose files a folder (`mail.templates`)
//! can override. They are compiled and rendered against sample violations
//! when the configuration is loaded, so `complyd check`, start-up and a
//! reload report a broken template as `path:line:col: error[…]` like any
//! other configuration error; at send time a template that still fails
//! falls back to the built-in one, so no mail is lost to a template.
//!
//! The HTML part is rendered with every value escaped, whichever file it
//! comes from (the escaping belongs to the part, not to the file name), and
//! `|safe` and `{% autoescape %}` are refused: content from dropped files
//! and logs never becomes markup. The plain-text part is not escaped; the
//! subject is made one line.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, PoisonError, RwLock};

use minijinja::value::Serde;
use minijinja::{AutoEscape, Environment, Error, ErrorKind, UndefinedBehavior, Value};

use super::super::store::OutboxItem;
use super::view::{self, Lang};

/// The files of a template set; the first six are rendered, the others are
/// included by them. A folder may add files of its own (any `*.txt` or
/// `*.html`) for its templates to include.
pub const FILES: [&str; 9] = [
    "subject.txt",
    "mail.txt",
    "mail.html",
    "digest-subject.txt",
    "digest.txt",
    "digest.html",
    "violation.txt",
    "violation.html",
    "layout.html",
];

macro_rules! builtin {
    ($lang:literal: $($file:literal),*) => {
        [$((
            $file,
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/templates/mail/", $lang, "/", $file)),
        )),*]
    };
}

const BUILTIN: [[(&str, &str); 9]; 2] = [
    builtin!("zh": "subject.txt", "mail.txt", "mail.html", "digest-subject.txt", "digest.txt",
        "digest.html", "violation.txt", "violation.html", "layout.html"),
    builtin!("en": "subject.txt", "mail.txt", "mail.html", "digest-subject.txt", "digest.txt",
        "digest.html", "violation.txt", "violation.html", "layout.html"),
];

/// Writes the built-in templates into `dir` to be edited there (then
/// `mail.templates: DIR`): each language's files in `dir/zh` and
/// `dir/en`, or one language's. An existing file is kept unless `force`.
pub fn export(dir: &Path, lang: Option<Lang>, force: bool) -> Result<Vec<PathBuf>, String> {
    // Always under DIR/<lang>: a file directly in DIR would replace that
    // template in both languages (English subjects in Chinese mail).
    let sets: Vec<(Lang, PathBuf)> = lang
        .map_or(Lang::ALL.to_vec(), |l| vec![l])
        .into_iter()
        .map(|l| (l, dir.join(l.as_str())))
        .collect();
    let files: Vec<(PathBuf, &str)> = sets
        .iter()
        .flat_map(|(l, d)| BUILTIN[l.index()].iter().map(|(n, src)| (d.join(n), *src)))
        .collect();
    // All or nothing: an edited template is never half overwritten.
    if !force && let Some((p, _)) = files.iter().find(|(p, _)| p.exists()) {
        return Err(format!(
            "{} exists; nothing written (--force overwrites)",
            p.display()
        ));
    }
    for (p, src) in &files {
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("{}: cannot create: {e}", parent.display()))?;
        }
        std::fs::write(p, src).map_err(|e| format!("{}: cannot write: {e}", p.display()))?;
    }
    Ok(files.into_iter().map(|(p, _)| p).collect())
}

/// The kinds of single mails.
pub(super) const KINDS: [&str; 5] = [
    "violation",
    "reopened",
    "retraction",
    "reminder",
    "config-error",
];

/// A rendered mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parts {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// One language's templates: the same files compiled twice, for the plain
/// text (nothing escaped) and for HTML (every value escaped). A built-in
/// file is compiled when first rendered or included: a mail renders three
/// files per part, and compiling all nine twice for both languages up
/// front held ~0.6 MB that a daemon mailing in one language never used
/// (BENCHMARKS.md, "Idle RSS").
#[derive(Debug)]
pub(super) struct Envs {
    text: Environment<'static>,
    html: Environment<'static>,
}

impl Envs {
    /// Compiles `own` over the built-in files of `lang` (those are compiled
    /// when first used). A file of `own` that does not compile is reported
    /// and leaves the built-in one (or an empty template) in its place, so
    /// that the others can still be checked.
    pub(super) fn new(lang: Lang, own: &BTreeMap<String, String>) -> (Envs, Vec<Error>) {
        let mut envs = Envs {
            text: environment(lang, false),
            html: environment(lang, true),
        };
        for env in [&mut envs.text, &mut envs.html] {
            // Templates added below take precedence over the loader's.
            env.set_loader(move |name| {
                Ok(BUILTIN[lang.index()]
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, src)| *src))
            });
        }
        let mut errors = Vec::new();
        for (name, src) in own {
            if let Err(e) = envs.text.add_template_owned(name.clone(), src.clone()) {
                errors.push(e);
                if !BUILTIN[lang.index()].iter().any(|(n, _)| n == name) {
                    for env in [&mut envs.text, &mut envs.html] {
                        let _ = env.add_template_owned(name.clone(), String::new());
                    }
                }
                continue;
            }
            let _ = envs.html.add_template_owned(name.clone(), src.clone());
        }
        (envs, errors)
    }

    pub(super) fn render(
        &self,
        names: [&str; 3],
        ctx: &Value,
    ) -> Result<Parts, (Error, &'static str)> {
        let [s, t, h] = names;
        let go = |env: &Environment<'static>, name: &str| {
            env.get_template(name).and_then(|t| t.render(ctx))
        };
        // The names are FILES entries; name the failing one for the report.
        let file = |n: &str| FILES.iter().copied().find(|f| *f == n).unwrap_or("?");
        Ok(Parts {
            subject: one_line(&go(&self.text, s).map_err(|e| (e, file(s)))?),
            text: go(&self.text, t).map_err(|e| (e, file(t)))?,
            html: go(&self.html, h).map_err(|e| (e, file(h)))?,
        })
    }

    /// Renders each of the three templates (not stopping at the first
    /// failure): their errors.
    pub(super) fn render_each(
        &self,
        names: [&'static str; 3],
        ctx: &Value,
    ) -> Vec<(Error, &'static str)> {
        let [s, t, h] = names;
        [(&self.text, s), (&self.text, t), (&self.html, h)]
            .into_iter()
            .filter_map(|(env, name)| {
                env.get_template(name)
                    .and_then(|t| t.render(ctx))
                    .err()
                    .map(|e| (e, name))
            })
            .collect()
    }
}

pub(super) const SINGLE: [&str; 3] = ["subject.txt", "mail.txt", "mail.html"];
pub(super) const DIGEST: [&str; 3] = ["digest-subject.txt", "digest.txt", "digest.html"];

fn environment(lang: Lang, html: bool) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_syntax(
        minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(true)
            .build()
            .expect("the default delimiters"),
    );
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(move |_| {
        if html {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    if html {
        // The project's escaping (the one every HTML mail has used), which
        // leaves `/` alone in paths.
        env.set_formatter(|out, state, value| match value.as_str() {
            Some(s) if !value.is_safe() => Ok(out.write_str(&super::escape(s))?),
            _ => minijinja::escape_formatter(out, state, value),
        });
    }
    env.remove_filter("safe");
    env.add_filter("short", |v: Value, n: usize| {
        text_filter(&v, |s| view::short(s, n))
    });
    env.add_filter("short_path", |v: Value, n: usize| {
        text_filter(&v, |s| view::short_path(s, n))
    });
    env.add_filter("datetime", move |v: Value| {
        text_filter(&v, |s| view::datetime(s, lang))
    });
    env.add_global("lang", lang.as_str());
    env
}

/// A filter on text: `none` gives an empty string; an undefined value is
/// an error (strict, like printing it).
fn text_filter(v: &Value, f: impl Fn(&str) -> String) -> Result<String, Error> {
    if v.is_undefined() {
        return Err(Error::new(ErrorKind::UndefinedError, "the filter's value"));
    }
    if v.is_none() {
        return Ok(String::new());
    }
    Ok(match v.as_str() {
        Some(s) => f(s),
        None => f(&v.to_string()),
    })
}

/// The subject on one line: line breaks (from the template or from
/// content) become spaces, other control characters too.
fn one_line(s: &str) -> String {
    let joined = s
        .split(['\r', '\n'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    joined
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

static BUILTIN_ENVS: LazyLock<[Envs; 2]> =
    LazyLock::new(|| Lang::ALL.map(|lang| Envs::new(lang, &BTreeMap::new()).0));

/// Templates from `mail.templates`.
#[derive(Debug)]
pub(super) struct Custom {
    pub(super) dir: PathBuf,
    /// Per language: every file read (name → path and text), the folder's
    /// own files and those of its `zh/` or `en/` subfolder.
    pub(super) files: [BTreeMap<String, (PathBuf, String)>; 2],
    pub(super) envs: [Envs; 2],
}

#[derive(Debug, Default, Clone)]
pub(super) struct Set {
    pub(super) language: Lang,
    /// Each route's `language`, by route index.
    pub(super) routes: Vec<Option<Lang>>,
    pub(super) custom: Option<Arc<Custom>>,
    /// The watched folders, that file subjects are shown relative to.
    pub(super) roots: Vec<PathBuf>,
}

impl Set {
    fn language_for(&self, route: Option<i64>) -> Lang {
        route
            .and_then(|r| usize::try_from(r).ok())
            .and_then(|r| self.routes.get(r).copied().flatten())
            .unwrap_or(self.language)
    }

    /// The folder's templates, else (logged) the built-in ones; `None` if
    /// even those failed.
    fn render(&self, lang: Lang, names: [&str; 3], ctx: &Value, what: &str) -> Option<Parts> {
        if let Some(c) = &self.custom {
            match c.envs[lang.index()].render(names, ctx) {
                Ok(p) => return Some(p),
                Err((e, file)) => {
                    let d = super::load::diagnostic(&e, &c.files[lang.index()], lang, file, what);
                    tracing::warn!(
                        "mail template {}; this mail uses the built-in template instead",
                        d.header()
                    );
                }
            }
        }
        match BUILTIN_ENVS[lang.index()].render(names, ctx) {
            Ok(p) => Some(p),
            Err((e, _)) => {
                tracing::error!("built-in mail template failed for {what}: {e:#}");
                None
            }
        }
    }
}

/// The compiled mail templates and languages in force. Cloning shares
/// them: a reload that loaded new ones hands them to the running mailer
/// with [`Templates::take_over`].
#[derive(Clone, Default)]
pub struct Templates(pub(super) Arc<RwLock<Arc<Set>>>);

impl Templates {
    fn current(&self) -> Arc<Set> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// `mail.language`.
    pub fn language(&self) -> Lang {
        self.current().language
    }

    /// Some mail goes out in English (`mail.language` or a route's).
    pub fn uses_english(&self) -> bool {
        let set = self.current();
        set.language == Lang::En || set.routes.contains(&Some(Lang::En))
    }

    /// The `mail.templates` folder, if any.
    pub fn dir(&self) -> Option<PathBuf> {
        self.current().custom.as_ref().map(|c| c.dir.clone())
    }

    /// Shows file subjects relative to these watched folders. For a
    /// configuration being loaded (these templates are not yet shared).
    pub fn set_watch_roots(&mut self, roots: Vec<PathBuf>) {
        let mut set = (*self.current()).clone();
        // As the watcher names the files it finds (absolute, not resolved).
        set.roots = roots
            .iter()
            .map(|r| std::path::absolute(r).unwrap_or_else(|_| r.clone()))
            .collect();
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(set);
    }

    /// Puts these (newly loaded) templates in force for every holder of
    /// `running` — the mailer keeps the mail configuration it started
    /// with — and makes this one of them.
    pub fn take_over(&mut self, running: &Templates) {
        *running.0.write().unwrap_or_else(PoisonError::into_inner) = self.current();
        self.0 = running.0.clone();
    }

    /// Subject, plain text and HTML of a single mail, in its route's
    /// language.
    pub fn single(&self, item: &OutboxItem) -> Parts {
        let set = self.current();
        let lang = set.language_for(item.route);
        let ctx = Value::from(Serde(view::single(item, lang, &set.roots)));
        let what = format!("violation {} ({})", item.record.fingerprint, item.kind);
        set.render(lang, SINGLE, &ctx, &what)
            .unwrap_or_else(|| last_resort(std::slice::from_ref(item)))
    }

    /// Subject, plain text and HTML of a digest, in its route's language.
    pub fn digest(&self, items: &[OutboxItem]) -> Parts {
        let set = self.current();
        let lang = set.language_for(items.first().and_then(|i| i.route));
        let Some(d) = view::digest(items, lang, &set.roots) else {
            return last_resort(items);
        };
        let ctx = Value::from(Serde(d));
        let what = format!("a digest of {}", items.len());
        set.render(lang, DIGEST, &ctx, &what)
            .unwrap_or_else(|| last_resort(items))
    }
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.current();
        f.debug_struct("Templates")
            .field("language", &s.language)
            .field("routes", &s.routes)
            .field("dir", &s.custom.as_ref().map(|c| &c.dir))
            .finish()
    }
}

impl PartialEq for Templates {
    fn eq(&self, other: &Templates) -> bool {
        let (a, b) = (self.current(), other.current());
        a.language == b.language
            && a.routes == b.routes
            && a.roots == b.roots
            && a.custom.as_ref().map(|c| (&c.dir, &c.files))
                == b.custom.as_ref().map(|c| (&c.dir, &c.files))
    }
}

impl Eq for Templates {}

/// The mail when even the built-in template failed (a bug): plain facts,
/// so that the violation still reaches its readers.
fn last_resort(items: &[OutboxItem]) -> Parts {
    let mut text = String::new();
    for i in items {
        let r = &i.record;
        let _ = writeln!(
            text,
            "{} {} {} {}\n{}\n{}\n",
            r.fingerprint,
            r.rule,
            r.severity.as_str(),
            r.subject,
            r.message,
            r.location.join(", ")
        );
    }
    let subject = match items {
        [one] => format!(
            "【合规告警】{} · {}",
            view::short(&one.record.message, 30),
            view::short_path(&one.record.subject, 40)
        ),
        _ => format!("【合规告警】{}条", items.len()),
    };
    Parts {
        subject,
        html: format!("<pre>{}</pre>", super::escape(&text)),
        text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::mail::{Settings, load_templates};

    pub(crate) fn templates(language: Lang, routes: Vec<Option<Lang>>) -> Templates {
        let settings = Settings {
            config: Path::new("complyd.yaml"),
            language,
            routes,
            dir: None,
        };
        load_templates(settings, &mut Vec::new(), &mut Default::default())
    }

    pub(crate) fn items(kind: &str) -> [OutboxItem; 2] {
        view::samples().map(|record| OutboxItem::new(1, kind, record))
    }

    fn shown(p: &Parts) -> String {
        format!(
            "subject: {}\n--- text ---\n{}--- html ---\n{}\n",
            p.subject, p.text, p.html
        )
    }

    #[test]
    fn the_english_mail_of_each_kind_and_digest() {
        let t = templates(Lang::En, Vec::new());
        // The config-error mail has its own record: in daemon::mail's tests.
        for kind in KINDS.into_iter().filter(|k| *k != "config-error") {
            let [full, bare] = items(kind);
            insta::assert_snapshot!(format!("en_{kind}_full"), shown(&t.single(&full)));
            insta::assert_snapshot!(format!("en_{kind}_bare"), shown(&t.single(&bare)));
        }
        insta::assert_snapshot!("en_digest", shown(&t.digest(&items("violation"))));
    }

    #[test]
    fn english_mail_shows_message_en_and_falls_back_to_the_chinese_message() {
        let t = templates(Lang::En, Vec::new());
        let [full, bare] = items("violation");
        let p = t.single(&full);
        assert_eq!(
            p.subject,
            "[Compliance alert] Prohibited · Disease treatment claims · drop/春季新品.srt"
        );
        assert!(
            p.text.contains("Message:     Disease treatment claims\n"),
            "{}",
            p.text
        );
        assert!(
            p.text.contains("Found:       Mon 2 Mar 2026, 10:00\n"),
            "{}",
            p.text
        );
        assert!(!p.text.contains("宣称治愈疾病"), "{}", p.text);
        // A rule without message_en: its Chinese message, English around it.
        let p = t.single(&bare);
        assert_eq!(
            p.subject,
            "[Compliance alert] Notice · 未经审核发布 · ks-main"
        );
        assert!(p.text.contains("Message:     未经审核发布\n"), "{}", p.text);
        assert!(
            p.html
                .contains("<td style=\"overflow-wrap:anywhere\">未经审核发布</td>"),
            "{}",
            p.html
        );
        assert!(p.html.contains("<html lang=\"en\">"), "{}", p.html);
    }

    #[test]
    fn a_route_may_mail_in_its_own_language() {
        let t = templates(Lang::Zh, vec![None, Some(Lang::En)]);
        let [mut a, _] = items("violation");
        a.route = Some(0);
        assert!(t.single(&a).subject.starts_with("【合规告警】禁用"));
        a.route = Some(1);
        assert!(
            t.single(&a)
                .subject
                .starts_with("[Compliance alert] Prohibited")
        );
        // A digest goes in its first item's route's language.
        let [mut b, mut c] = items("violation");
        (b.route, c.route) = (Some(1), Some(1));
        let p = t.digest(&[b, c]);
        assert!(
            p.subject.ends_with(" · 2 subjects · 2 violations"),
            "{}",
            p.subject
        );
        // A route index the routes no longer have: mail.language.
        a.route = Some(7);
        assert!(t.single(&a).subject.starts_with("【合规告警】"));
    }

    #[test]
    fn a_reload_hands_new_templates_to_the_running_mailer() {
        let mut running = templates(Lang::Zh, Vec::new());
        let mailer = running.clone();
        let mut loaded = templates(Lang::En, Vec::new());
        assert_ne!(loaded, running);
        loaded.take_over(&running);
        assert_eq!(mailer.language(), Lang::En);
        let [a, _] = items("violation");
        assert!(mailer.single(&a).subject.starts_with("[Compliance alert]"));
        // The next reload reaches the mailer through the new holder too.
        running = loaded;
        templates(Lang::Zh, Vec::new()).take_over(&running);
        assert_eq!(mailer.language(), Lang::Zh);
    }

    #[test]
    fn a_file_is_named_relative_to_its_folder_and_a_long_path_keeps_its_file_name() {
        let mut t = templates(Lang::Zh, Vec::new());
        t.set_watch_roots(vec![PathBuf::from("/srv/complyd/content-drop")]);
        let [mut full, _] = items("violation");
        full.record.subject =
            "/srv/complyd/content-drop/2026/03/第一季度/春季新品推广活动素材/第二批修改稿/主播口播/直播脚本定稿.md".into();
        let p = t.single(&full);
        assert!(
            p.subject.ends_with(
                " · …/第一季度/春季新品推广活动素材/第二批修改稿/主播口播/直播脚本定稿.md"
            ),
            "{}",
            p.subject
        );
        assert!(
            p.text
                .contains("对象：2026/03/第一季度/春季新品推广活动素材/第二批修改稿/主播口播/直播脚本定稿.md\n"),
            "{}",
            p.text
        );
        // Where it is stays whole, to find the file.
        assert!(
            p.text.contains("位置：drop/春季新品.srt:12:9"),
            "{}",
            p.text
        );
    }

    #[test]
    fn every_table_cell_may_break_a_long_path_on_a_phone() {
        for lang in Lang::ALL {
            let t = templates(lang, Vec::new());
            let mut html: Vec<String> = KINDS
                .iter()
                .flat_map(|k| items(k).map(|i| t.single(&i).html))
                .collect();
            html.push(t.digest(&items("violation")).html);
            for h in html {
                let cells = h.matches("<td").count();
                // A config-error mail has its diagnostics in a <pre> instead.
                assert!(
                    cells > 0
                        || h.contains(
                            "<pre style=\"white-space:pre-wrap;overflow-wrap:anywhere\">"
                        ),
                    "{h}"
                );
                let wrapping = h.matches("<td style=\"overflow-wrap:anywhere\"").count()
                    + h.matches("<td style=\"white-space:pre-wrap;overflow-wrap:anywhere\"")
                        .count();
                assert_eq!(wrapping, cells, "{h}");
                assert!(h.contains("max-width:40em;overflow-wrap:anywhere"), "{h}");
            }
        }
    }

    /// They are compiled when first used, so a broken one would only show
    /// when a mail needs it: compile every file of both languages here.
    #[test]
    fn every_built_in_file_compiles_in_both_parts() {
        for lang in Lang::ALL {
            let (envs, errors) = Envs::new(lang, &BTreeMap::new());
            assert!(errors.is_empty());
            for env in [&envs.text, &envs.html] {
                for name in FILES {
                    if let Err(e) = env.get_template(name) {
                        panic!("{}/{name}: {e:#}", lang.as_str());
                    }
                }
            }
        }
    }

    #[test]
    fn the_subject_is_one_line() {
        assert_eq!(
            one_line("\n【合规告警】 a\r\nBcc: x \n\n"),
            "【合规告警】 a Bcc: x"
        );
        assert_eq!(one_line("a\tb\u{7}c"), "a b c");
    }
}
