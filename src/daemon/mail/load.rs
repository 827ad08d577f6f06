//! Loading the mail templates with the configuration: `mail.templates`
//! read, every template compiled and rendered against sample mails in both
//! languages with strict undefined checking, and every problem reported at
//! its place in the template file (`path:line:col: error[template-…]`).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, RwLock};

use minijinja::value::Serde;
use minijinja::{Error, ErrorKind, Value};

use super::super::store::OutboxItem;
use super::templates::{Custom, DIGEST, Envs, FILES, KINDS, SINGLE, Set, Templates};
use super::view::{self, Lang};
use crate::diag::{Code, Diagnostic, Pos};

/// `mail.language`, `mail.templates` and the routes' languages, as loaded
/// from the configuration file.
#[derive(Debug)]
pub struct Settings<'a> {
    pub config: &'a Path,
    pub language: Lang,
    pub routes: Vec<Option<Lang>>,
    /// The folder (resolved) and where `templates:` is written.
    pub dir: Option<(PathBuf, Pos)>,
}

/// Reads, compiles and checks the templates. Problems go to `diags` (the
/// template files' texts to `sources`, for the snippets).
pub fn load(
    s: Settings<'_>,
    diags: &mut Vec<Diagnostic>,
    sources: &mut HashMap<PathBuf, String>,
) -> Templates {
    let mut set = Set {
        language: s.language,
        routes: s.routes,
        custom: None,
        roots: Vec::new(),
    };
    if let Some((dir, pos)) = s.dir {
        let before = diags.len();
        let files = read_dir(s.config, &dir, pos, diags);
        for per_lang in &files {
            for (path, src) in per_lang.values() {
                sources.insert(path.clone(), src.clone());
            }
        }
        if diags.len() == before {
            let mut found = unknown_files(&files);
            for lang in Lang::ALL {
                found.extend(unsafe_blocks(&files[lang.index()]));
            }
            found.sort_by(|a, b| (&a.path, a.pos.line).cmp(&(&b.path, b.pos.line)));
            found.dedup();
            let safe = found.is_empty();
            diags.extend(found);
            // Compiled and rendered even so, to report every error at once.
            let custom = compile(dir, files, diags);
            if safe {
                set.custom = custom.map(Arc::new);
            }
        }
    }
    Templates(Arc::new(RwLock::new(Arc::new(set))))
}

/// The folder's template files per language: its own `*.txt`/`*.html`,
/// then those of `zh/` or `en/`, which win.
fn read_dir(
    config: &Path,
    dir: &Path,
    pos: Pos,
    diags: &mut Vec<Diagnostic>,
) -> [BTreeMap<String, (PathBuf, String)>; 2] {
    let mut out: [BTreeMap<String, (PathBuf, String)>; 2] = Default::default();
    let mut read = |folder: &Path, langs: &[Lang], required: bool| {
        let entries = match std::fs::read_dir(folder) {
            Ok(rd) => rd,
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) => {
                diags.push(Diagnostic::new(
                    config,
                    pos,
                    Code::Unreadable,
                    format!(
                        "cannot read the templates folder {}: {}",
                        folder.display(),
                        crate::rules::compile::io_reason(&e)
                    ),
                ));
                return;
            }
        };
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
        paths.sort();
        for path in paths {
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let template = name.ends_with(".txt") || name.ends_with(".html");
            if name.starts_with('.') || !template || !path.is_file() {
                continue;
            }
            match std::fs::read_to_string(&path) {
                Ok(src) => {
                    for l in langs {
                        out[l.index()].insert(name.to_string(), (path.clone(), src.clone()));
                    }
                }
                Err(e) => diags.push(Diagnostic::new(
                    &path,
                    Pos::FILE,
                    Code::Unreadable,
                    format!("cannot read: {}", crate::rules::compile::io_reason(&e)),
                )),
            }
        }
    };
    read(dir, &Lang::ALL, true);
    for lang in Lang::ALL {
        read(&dir.join(lang.as_str()), &[lang], false);
    }
    if out.iter().all(BTreeMap::is_empty) && diags.is_empty() {
        diags.push(
            Diagnostic::new(
                config,
                pos,
                Code::InvalidValue,
                format!(
                    "no template files (*.txt, *.html) in {}, nor in its zh/ or en/ folders",
                    dir.display()
                ),
            )
            .with_note(format!(
                "the files a folder can override: {}",
                FILES.join(", ")
            )),
        );
    }
    out
}

/// Files that are neither one of the nine templates nor included by one of
/// the folder's files: most likely a misspelt name (`violaton.html`),
/// which would otherwise be ignored while the built-in file is used.
fn unknown_files(files: &[BTreeMap<String, (PathBuf, String)>; 2]) -> Vec<Diagnostic> {
    static QUOTED: LazyLock<regex::Regex> =
        LazyLock::new(|| regex::Regex::new(r#""([^"\n]+)"|'([^'\n]+)'"#).expect("valid"));
    let mut used = std::collections::HashSet::new();
    for per_lang in files {
        for (_, src) in per_lang.values() {
            for c in QUOTED.captures_iter(src) {
                if let Some(m) = c.get(1).or_else(|| c.get(2)) {
                    used.insert(m.as_str().to_string());
                }
            }
        }
    }
    let mut out: Vec<Diagnostic> = Vec::new();
    for (name, (path, _)) in files.iter().flatten() {
        if FILES.contains(&name.as_str())
            || used.contains(name)
            || out.iter().any(|d| d.path == *path)
        {
            continue;
        }
        let mut d = Diagnostic::new(
            path,
            Pos::FILE,
            Code::TemplateUnknownFile,
            format!(
                "`{name}` is not a mail template, and no template includes it: it would be ignored"
            ),
        );
        if let Some(close) = FILES
            .iter()
            .find(|f| crate::rules::yaml::edit_distance(f, name) <= 2)
        {
            d = d.with_note(format!("did you mean `{close}`?"));
        }
        out.push(d.with_note(format!(
            "the templates are {}; another file is used only when a template includes it ({{% include \"{name}\" %}})",
            FILES.join(", ")
        )));
    }
    out
}

/// `{% autoescape %}` blocks, which would turn content into markup.
fn unsafe_blocks(files: &BTreeMap<String, (PathBuf, String)>) -> Vec<Diagnostic> {
    static RE: LazyLock<regex::Regex> =
        LazyLock::new(|| regex::Regex::new(r"\{%[-+]?\s*autoescape\b").expect("valid"));
    let mut out = Vec::new();
    for (path, src) in files.values() {
        for m in RE.find_iter(src) {
            let pos = position(src, m.start(), m.len());
            out.push(Diagnostic::new(
                path,
                pos,
                Code::TemplateUnsafe,
                "`autoescape` blocks are not allowed in mail templates: the HTML part \
                 escapes every value, so that content never becomes markup",
            ));
        }
    }
    out
}

/// Compiles both languages (built-in files, overridden by the folder's)
/// and renders every template against the samples.
fn compile(
    dir: PathBuf,
    files: [BTreeMap<String, (PathBuf, String)>; 2],
    diags: &mut Vec<Diagnostic>,
) -> Option<Custom> {
    let mut found = Vec::new();
    let mut envs = Vec::new();
    for lang in Lang::ALL {
        let own = &files[lang.index()];
        let texts = own
            .iter()
            .map(|(name, (_, src))| (name.clone(), src.clone()))
            .collect();
        let (e, errors) = Envs::new(lang, &texts);
        for err in errors {
            found.push(diagnostic(&err, own, lang, "", "compiling"));
        }
        for (err, file, what) in check(&e, lang) {
            found.push(diagnostic(&err, own, lang, file, &what));
        }
        envs.push(e);
    }
    // A file shared by both languages fails the same way twice, and a
    // partial once per template that includes it.
    let mut seen = std::collections::HashSet::new();
    found.retain(|d| seen.insert((d.path.clone(), d.pos, d.code, d.message.clone())));
    found.sort_by(|a, b| {
        (&a.path, a.pos.line, a.pos.column).cmp(&(&b.path, b.pos.line, b.pos.column))
    });
    if !found.is_empty() {
        diags.extend(found);
        return None;
    }
    let [zh, en]: [Envs; 2] = envs.try_into().ok()?;
    Some(Custom {
        dir,
        files,
        envs: [zh, en],
    })
}

/// Renders every template once per kind and sample (and the digests):
/// the errors, with the template rendered and a description.
fn check(envs: &Envs, lang: Lang) -> Vec<(Error, &'static str, String)> {
    let mut errors = Vec::new();
    let samples = view::samples();
    let items: Vec<OutboxItem> = samples
        .iter()
        .map(|r| OutboxItem::new(0, "violation", r.clone()))
        .collect();
    for kind in KINDS {
        for (n, item) in items.iter().enumerate() {
            let mut item = item.clone();
            item.kind = kind.into();
            let ctx = Value::from(Serde(view::single(&item, lang, &[])));
            let which = if n == 0 {
                "every field"
            } else {
                "no optional field"
            };
            for (e, file) in envs.render_each(SINGLE, &ctx) {
                errors.push((e, file, format!("a `{kind}` mail with {which}")));
            }
        }
    }
    for batch in [&items[..], &items[1..]] {
        if let Some(d) = view::digest(batch, lang, &[]) {
            for (e, file) in envs.render_each(DIGEST, &Value::from(Serde(d))) {
                errors.push((e, file, format!("a digest of {}", batch.len())));
            }
        }
    }
    errors
}

/// A template error as a diagnostic at its place in the user's file (for
/// an error inside an included template, that template's).
pub(super) fn diagnostic(
    err: &Error,
    files: &BTreeMap<String, (PathBuf, String)>,
    lang: Lang,
    rendering: &str,
    what: &str,
) -> Diagnostic {
    let mut e = err;
    while e.kind() == ErrorKind::BadInclude {
        match std::error::Error::source(e).and_then(|s| s.downcast_ref::<Error>()) {
            Some(inner) => e = inner,
            None => break,
        }
    }
    let name = e.name().unwrap_or(rendering);
    // The expression at fault as written (minijinja names no variable).
    let written = files
        .get(name)
        .zip(e.range())
        .and_then(|((_, src), r)| src.get(r))
        .map(str::trim)
        .filter(|w| !w.is_empty() && w.len() <= 80 && !w.contains('\n'));
    let (path, pos) = match files.get(name) {
        Some((path, src)) => {
            let pos = match (e.range(), e.line()) {
                (Some(r), _) => position(src, r.start, r.end.saturating_sub(r.start)),
                (None, Some(line)) => Pos::new(line as u32, 1, 1),
                (None, None) => Pos::FILE,
            };
            (path.clone(), pos)
        }
        None => (
            PathBuf::from(format!("(built-in {}/{name})", lang.as_str())),
            Pos::new(e.line().unwrap_or(0) as u32, 1, 1),
        ),
    };
    let code = match e.kind() {
        ErrorKind::SyntaxError | ErrorKind::BadEscape | ErrorKind::InvalidDelimiter => {
            Code::TemplateSyntax
        }
        ErrorKind::UnknownFilter
        | ErrorKind::UnknownTest
        | ErrorKind::UnknownFunction
        | ErrorKind::UnknownMethod => Code::TemplateUnknown,
        ErrorKind::UndefinedError => Code::TemplateUndefined,
        _ => Code::TemplateRender,
    };
    let message = match (code, e.detail()) {
        // `filter x is unknown` → unknown filter `x`
        (Code::TemplateUnknown, Some(d)) => match d.strip_suffix(" is unknown") {
            Some(what) => match what.split_once(' ') {
                Some((thing, name)) => format!("unknown {thing} `{name}`"),
                None => d.to_string(),
            },
            None => format!("{}: {d}", e.kind()),
        },
        (Code::TemplateUndefined, Some(d)) => d.to_string(),
        (Code::TemplateUndefined, None) => match written {
            Some(w) => format!("`{w}` is undefined"),
            None => "undefined value".to_string(),
        },
        (_, Some(d)) => format!("{}: {d}", e.kind()),
        (_, None) => e.kind().to_string(),
    };
    let mut d = Diagnostic::new(&path, pos, code, message);
    if code == Code::TemplateUndefined {
        d = d.with_note(
            "single mails have `kind` and `v`, digests `items`, `count`, `worst`, \
             `subjects`, `by_severity`, `by_rule`, `full` and `page`, all templates `lang`; see docs/mail.md \
             for the fields of a violation",
        );
    }
    if code == Code::TemplateUnknown && e.detail().is_some_and(|d| d.contains("safe")) {
        d = d.with_note("`safe` is not available: every value is escaped in the HTML part");
    } else if code == Code::TemplateUnknown {
        d = d.with_note("filters: minijinja's built-in ones, and `short(n)` and `datetime`");
    }
    if what != "compiling" {
        d = d.with_note(format!(
            "while rendering {} for {what} in {}",
            if name == rendering || rendering.is_empty() {
                name.to_string()
            } else {
                format!("{rendering} (which includes {name})")
            },
            match lang {
                Lang::Zh => "Chinese",
                Lang::En => "English",
            }
        ));
    }
    d
}

/// Line, column (characters) and width of byte `start..start + len` of
/// `src`.
fn position(src: &str, start: usize, len: usize) -> Pos {
    let start = start.min(src.len());
    let before = src.get(..start).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    let end = (start + len).min(src.len());
    let width = src
        .get(start..end)
        .map_or(1, |s| s.split('\n').next().unwrap_or("").chars().count())
        .max(1);
    Pos::new(line as u32, column as u32, width as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MailConfig;

    fn write(dir: &Path, files: &[(&str, &str)]) {
        for (name, text) in files {
            let p = dir.join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
    }

    /// Templates from `dir`, or the diagnostics and sources.
    fn load_dir(
        dir: &Path,
        language: Lang,
    ) -> Result<Templates, (Vec<Diagnostic>, HashMap<PathBuf, String>)> {
        let (mut diags, mut sources) = (Vec::new(), HashMap::new());
        let t = load(
            Settings {
                config: &dir.join("complyd.yaml"),
                language,
                routes: Vec::new(),
                dir: Some((dir.join("templates"), Pos::new(3, 14, 9))),
            },
            &mut diags,
            &mut sources,
        );
        if diags.is_empty() {
            Ok(t)
        } else {
            Err((diags, sources))
        }
    }

    fn item(kind: &str, n: usize) -> OutboxItem {
        OutboxItem::new(1, kind, view::samples()[n].clone())
    }

    #[test]
    fn a_folder_overrides_files_for_every_language_or_for_one() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            &[
                ("templates/subject.txt", "{{ v.rule }}: {{ v.message }}\n"),
                (
                    "templates/en/mail.txt",
                    "{{ v.message }} ({{ v.severity_name }}, {{ v.at|datetime }})\n",
                ),
                ("templates/README.md", "not a template: ignored\n"),
            ],
        );
        let t = load_dir(dir.path(), Lang::En).unwrap();
        let p = t.single(&item("violation", 0));
        assert_eq!(p.subject, "cure-claims: Disease treatment claims");
        assert_eq!(
            p.text,
            "Disease treatment claims (Critical, Mon 2 Mar 2026, 10:00)\n"
        );
        // Not overridden: the built-in English HTML.
        assert!(p.html.contains("<th style=\"text-align:left;vertical-align:top;white-space:nowrap;padding-right:1em\">Rule</th>"));
        // Chinese (another route, or mail.language zh): the shared subject,
        // the built-in Chinese text.
        let t = load_dir(dir.path(), Lang::Zh).unwrap();
        let p = t.single(&item("violation", 0));
        assert_eq!(p.subject, "cure-claims: 宣称治愈疾病");
        assert!(p.text.starts_with("complyd 发现一条违规"), "{}", p.text);
        assert_eq!(t.dir(), Some(dir.path().join("templates")));
    }

    #[test]
    fn content_stays_escaped_in_a_custom_html_template_and_the_subject_one_line() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            &[
                (
                    "templates/subject.txt",
                    "{{ kind }} {{ v.message }}\n{{ v.subject }}\n",
                ),
                (
                    "templates/mail.html",
                    "<div class=\"ctx\">{{ v.excerpt }}</div><h1>{{ v.message }}</h1>\
                     {% if v.highlight %}<p>{{ v.highlight.before }}<mark>{{ v.highlight.matched }}</mark></p>{% endif %}\
                     {% include \"who.txt\" %}\n",
                ),
                // A plain-text partial included in HTML is escaped there too.
                ("templates/who.txt", "<i>{{ v.subject }}</i>"),
            ],
        );
        let t = load_dir(dir.path(), Lang::Zh).unwrap();
        let mut it = item("violation", 0);
        it.record.excerpt = Some("<script>alert('x')</script>可以根治".into());
        it.record.message = "宣称治愈\r\nBcc: evil@example.com".into();
        it.record.subject = "drop/<img src=x onerror=alert(1)>.txt".into();
        let p = t.single(&it);
        assert!(!p.html.contains("<script"), "{}", p.html);
        assert!(!p.html.contains("<img"), "{}", p.html);
        assert!(
            p.html.contains(
                "<div class=\"ctx\">&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;可以根治</div>"
            ),
            "{}",
            p.html
        );
        assert!(p.html.contains("<mark>根治</mark>"), "{}", p.html);
        assert!(
            p.html
                .contains("<i>drop/&lt;img src=x onerror=alert(1)&gt;.txt</i>"),
            "{}",
            p.html
        );
        assert_eq!(
            p.subject,
            "violation 宣称治愈 Bcc: evil@example.com drop/<img src=x onerror=alert(1)>.txt"
        );
        // Through lettre: one Subject header, no Bcc header.
        let cfg = MailConfig {
            dir: dir.path().join("mail"),
            from: "complyd@example.com".into(),
            to: vec!["sup@example.com".into()],
            smtp: None,
            routing: Default::default(),
            remind_after: None,
            templates: t,
        };
        let raw = String::from_utf8(super::super::build(&cfg, &it).unwrap().formatted()).unwrap();
        let head = raw.split("\r\n\r\n").next().unwrap();
        assert!(!head.lines().any(|l| l.starts_with("Bcc:")), "{head}");
        assert_eq!(
            head.lines().filter(|l| l.starts_with("Subject:")).count(),
            1
        );
    }

    #[test]
    fn a_template_that_fails_at_send_time_falls_back_to_the_built_in_one() {
        let dir = tempfile::tempdir().unwrap();
        // Passes the check (the samples never take the branch), fails on a
        // real violation.
        write(
            dir.path(),
            &[(
                "templates/mail.txt",
                "{% if v.fingerprint == \"deadbeef\" %}{{ v.no_such_field }}{% endif %}custom\n",
            )],
        );
        let t = load_dir(dir.path(), Lang::Zh).unwrap();
        let mut it = item("violation", 0);
        assert_eq!(t.single(&it).text, "custom\n");
        it.record.fingerprint = "deadbeef".into();
        let p = t.single(&it);
        let builtin = Templates::default().single(&it);
        assert_eq!(p, builtin);
    }

    /// Every kind of template error, each at its place, in one run.
    pub(crate) fn broken(dir: &Path) {
        write(
            dir,
            &[
                // Syntax: blocks this language's rendering, reported alone.
                (
                    "templates/zh/digest.txt",
                    "{% for v in items %}\n{{ v.rule }\n",
                ),
                ("templates/en/subject.txt", "{{ v.message|shout }}\n"),
                (
                    "templates/en/violation.html",
                    "<table>\n<tr><td>{{ v.rule }}</td><td>{{ v.clauses }}</td></tr>\n</table>\n",
                ),
                (
                    "templates/en/digest.html",
                    "<p>{{ count }}</p>{{ worst.message|safe }}\n",
                ),
                (
                    "templates/en/mail.txt",
                    "{% autoescape false %}{{ v.message }}{% endautoescape %}\n",
                ),
            ],
        );
    }

    #[test]
    fn every_template_error_is_reported_at_its_place() {
        let dir = tempfile::tempdir().unwrap();
        broken(dir.path());
        let (diags, sources) = load_dir(dir.path(), Lang::Zh).unwrap_err();
        let got: Vec<(String, u32, u32, Code)> = diags
            .iter()
            .map(|d| {
                let p = d.path.strip_prefix(dir.path()).unwrap();
                (p.display().to_string(), d.pos.line, d.pos.column, d.code)
            })
            .collect();
        assert_eq!(
            got,
            [
                ("templates/en/mail.txt".into(), 1, 1, Code::TemplateUnsafe),
                (
                    "templates/en/digest.html".into(),
                    1,
                    36,
                    Code::TemplateUnknown
                ),
                (
                    "templates/en/subject.txt".into(),
                    1,
                    14,
                    Code::TemplateUnknown
                ),
                (
                    "templates/en/violation.html".into(),
                    2,
                    33,
                    Code::TemplateUndefined
                ),
                (
                    "templates/zh/digest.txt".into(),
                    2,
                    11,
                    Code::TemplateSyntax
                ),
            ],
            "{diags:#?}"
        );
        assert!(sources.contains_key(&dir.path().join("templates/en/subject.txt")));
    }

    #[test]
    fn a_missing_or_empty_folder_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let (d, _) = load_dir(dir.path(), Lang::Zh).unwrap_err();
        assert_eq!((d[0].code, d[0].pos.line), (Code::Unreadable, 3), "{d:?}");
        std::fs::create_dir(dir.path().join("templates")).unwrap();
        let (d, _) = load_dir(dir.path(), Lang::Zh).unwrap_err();
        assert!(d[0].message.contains("no template files"), "{d:?}");
    }

    #[test]
    fn a_misspelt_file_is_an_error_and_an_included_partial_is_not() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            &[
                ("templates/zh/violaton.html", "<p>{{ v.rule }}</p>\n"),
                ("templates/footer.txt", "—— 内部监督小组\n"),
                (
                    "templates/en/mail.txt",
                    "{{ v.rule }}\n{% include \"footer.txt\" %}",
                ),
            ],
        );
        let (d, _) = load_dir(dir.path(), Lang::Zh).unwrap_err();
        assert_eq!(d.len(), 1, "{d:#?}");
        assert_eq!(d[0].code, Code::TemplateUnknownFile);
        assert_eq!(d[0].path, dir.path().join("templates/zh/violaton.html"));
        assert!(
            d[0].notes[0].contains("did you mean `violation.html`?"),
            "{d:?}"
        );
        assert!(
            d[0].notes[1].contains("violation.txt, violation.html"),
            "{d:?}"
        );
        std::fs::remove_file(dir.path().join("templates/zh/violaton.html")).unwrap();
        assert!(load_dir(dir.path(), Lang::Zh).is_ok());
    }
}
