//! `[mapping]` as written in the settings file, before it is checked.
//!
//! These types only describe the TOML; [`super::MappingRules::from_settings`] turns them into
//! rules, refusing anything it cannot apply and naming the key. An annotated example that maps
//! `config/example-export.csv`:
//!
//! ```toml
//! [mapping]
//! # The employee number: Pluvo's `ref`. Kept as text, so 000123 keeps its zeros.
//! ref = "employee_number"
//! # A template over columns; runs of spaces collapse, so a blank middle name is fine.
//! name = "{first_name} {middle_name} {last_name}"
//! # Trimmed, lower-cased and checked; two employees with one address are both held back.
//! email = "email"
//! # A column (NL/EN/DE, nl_NL, Dutch, Engels, ...) with a default for blank cells.
//! # `language = { default = "NL" }` sets everyone's language; leave it out to let Pluvo decide.
//! language = { column = "language", default = "NL" }
//! # Roles every synced user gets; PARTICIPANT when left out.
//! roles = ["PARTICIPANT"]
//! # Optional. Formats: iso (yyyy-mm-dd), dd-mm-yyyy, dd.mm.yyyy, dd/mm/yyyy, mm/dd/yyyy.
//! start_date = { column = "start_date", format = "dd-mm-yyyy" }
//! end_date = { column = "end_date", format = "dd-mm-yyyy" }
//!
//! # Custom fields. `ref` is the category's ref in Pluvo; type is string, choice, boolean
//! # (true/false, yes/no, ja/nee, 1/0, y/n, j) or date (with a format). A blank cell leaves
//! # Pluvo's value as it is.
//! [[mapping.categories]]
//! ref = "department"
//! column = "department"
//! type = "string"
//!
//! [[mapping.categories]]
//! ref = "contract-type"
//! column = "contract_type"
//! type = "choice"
//!
//! [[mapping.categories]]
//! ref = "company-car"
//! column = "company_car"
//! type = "boolean"
//!
//! [[mapping.categories]]
//! ref = "employed-since"
//! column = "start_date"
//! type = "date"
//! format = "dd-mm-yyyy"
//!
//! # Groups the sync manages: every static group, and every ref a template can produce.
//! # Memberships of other groups are never touched. Template filters: slug, lower, upper, trim.
//! # A blank cell yields no group. A template needs fixed text (the `dept-`), so its groups
//! # can be told apart from groups administrators made by hand.
//! [mapping.groups]
//! static = ["all-employees"]
//! templates = ["dept-{department|slug}", "loc-{location|slug}"]
//! ```

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingSettings {
    /// The employee-number column.
    #[serde(rename = "ref")]
    pub employee_ref: String,
    /// Template for the display name.
    pub name: String,
    /// The e-mail column.
    pub email: String,
    #[serde(default)]
    pub language: Option<LanguageSettings>,
    /// Role names; `None` means `["PARTICIPANT"]`.
    #[serde(default)]
    pub roles: Option<Vec<String>>,
    #[serde(default)]
    pub start_date: Option<DateColumnSettings>,
    #[serde(default)]
    pub end_date: Option<DateColumnSettings>,
    #[serde(default)]
    pub categories: Vec<CategorySettings>,
    #[serde(default)]
    pub groups: GroupSettings,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LanguageSettings {
    #[serde(default)]
    pub column: Option<String>,
    /// For blank cells, or for everyone when there is no column.
    #[serde(default)]
    pub default: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DateColumnSettings {
    pub column: String,
    /// A date format name; `iso` when left out.
    #[serde(default)]
    pub format: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategorySettings {
    /// The category's ref in Pluvo.
    #[serde(rename = "ref")]
    pub category_ref: String,
    pub column: String,
    #[serde(rename = "type")]
    pub kind: CategoryType,
    /// Only for `type = "date"`; `iso` when left out.
    #[serde(default)]
    pub format: Option<String>,
}

/// The type of a Pluvo extra category, as config names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CategoryType {
    String,
    Choice,
    Boolean,
    Date,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSettings {
    /// Group refs every synced user is a member of.
    #[serde(rename = "static", default)]
    pub static_groups: Vec<String>,
    /// Templates such as `dept-{department|slug}`.
    #[serde(default)]
    pub templates: Vec<String>,
}
