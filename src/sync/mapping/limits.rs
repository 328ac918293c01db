//! What Pluvo's model accepts, checked while mapping so that a value Pluvo would refuse is a
//! rejected row (with its line and field) instead of a failed call, a retry every run, and a
//! huge value in the journal.
//!
//! Pluvo is a Django application; its contract states no limits, so these are Django's:
//! - text fields (`CharField`) hold at most [`MAX_TEXT_CHARS`] characters: a user's name, and
//!   (assumed, the model is not published) the text of a string or choice custom field;
//! - an e-mail address must pass Django's `EmailValidator`: the part before the `@` is plain
//!   ASCII (letters, digits and ``!#$%&'*+-/=?^_`{|}~``, in dot-separated runs), and the domain is
//!   host names of letters, digits and hyphens with a top-level part of two or more. A domain in
//!   another script (`bücher.example`) is accepted when it converts to punycode
//!   (`xn--bcher-kva.example`), as Django does; the address is sent as written. Quoted local
//!   parts and IP-address domains, which Django also allows, are refused: HR exports hold
//!   typos, not those, and a mail system that needs one is rare enough to fix by hand.

/// Django's `CharField(max_length=255)`, in characters (not bytes).
pub const MAX_TEXT_CHARS: usize = 255;

/// Django's `EmailValidator` refuses anything longer outright.
pub const MAX_EMAIL_CHARS: usize = 320;

/// `Err` says why a text is too long, without quoting it (it may be megabytes).
pub fn check_text(text: &str) -> Result<(), String> {
    let chars = text.chars().count();
    if chars > MAX_TEXT_CHARS {
        return Err(format!(
            "is {chars} characters long; Pluvo takes at most {MAX_TEXT_CHARS}"
        ));
    }
    Ok(())
}

/// `Err` when an address is too long for Pluvo to consider at all; says so without quoting it.
pub fn check_email_length(address: &str) -> Result<(), String> {
    let chars = address.trim().chars().count();
    if chars > MAX_EMAIL_CHARS {
        return Err(format!(
            "the e-mail address is {chars} characters long; Pluvo takes at most {MAX_EMAIL_CHARS}"
        ));
    }
    Ok(())
}

/// Checks a (trimmed, lower-cased) address as strictly as Pluvo's `EmailValidator` does.
pub fn check_email(address: &str) -> Result<(), String> {
    check_email_length(address)?;
    let Some((local, domain)) = address.rsplit_once('@') else {
        return Err(format!("'{address}' is not an e-mail address: no '@'"));
    };
    let atom_char = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
    if local
        .split('.')
        .any(|atom| atom.is_empty() || !atom.chars().all(atom_char))
    {
        return Err(format!(
            "'{address}' is refused by Pluvo: before the '@' only ASCII letters, digits, \
             !#$%&'*+-/=?^_`{{|}}~ and single dots (not first or last) are allowed; write the \
             address as the mail system knows it, without accents"
        ));
    }
    let ascii = if domain.is_ascii() {
        domain.to_owned()
    } else {
        idna::domain_to_ascii_strict(domain).map_err(|_| {
            format!("'{address}' is refused by Pluvo: the domain cannot be written in punycode")
        })?
    };
    let labels: Vec<&str> = ascii.split('.').collect();
    let host_label = |label: &&str| {
        (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    let top_level_ok = labels.last().is_some_and(|top| {
        (2..=63).contains(&top.len())
            && top.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !top.ends_with('-')
    });
    if labels.len() < 2 || !labels[..labels.len() - 1].iter().all(host_label) || !top_level_ok {
        return Err(format!(
            "'{address}' is refused by Pluvo: the domain after the '@' must be names of letters, \
             digits and hyphens (not first or last), separated by dots, ending in a part of two \
             or more characters"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_checked_as_strictly_as_pluvo_does() {
        let cases = [
            ("plain", "ann.smit@example.com", true),
            ("plus and hyphen", "ann+hr-2@mail.example.co.uk", true),
            ("all the specials", "a!#$%&'*+-/=?^_`{|}~@example.com", true),
            ("accent before the @", "jörg.müller@example.com", false),
            ("leading dot", ".ann@example.com", false),
            ("double dot", "ann..smit@example.com", false),
            ("trailing dot", "ann.@example.com", false),
            ("quoted local part", "\"ann smit\"@example.com", false),
            ("comma", "ann,smit@example.com", false),
            ("IDN domain", "info@bücher.example", true),
            ("IDN top level", "info@example.рф", true),
            ("hyphen first in a label", "ann@-example.com", false),
            ("hyphen last in a label", "ann@example-.com", false),
            ("underscore in the domain", "ann@ex_ample.com", false),
            ("one-letter top level", "ann@example.c", false),
            ("no dot", "ann@localhost", false),
            ("ip literal", "ann@[10.0.0.1]", false),
            ("label of 64", &format!("ann@{}.com", "a".repeat(64)), false),
            (
                "too long",
                &format!("{}@example.com", "a".repeat(320)),
                false,
            ),
        ];
        for (name, address, ok) in cases {
            let result = check_email(address);
            assert_eq!(result.is_ok(), ok, "case {name}: {result:?}");
        }
        let long = check_email(&format!("{}@example.com", "a".repeat(5_000_000))).unwrap_err();
        assert!(
            long.len() < 200,
            "a huge address is not quoted back: {long}"
        );
    }

    #[test]
    fn text_counts_characters_not_bytes() {
        assert!(check_text(&"é".repeat(255)).is_ok());
        let error = check_text(&"é".repeat(256)).unwrap_err();
        assert_eq!(error, "is 256 characters long; Pluvo takes at most 255");
    }
}
