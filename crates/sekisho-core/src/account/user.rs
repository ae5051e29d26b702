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
    /// Django's `has_perm` (see [`crate::authz`]).
    pub fn has_perm(&self, codename: &str) -> bool {
        crate::authz::has_perm(self, codename)
    }
}

/// A user as stored, with the password hash the domain needs to log them in.
#[derive(Clone, Debug)]
pub struct StoredUser {
    pub user: User,
    pub password_hash: String,
}

/// What a login needs before the password is checked: nothing that costs more to fetch for a
/// known user than for an unknown one (groups and permissions come after the check), so the
/// answer's timing does not tell which usernames exist.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub id: UserId,
    pub password_hash: String,
    pub is_active: bool,
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

#[cfg(test)]
mod tests {
    use super::*;

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
