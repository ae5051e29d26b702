//! The rules account data must follow: Django's, so an imported user table and a Django front
//! end's forms keep working. Each broken rule is a value; the HTTP layer words it in Django's
//! terms, the CLI in its own.

use super::user::{ProfileUpdate, User};
use crate::error::AuthError;

/// A profile field that broke a rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProfileField {
    Email,
    FirstName,
    LastName,
}

impl ProfileField {
    pub fn name(self) -> &'static str {
        match self {
            ProfileField::Email => "email",
            ProfileField::FirstName => "first_name",
            ProfileField::LastName => "last_name",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProfileProblem {
    /// Longer than Django's 150 characters for names.
    TooLong,
    InvalidEmail,
}

/// Django's field limits: names up to 150 characters, e-mail up to 254 with one `@`.
pub fn validate_profile(u: &ProfileUpdate) -> Result<(), (ProfileField, ProfileProblem)> {
    for (field, v) in [
        (ProfileField::FirstName, &u.first_name),
        (ProfileField::LastName, &u.last_name),
    ] {
        if v.as_ref().is_some_and(|v| v.chars().count() > 150) {
            return Err((field, ProfileProblem::TooLong));
        }
    }
    if let Some(e) = &u.email {
        let ok = e.is_empty()
            || (e.chars().count() <= 254
                && e.split_once('@')
                    .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.contains('@'))
                && !e.chars().any(char::is_whitespace));
        if !ok {
            return Err((ProfileField::Email, ProfileProblem::InvalidEmail));
        }
    }
    Ok(())
}

/// A username as Django stores and compares it (`AbstractBaseUser.normalize_username`): NFKC,
/// so the fullwidth `ａｌｉｃｅ` and the ligature `ﬁ` are `alice` and `fi`. Applied on creation
/// and on every lookup by name (login, the CLI), so a lookalike cannot be created next to the
/// account it imitates, nor reach another account at login. Case is kept, as in Django.
pub fn normalize_username(name: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    if name.is_ascii() {
        return name.to_string();
    }
    name.nfkc().collect()
}

/// The UTS #39 skeleton of a (normalised) username: two names with the same skeleton look
/// alike (`аlice` with a Cyrillic а and `alice`; `rn` and `m`; `I`, `l` and `1`). NFKC alone
/// folds compatibility forms only, so a second account is refused when its skeleton is taken
/// (the stores keep each user's skeleton, indexed). Case is kept, as in [`normalize_username`]:
/// `Alice` and `alice` stay two names, as in Django.
pub fn username_skeleton(name: &str) -> String {
    unicode_security::confusable_detection::skeleton(name).collect()
}

/// Django's username rule: 1–150 characters of letters, digits and `@.+-_`.
pub fn validate_username(name: &str) -> Result<(), String> {
    if name.is_empty() || name.chars().count() > 150 {
        return Err("username must be 1 to 150 characters".into());
    }
    if !name
        .chars()
        .all(|c| c.is_alphanumeric() || "@.+-_".contains(c))
    {
        return Err("username may contain only letters, digits and @/./+/-/_".into());
    }
    Ok(())
}

/// Passwords are taken as given (never trimmed), but an empty one or one large enough to be a
/// denial of service is refused.
pub fn validate_password(password: &str) -> Result<(), AuthError> {
    if password.is_empty() {
        return Err(AuthError::Invalid("password must not be empty".into()));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(AuthError::Invalid(format!(
            "password must be at most {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    Ok(())
}

const MAX_PASSWORD_BYTES: usize = 4096;

/// Why a new password chosen by its user is refused (Django's default validators, in spirit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeakPassword {
    /// Fewer than 8 characters.
    TooShort,
    TooLong,
    EntirelyNumeric,
    SimilarToUsername,
}

/// The first rule a new password breaks: at least 8 characters, not all digits, not the username.
pub fn weak_password(password: &str, user: &User) -> Option<WeakPassword> {
    if password.chars().count() < 8 {
        return Some(WeakPassword::TooShort);
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Some(WeakPassword::TooLong);
    }
    if password.chars().all(|c| c.is_ascii_digit()) {
        return Some(WeakPassword::EntirelyNumeric);
    }
    if password.eq_ignore_ascii_case(&user.username) {
        return Some(WeakPassword::SimilarToUsername);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_follow_django() {
        assert!(validate_username("alice.b+1@x-y_z").is_ok());
        assert!(validate_username("").is_err());
        assert!(validate_username("has space").is_err());
        assert!(validate_username(&"a".repeat(151)).is_err());
        assert_eq!(normalize_username("ａｌｉｃｅ"), "alice");
        assert_eq!(normalize_username("ﬁ"), "fi");
        assert_eq!(normalize_username("Alice"), "Alice");
        assert_eq!(normalize_username("José"), "José");
    }

    #[test]
    fn lookalike_usernames_share_a_skeleton_and_distinct_ones_do_not() {
        let alice = username_skeleton("alice");
        assert_eq!(username_skeleton("\u{430}lice"), alice, "Cyrillic а");
        assert_eq!(
            username_skeleton("\u{430}\u{4cf}\u{456}\u{441}\u{435}"),
            alice,
            "every letter Cyrillic"
        );
        assert_eq!(username_skeleton("rnary"), username_skeleton("mary"));
        assert_eq!(username_skeleton("bill"), username_skeleton("biII"));
        assert_ne!(username_skeleton("alice"), username_skeleton("Alice"));
        assert_ne!(username_skeleton("alice"), username_skeleton("alicia"));
        assert_ne!(username_skeleton("bob"), username_skeleton("bob2"));
    }

    #[test]
    fn profile_rules() {
        let long = ProfileUpdate {
            last_name: Some("x".repeat(151)),
            ..Default::default()
        };
        assert_eq!(
            validate_profile(&long),
            Err((ProfileField::LastName, ProfileProblem::TooLong))
        );
        let bad = ProfileUpdate {
            email: Some("a@b".into()),
            ..Default::default()
        };
        assert_eq!(
            validate_profile(&bad),
            Err((ProfileField::Email, ProfileProblem::InvalidEmail))
        );
        let blank = ProfileUpdate {
            email: Some(String::new()),
            ..Default::default()
        };
        assert_eq!(validate_profile(&blank), Ok(()));
    }
}
