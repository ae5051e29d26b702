//! Users, shaped like Django's `auth.User` so that an imported user table and the `me` endpoint
//! look familiar to a Django front end.

use serde::Serialize;

pub type UserId = i64;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub is_active: bool,
    pub is_staff: bool,
    pub is_superuser: bool,
    /// Group names, sorted.
    pub groups: Vec<String>,
    /// Effective permission codenames (`app.action_model`) from the user and their groups, sorted.
    pub permissions: Vec<String>,
}

impl User {
    /// Django's `has_perm`: active superusers have every permission; inactive users none.
    pub fn has_perm(&self, codename: &str) -> bool {
        self.is_active && (self.is_superuser || self.permissions.iter().any(|p| p == codename))
    }
}

/// A user as stored, with the password hash the domain needs to log them in.
#[derive(Clone, Debug)]
pub struct StoredUser {
    pub user: User,
    pub password_hash: String,
}

#[derive(Clone, Debug, Default)]
pub struct NewUser {
    pub username: String,
    pub email: String,
    pub is_staff: bool,
    pub is_superuser: bool,
}

/// The fields a user may change on their own profile (`PATCH /api/auth/me/`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProfileUpdate {
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

/// Django's field limits: names up to 150 characters, e-mail up to 254 with one `@`.
pub fn validate_profile(u: &ProfileUpdate) -> Result<(), (&'static str, String)> {
    for (field, v) in [("first_name", &u.first_name), ("last_name", &u.last_name)] {
        if v.as_ref().is_some_and(|v| v.chars().count() > 150) {
            return Err((
                field,
                "Ensure this field has no more than 150 characters.".into(),
            ));
        }
    }
    if let Some(e) = &u.email {
        let ok = e.is_empty()
            || (e.chars().count() <= 254
                && e.split_once('@')
                    .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.contains('@'))
                && !e.chars().any(char::is_whitespace));
        if !ok {
            return Err(("email", "Enter a valid email address.".into()));
        }
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_follow_django() {
        assert!(validate_username("alice.b+1@x-y_z").is_ok());
        assert!(validate_username("").is_err());
        assert!(validate_username("has space").is_err());
        assert!(validate_username(&"a".repeat(151)).is_err());
    }

    #[test]
    fn superuser_has_every_perm_unless_inactive() {
        let mut u = User {
            id: 1,
            username: "a".into(),
            email: String::new(),
            first_name: String::new(),
            last_name: String::new(),
            is_active: true,
            is_staff: false,
            is_superuser: true,
            groups: vec![],
            permissions: vec![],
        };
        assert!(u.has_perm("shop.view_order"));
        u.is_active = false;
        assert!(!u.has_perm("shop.view_order"));
    }
}
