//! `*.post.json`: social-media post metadata (title, caption, hashtags —
//! and any other text the file holds, named by its field).
//!
//! serde_json validates and unescapes but reports no spans, so a small
//! scanner walks the same source to find where each string value starts.
//! It only has to handle JSON serde_json already accepted.

use serde_json::Value;

use super::TextUnit;

/// Units for the checked fields, in the order title, caption, hashtags;
/// Err is the NotChecked reason.
pub(crate) fn extract(source: &str) -> Result<Vec<TextUnit>, String> {
    let value: Value = serde_json::from_str(source).map_err(|e| {
        // Display appends " at line L column C"; the reason puts it first.
        let full = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        let msg = full.strip_suffix(&suffix).unwrap_or(&full);
        format!(
            "invalid JSON at line {}, column {}: {msg}",
            e.line(),
            e.column()
        )
    })?;
    let Value::Object(map) = value else {
        return Err(format!(
            "post.json must be a JSON object, found {}",
            type_name(&value)
        ));
    };
    let positions = scan_positions(source);
    let mut units = Vec::new();
    let mut push = |field: String, text: &str| {
        if text.is_empty() {
            return;
        }
        let found = positions.iter().find(|(f, _, _)| *f == field);
        let (line, column) = found.map_or((1, 1), |&(_, pos, _)| pos);
        let columns = found.and_then(|(_, _, raw)| {
            let cols = escape_columns(raw, column, text)?;
            Some(cols.into_iter().map(|c| (line, c)).collect())
        });
        units.push(TextUnit {
            text: text.to_owned(),
            line,
            column,
            field: Some(field),
            cue: None,
            columns,
        });
    };
    // A present field of the wrong type is refused rather than skipped:
    // silently passing an unchecked caption would be worse than a warning.
    for key in ["title", "caption"] {
        match map.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => push(key.to_owned(), s),
            Some(other) => {
                return Err(format!(
                    "\"{key}\" must be a string, found {}",
                    type_name(other)
                ));
            }
        }
    }
    match map.get("hashtags") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let Value::String(s) = item else {
                    return Err(format!(
                        "\"hashtags[{i}]\" must be a string, found {}",
                        type_name(item)
                    ));
                };
                push(format!("hashtags[{i}]"), s);
            }
        }
        Some(other) => {
            return Err(format!(
                "\"hashtags\" must be an array of strings, found {}",
                type_name(other)
            ));
        }
    }
    // Any other text is checked too, named by its field: a misspelt
    // `captoin` or an extra `desc` is content all the same, and skipping it
    // would pass it in silence. Numbers, booleans and nulls are not text.
    for (key, value) in &map {
        if matches!(key.as_str(), "title" | "caption" | "hashtags") {
            continue;
        }
        other_texts(key, value, &mut push);
    }
    Ok(units)
}

/// The texts in a field outside the known ones, at any depth: `desc`,
/// `tags[0]`, `meta.summary`.
fn other_texts(name: &str, value: &Value, push: &mut dyn FnMut(String, &str)) {
    match value {
        Value::String(s) => push(name.to_owned(), s),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                other_texts(&format!("{name}[{i}]"), item, push);
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                other_texts(&format!("{name}.{k}"), v, push);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Cursor over the source that tracks 1-based line and char column.
struct Scanner<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    line: u32,
    column: u32,
}

impl Scanner<'_> {
    fn peek(&mut self) -> Option<char> {
        self.chars.peek().copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.next()?;
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    fn skip_ws(&mut self) {
        while self
            .peek()
            .is_some_and(|c| matches!(c, ' ' | '\t' | '\n' | '\r'))
        {
            self.bump();
        }
    }

    /// Consumes a string starting at its opening quote; returns the
    /// position just past the quote and the raw (still escaped) content.
    fn string(&mut self) -> Option<((u32, u32), String)> {
        if self.bump()? != '"' {
            return None;
        }
        let start = (self.line, self.column);
        let mut raw = String::new();
        loop {
            match self.bump()? {
                '"' => return Some((start, raw)),
                '\\' => {
                    raw.push('\\');
                    raw.push(self.bump()?);
                }
                c => raw.push(c),
            }
        }
    }

    /// Skips any value; positions inside it are not needed.
    fn skip_value(&mut self) -> Option<()> {
        self.skip_ws();
        match self.peek()? {
            '"' => {
                self.string()?;
            }
            '{' | '[' => {
                let mut depth = 0u32;
                loop {
                    match self.peek()? {
                        '"' => {
                            self.string()?;
                            continue;
                        }
                        '{' | '[' => depth += 1,
                        '}' | ']' => depth = depth.saturating_sub(1),
                        _ => {}
                    }
                    self.bump();
                    if depth == 0 {
                        break;
                    }
                }
            }
            _ => {
                while self
                    .peek()
                    .is_some_and(|c| !matches!(c, ',' | '}' | ']') && !c.is_whitespace())
                {
                    self.bump();
                }
            }
        }
        Some(())
    }
}

/// A wanted field: name, where its string content starts, its raw source.
type Found = (String, (u32, u32), String);

/// Source columns of each unescaped character (see `TextUnit::columns`);
/// `None` when the raw text has no escapes, or does not unescape to `text`.
fn escape_columns(raw: &str, start: u32, text: &str) -> Option<Vec<u32>> {
    if !raw.contains('\\') {
        return None;
    }
    let mut cols = Vec::with_capacity(text.len() + 1);
    let mut col = start;
    let mut it = raw.chars().peekable();
    while let Some(c) = it.next() {
        cols.push(col);
        let width = match (c, it.peek()) {
            ('\\', Some('u')) => {
                // \uXXXX, or a surrogate pair \uD83D\uDE00 for one character.
                let hex: String = it.clone().skip(1).take(4).collect();
                let unit = u16::from_str_radix(&hex, 16).ok()?;
                let pair = (0xD800..0xDC00).contains(&unit);
                let n = if pair { 12 } else { 6 };
                for _ in 0..n - 1 {
                    it.next();
                }
                n
            }
            ('\\', Some(_)) => {
                it.next();
                2
            }
            _ => 1,
        };
        col += width;
    }
    cols.push(col);
    (cols.len() == text.chars().count() + 1).then_some(cols)
}

/// Where each wanted field's string content starts. Later duplicates replace
/// earlier ones,
/// matching serde_json's map semantics; the scanner stops quietly on
/// anything surprising and callers fall back to (1, 1).
fn scan_positions(source: &str) -> Vec<Found> {
    let mut found = Vec::new();
    let mut s = Scanner {
        chars: source.chars().peekable(),
        line: 1,
        column: 1,
    };
    let _ = scan_object(&mut s, "", &mut found);
    found
}

/// An object's fields, named as `other_texts` names them: `key`, or
/// `prefix.key` inside another object.
fn scan_object(s: &mut Scanner<'_>, prefix: &str, found: &mut Vec<Found>) -> Option<()> {
    s.skip_ws();
    if s.bump()? != '{' {
        return None;
    }
    loop {
        s.skip_ws();
        if s.peek()? == '}' {
            s.bump();
            return Some(());
        }
        let (_, raw_key) = s.string()?;
        let key = serde_json::from_str::<String>(&format!("\"{raw_key}\"")).ok()?;
        let name = if prefix.is_empty() {
            key
        } else {
            format!("{prefix}.{key}")
        };
        s.skip_ws();
        if s.bump()? != ':' {
            return None;
        }
        // A repeated key replaces what the earlier one held.
        let (list, inner) = (format!("{name}["), format!("{name}."));
        found.retain(|(f, _, _)| *f != name && !f.starts_with(&list) && !f.starts_with(&inner));
        scan_value(s, &name, found)?;
        s.skip_ws();
        if s.peek()? == ',' {
            s.bump();
        }
    }
}

/// Every text in a value, at any depth (`name`, `name[2]`, `name.key`).
fn scan_value(s: &mut Scanner<'_>, name: &str, found: &mut Vec<Found>) -> Option<()> {
    s.skip_ws();
    match s.peek()? {
        '"' => {
            let (pos, raw) = s.string()?;
            found.push((name.to_owned(), pos, raw));
        }
        '[' => {
            s.bump();
            let mut i = 0usize;
            loop {
                s.skip_ws();
                match s.peek()? {
                    ']' => {
                        s.bump();
                        break;
                    }
                    ',' => {
                        s.bump();
                    }
                    _ => {
                        scan_value(s, &format!("{name}[{i}]"), found)?;
                        i += 1;
                    }
                }
            }
        }
        '{' => scan_object(s, name, found)?,
        _ => s.skip_value()?,
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find<'a>(units: &'a [TextUnit], field: &str) -> &'a TextUnit {
        units
            .iter()
            .find(|u| u.field.as_deref() == Some(field))
            .unwrap_or_else(|| panic!("no unit for {field}"))
    }

    #[test]
    /// From a new user's trial: a misspelt `captoin` and an extra `desc`
    /// were passed without a word.
    fn other_texts_are_checked_and_named_by_their_field() {
        let src = "{\"title\":\"好物\",\n \"captoin\":\"本品根治失眠\",\"desc\":\"保证有效\",\"tags\":[\"根治\", 3],\"n\":3,\"ok\":true}";
        let units = extract(src).unwrap();
        let fields: Vec<_> = units.iter().map(|u| u.field.clone().unwrap()).collect();
        assert_eq!(fields, ["title", "captoin", "desc", "tags[0]"]);
        let c = find(&units, "captoin");
        assert_eq!((c.text.as_str(), c.line, c.column), ("本品根治失眠", 2, 13));
    }

    #[test]
    /// From a new user's trial: fields inside objects were placed at 1:1.
    fn texts_nested_in_objects_and_lists_are_placed_where_they_are() {
        let src = "{\n  \"title\": \"好物\",\n  \"x\": 1,\n  \"meta\": {\"summary\": \"本品100%有效\"},\n  \"n\": {\"a\": {\"b\": \"根治\"}},\n  \"l\": [{\"k\": \"保证\"}]\n}\n";
        let units = extract(src).unwrap();
        let at = |f: &str| {
            let u = find(&units, f);
            (u.line, u.column)
        };
        assert_eq!(at("meta.summary"), (4, 24));
        assert_eq!(at("n.a.b"), (5, 21));
        assert_eq!(at("l[0].k"), (6, 16));
    }

    #[test]
    fn fields_and_positions() {
        let src = "{\n  \"id\": 42,\n  \"meta\": {\"title\": \"不是这个\", \"x\": [1, {\"y\": \"]\"}]},\n  \"title\": \"降压神器\",\n\t\"caption\":   \"坚持服用，根治高血压，100%有效！\",\n  \"hashtags\": [\"养生\", \"\",\n     \"根治\"]\n}\n";
        let units = extract(src).unwrap();
        let fields: Vec<_> = units.iter().map(|u| u.field.clone().unwrap()).collect();
        // Texts outside the known fields are checked too, after them.
        assert_eq!(
            fields,
            [
                "title",
                "caption",
                "hashtags[0]",
                "hashtags[2]",
                "meta.title",
                "meta.x[1].y"
            ]
        );
        let title = find(&units, "title");
        assert_eq!(
            (title.text.as_str(), title.line, title.column),
            ("降压神器", 4, 13)
        );
        let caption = find(&units, "caption");
        assert_eq!((caption.line, caption.column), (5, 16));
        let tag = find(&units, "hashtags[2]");
        assert_eq!((tag.text.as_str(), tag.line, tag.column), ("根治", 7, 7));
        assert_eq!(find(&units, "hashtags[0]").column, 17);
    }

    #[test]
    fn escapes_are_unescaped_and_position_is_string_start() {
        let src = r#"{"caption": "\u6839\u6cbb \"\u5fc5\u6548\"", "tit\u006ce": "x"}"#;
        let units = extract(src).unwrap();
        assert_eq!(find(&units, "caption").text, "根治 \"必效\"");
        assert_eq!(find(&units, "caption").column, 14);
        // The key was written with an escape; serde_json still calls it "title".
        assert_eq!(find(&units, "title").column, 61);
    }

    #[test]
    fn columns_follow_escapes() {
        let src = "{\"caption\": \"a\\n\\u6839治\"}";
        let units = extract(src).unwrap();
        let u = &units[0];
        assert_eq!(u.text, "a\n根治");
        // a at 14, \n at 15-16, \u6839 at 17-22, 治 at 23, end 24.
        let cols: Vec<(u32, u32)> = [14, 15, 17, 23, 24].map(|c| (1, c)).to_vec();
        assert_eq!(u.columns, Some(cols));
    }

    #[test]
    fn duplicate_key_uses_last_like_serde_json() {
        let src = r#"{"title": "旧", "title": "新标题"}"#;
        let units = extract(src).unwrap();
        assert_eq!(units.len(), 1);
        assert_eq!((units[0].text.as_str(), units[0].column), ("新标题", 26));
    }

    #[test]
    fn crlf_source() {
        let src = "{\r\n\"title\": \"一\",\r\n\"caption\": \"二\"\r\n}";
        let units = extract(src).unwrap();
        assert_eq!((units[1].line, units[1].column), (3, 13));
    }

    #[test]
    fn invalid_json_reports_position() {
        let err = extract("{\n  \"title\": \"a\",\n    oops\n}").unwrap_err();
        assert!(
            err.starts_with("invalid JSON at line 3, column 5: "),
            "{err}"
        );
        assert!(!err.contains(" at line 3 column 5"), "{err}");
    }

    #[test]
    fn non_object_is_refused() {
        assert_eq!(
            extract("[\"根治\"]").unwrap_err(),
            "post.json must be a JSON object, found an array"
        );
    }

    #[test]
    fn wrong_field_types_are_refused() {
        assert_eq!(
            extract(r#"{"title": 5}"#).unwrap_err(),
            "\"title\" must be a string, found a number"
        );
        assert_eq!(
            extract(r#"{"hashtags": ["a", 1]}"#).unwrap_err(),
            "\"hashtags[1]\" must be a string, found a number"
        );
        assert_eq!(
            extract(r#"{"hashtags": "根治"}"#).unwrap_err(),
            "\"hashtags\" must be an array of strings, found a string"
        );
    }

    #[test]
    fn nulls_and_missing_fields_are_fine() {
        assert_eq!(extract(r#"{"title": null, "likes": 3}"#).unwrap(), vec![]);
    }
}
