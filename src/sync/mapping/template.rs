//! Templates such as `{first_name} {last_name}` or `dept-{department|slug}`.
//!
//! A template is fixed text with `{column}` placeholders, each optionally followed by filters:
//! `|slug`, `|lower`, `|upper`, `|trim`. `{{` and `}}` write a literal brace. Templates build the
//! user's name and the refs of template groups, and, read backwards, they tell which group refs
//! the sync *manages*: [`Template::could_produce`] says whether some cell value would render to a
//! given ref, so memberships of groups no rule can produce are never touched.

use std::fmt;

/// A transformation of a cell value inside a placeholder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// ASCII-folded, lower-case, runs of anything else as one `-`: `Café Zuid` → `cafe-zuid`.
    Slug,
    Lower,
    Upper,
    Trim,
}

impl Filter {
    const NAMES: &'static str = "slug, lower, upper, trim";

    fn parse(raw: &str) -> Option<Self> {
        match raw.trim() {
            "slug" => Some(Filter::Slug),
            "lower" => Some(Filter::Lower),
            "upper" => Some(Filter::Upper),
            "trim" => Some(Filter::Trim),
            _ => None,
        }
    }

    fn apply(self, value: &str) -> String {
        match self {
            Filter::Slug => slug(value),
            Filter::Lower => value.to_lowercase(),
            Filter::Upper => value.to_uppercase(),
            Filter::Trim => value.trim().to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Column { name: String, filters: Vec<Filter> },
}

/// A parsed template. Built only by [`Template::parse`], so a rendering cannot hit a syntax error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

/// Why a template was refused; positions count characters from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("the '{{' at character {at} is never closed with '}}'")]
    Unclosed { at: usize },
    #[error("the '}}' at character {at} closes nothing (write '}}}}' for a literal brace)")]
    StrayClose { at: usize },
    #[error("the placeholder at character {at} names no column")]
    EmptyColumn { at: usize },
    #[error("unknown filter '{name}' (known: {})", Filter::NAMES)]
    UnknownFilter { name: String },
    #[error("there is no {{column}} placeholder, so every employee would get the same value")]
    NoPlaceholder,
}

impl Template {
    pub fn parse(raw: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut chars = raw.chars().enumerate().peekable();
        while let Some((index, c)) = chars.next() {
            match c {
                '{' if chars.peek().is_some_and(|&(_, next)| next == '{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek().is_some_and(|&(_, next)| next == '}') => {
                    chars.next();
                    text.push('}');
                }
                '}' => return Err(TemplateError::StrayClose { at: index + 1 }),
                '{' => {
                    let mut inner = String::new();
                    let mut closed = false;
                    for (_, c) in chars.by_ref() {
                        if c == '}' {
                            closed = true;
                            break;
                        }
                        inner.push(c);
                    }
                    if !closed || inner.contains('{') {
                        return Err(TemplateError::Unclosed { at: index + 1 });
                    }
                    if !text.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut text)));
                    }
                    parts.push(parse_placeholder(&inner, index + 1)?);
                }
                _ => text.push(c),
            }
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        if !parts.iter().any(|part| matches!(part, Part::Column { .. })) {
            return Err(TemplateError::NoPlaceholder);
        }
        Ok(Self {
            source: raw.to_owned(),
            parts,
        })
    }

    /// The columns the template reads, in order of appearance (repeats included).
    pub fn columns(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|part| match part {
            Part::Column { name, .. } => Some(name.as_str()),
            Part::Text(_) => None,
        })
    }

    /// Whether the template has fixed text besides its placeholders.
    pub fn has_text(&self) -> bool {
        self.parts
            .iter()
            .any(|part| matches!(part, Part::Text(text) if !text.trim().is_empty()))
    }

    /// Renders with every placeholder filled; `None` when a cell is blank (or filters to nothing),
    /// which for a group template means "no group", not an error.
    pub fn render_all<'a>(&self, cell: impl Fn(&str) -> Option<&'a str>) -> Option<String> {
        let (rendered, complete) = self.render_with(cell);
        complete.then_some(rendered)
    }

    /// Renders with blank cells as empty text, for names where a middle name may be missing.
    pub fn render_lenient<'a>(&self, cell: impl Fn(&str) -> Option<&'a str>) -> String {
        self.render_with(cell).0
    }

    fn render_with<'a>(&self, cell: impl Fn(&str) -> Option<&'a str>) -> (String, bool) {
        let mut out = String::new();
        let mut complete = true;
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Column { name, filters } => {
                    let value = apply_filters(filters, cell(name).unwrap_or_default());
                    complete &= !value.is_empty();
                    out.push_str(&value);
                }
            }
        }
        (out, complete)
    }

    /// Whether some set of (trimmed, non-blank) cell values renders to exactly `candidate`.
    pub fn could_produce(&self, candidate: &str) -> bool {
        matches_from(&self.parts, candidate)
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

fn parse_placeholder(inner: &str, at: usize) -> Result<Part, TemplateError> {
    let mut pieces = inner.split('|');
    let name = pieces.next().unwrap_or_default().trim();
    if name.is_empty() {
        return Err(TemplateError::EmptyColumn { at });
    }
    let filters = pieces
        .map(|raw| {
            Filter::parse(raw).ok_or_else(|| TemplateError::UnknownFilter {
                name: raw.trim().to_owned(),
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(Part::Column {
        name: name.to_owned(),
        filters,
    })
}

fn apply_filters(filters: &[Filter], value: &str) -> String {
    filters
        .iter()
        .fold(value.to_owned(), |value, filter| filter.apply(&value))
}

/// Backtracking match of `parts` against `candidate`. A placeholder matches a non-empty piece
/// that its filters leave unchanged: every filter here is idempotent, so that is exactly the set
/// of values the placeholder can render (cells arrive trimmed, hence the trim check).
fn matches_from(parts: &[Part], candidate: &str) -> bool {
    match parts.split_first() {
        None => candidate.is_empty(),
        Some((Part::Text(text), rest)) => candidate
            .strip_prefix(text.as_str())
            .is_some_and(|after| matches_from(rest, after)),
        Some((Part::Column { filters, .. }, rest)) => candidate
            .char_indices()
            .skip(1)
            .map(|(end, _)| end)
            .chain(std::iter::once(candidate.len()))
            .any(|end| {
                let (piece, after) = candidate.split_at(end);
                !piece.is_empty()
                    && piece.trim() == piece
                    && apply_filters(filters, piece) == piece
                    && matches_from(rest, after)
            }),
    }
}

/// `Café Zuid & Noord` → `cafe-zuid-noord`: transliterated to ASCII, lower-case, every run of
/// other characters one dash, no dash at either end. Group refs are identifiers that
/// administrators type and URLs carry, so they stay plain ASCII.
///
/// Transliteration is `deunicode`'s, not a hand-kept table: HR writes department names in every
/// script and with every ligature (`ﬁ`, `Đ`, Vietnamese tone marks), and a letter the fold does
/// not know must not silently vanish (`naïve ﬁnance` once became `naive-nance`). A character with
/// no ASCII spelling at all separates words, like punctuation does.
pub fn slug(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut pending_dash = false;
    let mut push = |c: char| {
        if c.is_ascii_alphanumeric() {
            if pending_dash && !out.is_empty() {
                out.push('-');
            }
            pending_dash = false;
            out.push(c.to_ascii_lowercase());
        } else {
            pending_dash = true;
        }
    };
    for c in raw.chars() {
        if c.is_ascii() {
            push(c);
        } else {
            deunicode::deunicode_char(c)
                .unwrap_or(" ")
                .chars()
                .for_each(&mut push);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn template(raw: &str) -> Template {
        Template::parse(raw).unwrap_or_else(|error| panic!("{raw}: {error}"))
    }

    #[test]
    fn slugs_fold_accents_and_collapse_separators() {
        let cases = [
            ("plain", "Sales", "sales"),
            (
                "spaces and ampersand",
                "Sales & Marketing",
                "sales-marketing",
            ),
            ("accents", "Café Zuid-Oost", "cafe-zuid-oost"),
            (
                "umlaut and eszett",
                "Düsseldorf Straße",
                "dusseldorf-strasse",
            ),
            (
                "dutch ij and trema",
                "Ĳsselmonde / Ëindhoven",
                "ijsselmonde-eindhoven",
            ),
            ("decomposed accent", "Cafe\u{301}", "cafe"),
            ("edges trimmed", "  --R&D--  ", "r-d"),
            ("digits kept", "Team 42", "team-42"),
            ("nothing left", "—", ""),
            ("ligature fi", "naïve ﬁnance", "naive-finance"),
            ("vietnamese tone marks", "Kế toán", "ke-toan"),
            ("d with stroke", "Đà Nẵng", "da-nang"),
            ("greek", "Λογιστήριο", "logisterio"),
        ];
        for (name, raw, expected) in cases {
            assert_eq!(slug(raw), expected, "case {name}");
        }
    }

    #[test]
    fn templates_parse_or_say_what_is_wrong() {
        let ok = |columns: &[&str]| Ok(columns.iter().map(|c| (*c).to_owned()).collect());
        type Columns = Result<Vec<String>, TemplateError>;
        let cases: [(&str, &str, Columns); 8] = [
            (
                "two columns",
                "{first_name} {last_name}",
                ok(&["first_name", "last_name"]),
            ),
            (
                "filters and spaces",
                "dept-{ department | slug }",
                ok(&["department"]),
            ),
            ("escaped braces", "{{x}}-{a|lower|trim}", ok(&["a"])),
            (
                "unclosed",
                "dept-{department",
                Err(TemplateError::Unclosed { at: 6 }),
            ),
            (
                "stray close",
                "dept}-{x}",
                Err(TemplateError::StrayClose { at: 5 }),
            ),
            (
                "empty",
                "dept-{ |slug}",
                Err(TemplateError::EmptyColumn { at: 6 }),
            ),
            (
                "unknown filter",
                "dept-{department|slugify}",
                Err(TemplateError::UnknownFilter {
                    name: "slugify".to_owned(),
                }),
            ),
            (
                "no placeholder",
                "all-employees",
                Err(TemplateError::NoPlaceholder),
            ),
        ];
        for (name, raw, expected) in cases {
            let got =
                Template::parse(raw).map(|t| t.columns().map(str::to_owned).collect::<Vec<_>>());
            assert_eq!(got, expected, "case {name}");
        }
    }

    #[test]
    fn rendering_fills_or_gives_up_on_blank_cells() {
        let cells: HashMap<&str, &str> = HashMap::from([
            ("department", "Research & Development"),
            ("location", "Den Haag"),
            ("first", "Lotte"),
            ("last", "de Vries"),
            ("dash", "—"),
        ]);
        let cell = |column: &str| cells.get(column).copied();
        let cases = [
            (
                "slug",
                "dept-{department|slug}",
                Some("dept-research-development"),
            ),
            (
                "two placeholders",
                "{location|upper}/{first|lower}",
                Some("DEN HAAG/lotte"),
            ),
            ("blank cell gives nothing", "loc-{missing|slug}", None),
            ("slug to nothing gives nothing", "x-{dash|slug}", None),
            ("escaped braces", "{{{first}}}", Some("{Lotte}")),
        ];
        for (name, raw, expected) in cases {
            assert_eq!(
                template(raw).render_all(cell).as_deref(),
                expected,
                "case {name}"
            );
        }
        assert_eq!(
            template("{first} {middle} {last}").render_lenient(cell),
            "Lotte  de Vries"
        );
    }

    #[test]
    fn could_produce_recognises_exactly_what_rendering_can_make() {
        let cases = [
            ("slug middle", "dept-{department|slug}", "dept-sales", true),
            (
                "slug with dashes",
                "dept-{department|slug}",
                "dept-r-d",
                true,
            ),
            ("empty middle", "dept-{department|slug}", "dept-", false),
            (
                "upper case is not a slug",
                "dept-{department|slug}",
                "dept-Sales",
                false,
            ),
            (
                "leading dash is not a slug",
                "dept-{department|slug}",
                "dept--sales",
                false,
            ),
            (
                "other prefix",
                "dept-{department|slug}",
                "team-sales",
                false,
            ),
            ("suffix", "{location|slug}-staff", "utrecht-staff", true),
            ("suffix missing", "{location|slug}-staff", "utrecht", false),
            ("two placeholders", "{a|slug}_{b|slug}", "x-y_z", true),
            (
                "unfiltered takes anything trimmed",
                "dept {department}",
                "dept R&D",
                true,
            ),
            (
                "unfiltered not padded",
                "dept {department}",
                "dept  R&D",
                false,
            ),
            ("lower", "t-{x|lower}", "t-abc", true),
            ("lower refuses upper", "t-{x|lower}", "t-Abc", false),
        ];
        for (name, raw, candidate, expected) in cases {
            assert_eq!(
                template(raw).could_produce(candidate),
                expected,
                "case {name}"
            );
        }
    }
}
