//! Authorization: what an authenticated user may do. The same rules whichever way the caller
//! logged in (DESIGN §1.6). Today: Django's `has_perm` and DRF's `IsAdminUser`; managed
//! permissions, object grants and forward-auth policies land here.

use crate::account::User;

/// Django's `has_perm`: active superusers have every permission; inactive users none.
pub fn has_perm(user: &User, codename: &str) -> bool {
    user.is_active && (user.is_superuser || user.permissions.iter().any(|p| p == codename))
}

/// DRF's `IsAdminUser`: active staff.
pub fn is_staff(user: &User) -> bool {
    user.is_active && user.is_staff
}
