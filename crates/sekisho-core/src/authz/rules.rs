//! The shapes authorization names must have, checked before storage so bad input is a 400
//! with a reason, never a storage error.

/// Django's `Group.name`: 1–150 characters, no control characters.
pub fn validate_group_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() || name.chars().count() > 150 {
        return Err("group name must be 1 to 150 characters".into());
    }
    if name.chars().any(char::is_control) {
        return Err("group name must not contain control characters".into());
    }
    Ok(())
}

/// A permission codename: `app.codename`, each part 1–100 ASCII letters, digits or `_`
/// (Django's `app_label` and `codename` as written in `has_perm`).
pub fn validate_codename(codename: &str) -> Result<(), String> {
    dotted(codename, "permission", "app.action_model")
}

/// An object type: `app.model`, the same shape as a codename.
pub fn validate_object_type(object_type: &str) -> Result<(), String> {
    dotted(object_type, "object type", "app.model")
}

/// An object id (guardian's `object_pk`): 1–255 characters, no control characters, no `/`
/// (it must fit in one path segment of a policy rule).
pub fn validate_object_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.chars().count() > 255 {
        return Err("object id must be 1 to 255 characters".into());
    }
    if id.chars().any(|c| c.is_control() || c == '/') {
        return Err("object id must not contain control characters or '/'".into());
    }
    Ok(())
}

/// Django's `Permission.name`: up to 255 characters, no control characters.
pub fn validate_permission_name(name: &str) -> Result<(), String> {
    if name.chars().count() > 255 || name.chars().any(char::is_control) {
        return Err("permission name must be at most 255 characters, no control characters".into());
    }
    Ok(())
}

fn dotted(value: &str, what: &str, shape: &str) -> Result<(), String> {
    let part_ok = |p: &str| {
        !p.is_empty() && p.len() <= 100 && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    };
    match value.split_once('.') {
        Some((app, rest)) if part_ok(app) && part_ok(rest) => Ok(()),
        _ => Err(format!(
            "{what} must look like {shape} (letters, digits, '_')"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_before_storage() {
        assert!(validate_codename("shop.view_order").is_ok());
        for bad in [
            "shop",
            "shop.",
            ".view",
            "a.b.c",
            "shop.view order",
            "shop.view\0",
            "",
        ] {
            assert!(validate_codename(bad).is_err(), "{bad:?}");
        }
        assert!(validate_object_type("shop.order").is_ok());
        assert!(validate_object_id("42").is_ok());
        assert!(validate_object_id("a/b").is_err());
        assert!(validate_object_id("a\0").is_err());
        assert!(validate_object_id("").is_err());
        assert!(validate_object_id(&"x".repeat(256)).is_err());
        assert!(validate_group_name("editors").is_ok());
        assert!(validate_group_name(" ").is_err());
        assert!(validate_group_name("a\nb").is_err());
        assert!(validate_group_name(&"é".repeat(150)).is_ok());
        assert!(validate_group_name(&"é".repeat(151)).is_err());
        assert!(validate_permission_name("Can view order").is_ok());
        assert!(validate_permission_name("x\u{7}").is_err());
    }
}
