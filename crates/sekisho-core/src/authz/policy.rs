//! The access policy a forward-auth gate applies: path patterns and methods mapped to a
//! requirement, first match wins, a default for everything else. Written in TOML (inline in
//! the main config as `[[policy.rules]]`, or in `policy.file`), compiled once at start with
//! one-line errors naming the rule, then evaluated without allocation on the hot path except
//! for captured segments.
//!
//! Paths are compared in one canonical form: percent-escapes decoded, and any path whose
//! meaning depends on who normalises it (dot segments, empty segments, an encoded `/` or `\`,
//! control characters, invalid UTF-8) is refused outright rather than matched — a gate and
//! its upstream must never disagree about which rule a request falls under.

use super::{has_perm, in_group, is_staff, model::ObjectRef, object_type_of, rules};
use crate::account::User;
use crate::auth::Auth;
use crate::config::{ConfigError, PolicyConfig, RuleConfig};
use crate::error::AuthError;
use serde::Deserialize;

/// What a request must satisfy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Requirement {
    /// Anyone, logged in or not.
    Anonymous,
    Authenticated,
    /// DRF's `IsAdminUser`.
    Staff,
    Superuser,
    /// A model-wide permission codename.
    Perm(String),
    /// Membership of a group, by name.
    Group(String),
    /// DRF's `DjangoModelPermissions` without its trap: the method picks the action
    /// (GET/HEAD/OPTIONS → `view`, POST → `add`, PUT/PATCH → `change`, DELETE → `delete`), and
    /// reading needs `view_` like every other action.
    Model {
        app: String,
        model: String,
    },
    /// A per-object permission; the object id is the path segment captured as `segment`.
    Object {
        codename: String,
        object_type: String,
        segment: String,
    },
}

const SHAPES: &str = "anonymous, authenticated, staff, superuser, perm:<app.codename>, \
    group:<name>, model:<app.model>, object:<app.codename>:{segment}[:<app.model>]";

impl Requirement {
    pub fn parse(text: &str) -> Result<Requirement, String> {
        let bad = || format!("unknown requirement {text:?} (expected {SHAPES})");
        Ok(match text {
            "anonymous" => Requirement::Anonymous,
            "authenticated" => Requirement::Authenticated,
            "staff" => Requirement::Staff,
            "superuser" => Requirement::Superuser,
            _ => {
                let (kind, rest) = text.split_once(':').ok_or_else(bad)?;
                match kind {
                    "perm" => {
                        rules::validate_codename(rest)?;
                        Requirement::Perm(rest.to_string())
                    }
                    "group" => {
                        rules::validate_group_name(rest)?;
                        Requirement::Group(rest.to_string())
                    }
                    "model" => {
                        rules::validate_object_type(rest)?;
                        let (app, model) = rest.split_once('.').ok_or_else(bad)?;
                        Requirement::Model {
                            app: app.into(),
                            model: model.into(),
                        }
                    }
                    "object" => {
                        let mut parts = rest.split(':');
                        let codename = parts.next().unwrap_or_default();
                        rules::validate_codename(codename)?;
                        let segment = parts
                            .next()
                            .and_then(|s| s.strip_prefix('{'))
                            .and_then(|s| s.strip_suffix('}'))
                            .filter(|s| valid_capture_name(s))
                            .ok_or_else(|| {
                                format!("{text:?}: the object id must name a path segment, as in object:{codename}:{{id}}")
                            })?;
                        let object_type = match parts.next() {
                            Some(t) => {
                                rules::validate_object_type(t)?;
                                t.to_string()
                            }
                            None => object_type_of(codename).ok_or_else(|| {
                                format!("{text:?}: cannot tell the object type from {codename:?}; add it as object:{codename}:{{{segment}}}:<app.model>")
                            })?,
                        };
                        if parts.next().is_some() {
                            return Err(bad());
                        }
                        Requirement::Object {
                            codename: codename.into(),
                            object_type,
                            segment: segment.into(),
                        }
                    }
                    _ => return Err(bad()),
                }
            }
        })
    }

    /// The text this requirement was written as (for `config check` and logs).
    pub fn describe(&self) -> String {
        match self {
            Requirement::Anonymous => "anonymous".into(),
            Requirement::Authenticated => "authenticated".into(),
            Requirement::Staff => "staff".into(),
            Requirement::Superuser => "superuser".into(),
            Requirement::Perm(p) => format!("perm:{p}"),
            Requirement::Group(g) => format!("group:{g}"),
            Requirement::Model { app, model } => format!("model:{app}.{model}"),
            Requirement::Object {
                codename,
                object_type,
                segment,
            } => format!("object:{codename}:{{{segment}}}:{object_type}"),
        }
    }
}

fn valid_capture_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Capture(String),
    /// `*`: any one segment.
    Any,
}

/// A path pattern: `/api/orders/{id}/`, `/static/**`, `/api/*/export/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern {
    segments: Vec<Segment>,
    /// Ends in `/**`: any number (zero or more) of further segments.
    rest: bool,
    /// Ends in `/` (Django's APPEND_SLASH style): a path must end in `/` exactly when this does.
    trailing_slash: bool,
    text: String,
}

impl Pattern {
    pub fn parse(text: &str) -> Result<Pattern, String> {
        let body = text
            .strip_prefix('/')
            .ok_or_else(|| format!("path {text:?} must start with '/'"))?;
        let mut segments = Vec::new();
        let mut rest = false;
        let mut trailing_slash = false;
        let parts: Vec<&str> = if body.is_empty() {
            vec![]
        } else {
            body.split('/').collect()
        };
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            if part.is_empty() {
                if last {
                    trailing_slash = true;
                    continue;
                }
                return Err(format!("path {text:?} has an empty segment"));
            }
            if *part == "**" {
                if !last {
                    return Err(format!("path {text:?}: '**' may only be the last segment"));
                }
                rest = true;
                continue;
            }
            if *part == "*" {
                segments.push(Segment::Any);
            } else if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                if !valid_capture_name(name) {
                    return Err(format!("path {text:?}: bad segment name {part:?}"));
                }
                if segments
                    .iter()
                    .any(|s| matches!(s, Segment::Capture(n) if n == name))
                {
                    return Err(format!("path {text:?}: segment {{{name}}} appears twice"));
                }
                segments.push(Segment::Capture(name.into()));
            } else if part.contains(['{', '}', '*', '%', '?', '#', '\\'])
                || part.chars().any(char::is_control)
                || *part == "."
                || *part == ".."
            {
                return Err(format!(
                    "path {text:?}: segment {part:?} must be literal text, *, ** or {{name}}"
                ));
            } else {
                segments.push(Segment::Literal((*part).into()));
            }
        }
        Ok(Pattern {
            segments,
            rest,
            trailing_slash,
            text: text.into(),
        })
    }

    fn captures(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Capture(n) => Some(n.as_str()),
            _ => None,
        })
    }

    /// Matches a canonical path; on a match, the captured segments.
    fn matches(&self, path: &CanonicalPath) -> Option<Vec<(String, String)>> {
        let segs = &path.segments;
        if self.rest {
            if segs.len() < self.segments.len() {
                return None;
            }
        } else if segs.len() != self.segments.len() || path.trailing_slash != self.trailing_slash {
            return None;
        }
        let mut captured = Vec::new();
        for (pat, seg) in self.segments.iter().zip(segs) {
            match pat {
                Segment::Literal(l) if l == seg => {}
                Segment::Literal(_) => return None,
                Segment::Any => {}
                Segment::Capture(name) => captured.push((name.clone(), seg.clone())),
            }
        }
        Some(captured)
    }
}

/// A request path in the one form rules are matched against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CanonicalPath {
    segments: Vec<String>,
    trailing_slash: bool,
}

impl CanonicalPath {
    /// Parses the path of a request URI (query and fragment dropped). `None` when the path
    /// is ambiguous or malformed (see the module comment): such requests are refused.
    pub fn parse(uri: &str) -> Option<CanonicalPath> {
        let path = uri.split(['?', '#']).next().unwrap_or_default();
        let body = path.strip_prefix('/')?;
        let mut segments = Vec::new();
        let mut trailing_slash = false;
        if !body.is_empty() {
            let parts: Vec<&str> = body.split('/').collect();
            for (i, raw) in parts.iter().enumerate() {
                if raw.is_empty() {
                    if i + 1 == parts.len() {
                        trailing_slash = true;
                        continue;
                    }
                    return None;
                }
                let decoded = percent_decode(raw)?;
                if decoded == "."
                    || decoded == ".."
                    || decoded.contains(['/', '\\'])
                    || decoded.chars().any(char::is_control)
                {
                    return None;
                }
                segments.push(decoded);
            }
        }
        Some(CanonicalPath {
            segments,
            trailing_slash,
        })
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3)?;
            let v = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[derive(Clone, Debug)]
pub struct Rule {
    pub pattern: Pattern,
    /// Upper-case methods; empty means every method. `GET` also covers `HEAD`.
    pub methods: Vec<String>,
    pub require: Requirement,
    /// A second factor within this long before the request, on top of `require`.
    pub mfa_within: Option<std::time::Duration>,
}

/// The compiled policy.
#[derive(Clone, Debug)]
pub struct Policy {
    pub rules: Vec<Rule>,
    pub default: Requirement,
}

/// What `policy.file` holds: the same keys as the `[policy]` section, minus `file`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    default: Option<String>,
    #[serde(default)]
    rules: Vec<RuleConfig>,
}

const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT",
];

/// The outcome of a policy match: the requirement, and the captured path segments.
#[derive(Debug)]
pub struct Matched<'p> {
    pub require: &'p Requirement,
    /// The rule's step-up requirement (see [`crate::mfa::require_recent_mfa`]).
    pub mfa_within: Option<std::time::Duration>,
    pub captures: Vec<(String, String)>,
    /// The rule's pattern, or `None` for the default (for logs).
    pub rule: Option<&'p str>,
}

impl Policy {
    /// Compiles the `[policy]` section; `file_text` is the content of `policy.file` when set
    /// (its rules come after the inline ones, its `default` replaces the section's).
    pub fn compile(config: &PolicyConfig, file_text: Option<&str>) -> Result<Policy, ConfigError> {
        let mut rules = compile_rules(&config.rules, "policy.rules")?;
        let mut default_text = config.default.clone();
        if let Some(text) = file_text {
            let name = config
                .file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            let file: PolicyFile = toml::from_str(text).map_err(|e| {
                ConfigError(format!(
                    "policy.file ({name}): {}",
                    e.to_string().lines().next().unwrap_or_default()
                ))
            })?;
            rules.extend(compile_rules(
                &file.rules,
                &format!("policy.file ({name}): rules"),
            )?);
            if let Some(d) = file.default {
                default_text = d;
            }
        }
        let default = Requirement::parse(&default_text)
            .map_err(|e| ConfigError(format!("policy.default: {e}")))?;
        if matches!(default, Requirement::Object { .. }) {
            return Err(ConfigError(
                "policy.default: an object requirement needs a path segment; use it in a rule"
                    .into(),
            ));
        }
        Ok(Policy { rules, default })
    }

    /// The first rule matching method and path, else the default. `None` for a path that
    /// cannot be matched safely (refuse the request).
    pub fn decide(&self, method: &str, path: &CanonicalPath) -> Matched<'_> {
        for rule in &self.rules {
            let method_ok = rule.methods.is_empty()
                || rule
                    .methods
                    .iter()
                    .any(|m| m == method || (m == "GET" && method == "HEAD"));
            if !method_ok {
                continue;
            }
            if let Some(captures) = rule.pattern.matches(path) {
                return Matched {
                    require: &rule.require,
                    mfa_within: rule.mfa_within,
                    captures,
                    rule: Some(&rule.pattern.text),
                };
            }
        }
        Matched {
            require: &self.default,
            mfa_within: None,
            captures: Vec::new(),
            rule: None,
        }
    }

    /// The default requirement alone: for a check that names no original request.
    pub fn decide_default(&self) -> Matched<'_> {
        Matched {
            require: &self.default,
            mfa_within: None,
            captures: Vec::new(),
            rule: None,
        }
    }

    /// The policy as `config check` prints it.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for (i, r) in self.rules.iter().enumerate() {
            let methods = if r.methods.is_empty() {
                "*".to_string()
            } else {
                r.methods.join(",")
            };
            let step_up = match r.mfa_within {
                Some(d) => format!(" (second factor within {})", crate::config::Dur(d)),
                None => String::new(),
            };
            out.push_str(&format!(
                "rule {}: {} {} -> {}{step_up}\n",
                i + 1,
                methods,
                r.pattern.text,
                r.require.describe()
            ));
        }
        out.push_str(&format!("default -> {}\n", self.default.describe()));
        out
    }
}

fn compile_rules(rules: &[RuleConfig], at: &str) -> Result<Vec<Rule>, ConfigError> {
    rules
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let here = format!("{at}[{}]", i + 1);
            let pattern =
                Pattern::parse(&r.path).map_err(|e| ConfigError(format!("{here}.path: {e}")))?;
            let mut methods = Vec::new();
            for m in &r.methods {
                let up = m.to_ascii_uppercase();
                if !METHODS.contains(&up.as_str()) {
                    return Err(ConfigError(format!("{here}.methods: unknown method {m:?}")));
                }
                methods.push(up);
            }
            let require = Requirement::parse(&r.require)
                .map_err(|e| ConfigError(format!("{here}.require: {e}")))?;
            if let Requirement::Object { segment, .. } = &require
                && !pattern.captures().any(|c| c == segment)
            {
                return Err(ConfigError(format!(
                    "{here}.require: the path {:?} has no segment {{{segment}}}",
                    r.path
                )));
            }
            let mfa_within = r.mfa_within.map(|d| d.0);
            if mfa_within.is_some_and(|d| d.is_zero()) {
                return Err(ConfigError(format!("{here}.mfa_within: must be above 0s")));
            }
            if mfa_within.is_some() && require == Requirement::Anonymous {
                return Err(ConfigError(format!(
                    "{here}.mfa_within: an anonymous rule has no login to step up"
                )));
            }
            Ok(Rule {
                pattern,
                methods,
                require,
                mfa_within,
            })
        })
        .collect()
}

/// The verdict of a requirement for a caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// No (valid) credentials, and the requirement needs some.
    Unauthenticated,
    Forbidden,
}

/// The action `DjangoModelPermissions` maps a method to; `None` for methods it refuses.
pub fn model_action(method: &str) -> Option<&'static str> {
    Some(match method {
        "GET" | "HEAD" | "OPTIONS" => "view",
        "POST" => "add",
        "PUT" | "PATCH" => "change",
        "DELETE" => "delete",
        _ => return None,
    })
}

impl Auth {
    /// Applies a requirement to a caller (`None`: anonymous). Inactive users are refused
    /// everything but `anonymous`.
    pub async fn evaluate(
        &self,
        user: Option<&User>,
        require: &Requirement,
        method: &str,
        captures: &[(String, String)],
    ) -> Result<Verdict, AuthError> {
        if *require == Requirement::Anonymous {
            return Ok(Verdict::Allow);
        }
        let Some(user) = user else {
            return Ok(Verdict::Unauthenticated);
        };
        let allowed = user.is_active
            && match require {
                Requirement::Anonymous | Requirement::Authenticated => true,
                Requirement::Staff => is_staff(user),
                Requirement::Superuser => user.is_superuser,
                Requirement::Perm(p) => has_perm(user, p),
                Requirement::Group(g) => in_group(user, g),
                Requirement::Model { app, model } => model_action(method)
                    .is_some_and(|action| has_perm(user, &format!("{app}.{action}_{model}"))),
                Requirement::Object {
                    codename,
                    object_type,
                    segment,
                } => {
                    let Some((_, id)) = captures.iter().find(|(n, _)| n == segment) else {
                        return Ok(Verdict::Forbidden);
                    };
                    let object = ObjectRef {
                        object_type: object_type.clone(),
                        object_id: id.clone(),
                    };
                    self.has_object_perm(user, codename, &object).await?
                }
            };
        Ok(if allowed {
            Verdict::Allow
        } else {
            Verdict::Forbidden
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(path: &str, methods: &[&str], require: &str) -> RuleConfig {
        RuleConfig {
            path: path.into(),
            methods: methods.iter().map(|m| m.to_string()).collect(),
            require: require.into(),
            mfa_within: None,
        }
    }

    fn policy(rules: Vec<RuleConfig>) -> Result<Policy, ConfigError> {
        Policy::compile(
            &PolicyConfig {
                rules,
                ..PolicyConfig::default()
            },
            None,
        )
    }

    fn decide<'p>(p: &'p Policy, method: &str, uri: &str) -> Option<Matched<'p>> {
        CanonicalPath::parse(uri).map(|c| p.decide(method, &c))
    }

    #[test]
    fn first_matching_rule_wins_and_methods_narrow() {
        let p = policy(vec![
            rule("/api/public/**", &[], "anonymous"),
            rule("/api/orders/{id}/", &["get"], "object:shop.view_order:{id}"),
            rule(
                "/api/orders/{id}/",
                &["PUT", "PATCH"],
                "object:shop.change_order:{id}",
            ),
            rule("/api/orders/", &[], "model:shop.order"),
            rule("/admin/**", &[], "staff"),
        ])
        .unwrap();
        let m = decide(&p, "GET", "/api/public/a/b?x=1").unwrap();
        assert_eq!(*m.require, Requirement::Anonymous);
        assert_eq!(
            *decide(&p, "GET", "/api/public").unwrap().require,
            Requirement::Anonymous
        );
        let m = decide(&p, "HEAD", "/api/orders/42/").unwrap();
        assert_eq!(m.captures, vec![("id".to_string(), "42".to_string())]);
        assert!(
            matches!(m.require, Requirement::Object { codename, .. } if codename == "shop.view_order")
        );
        let m = decide(&p, "PATCH", "/api/orders/42/").unwrap();
        assert!(
            matches!(m.require, Requirement::Object { codename, object_type, .. }
            if codename == "shop.change_order" && object_type == "shop.order")
        );
        // DELETE matches no order rule: the default applies.
        assert_eq!(
            *decide(&p, "DELETE", "/api/orders/42/").unwrap().require,
            Requirement::Authenticated
        );
        // Trailing slashes are exact, as Django's URLs are.
        assert!(decide(&p, "GET", "/api/orders/42").unwrap().rule.is_none());
        assert_eq!(
            *decide(&p, "GET", "/admin/").unwrap().require,
            Requirement::Staff
        );
    }

    #[test]
    fn ambiguous_paths_are_refused_not_matched() {
        for bad in [
            "/api/orders/../admin/",
            "/api/./orders/",
            "/api//orders/",
            "/api/orders/%2e%2e/",
            "/api/a%2Fb/",
            "/api/a%5Cb/",
            "/api/a%00/",
            "/api/%ff/",
            "/api/%zz/",
            "/api/%4",
            "relative",
            "",
        ] {
            assert!(CanonicalPath::parse(bad).is_none(), "{bad:?}");
        }
        let p = CanonicalPath::parse("/api/caf%C3%A9/%34%32/").unwrap();
        assert_eq!(p.segments, vec!["api", "café", "42"]);
        assert_eq!(CanonicalPath::parse("/").unwrap().segments.len(), 0);
    }

    #[test]
    fn errors_name_the_rule_and_the_key() {
        let e = |rules| policy(rules).unwrap_err().0;
        assert_eq!(
            e(vec![rule("/a/", &[], "staf")]),
            format!("policy.rules[1].require: unknown requirement \"staf\" (expected {SHAPES})")
        );
        assert!(
            e(vec![
                rule("/a/", &[], "anonymous"),
                rule("a/", &[], "staff")
            ])
            .starts_with("policy.rules[2].path: path \"a/\" must start with '/'")
        );
        assert!(
            e(vec![rule("/a/", &["FETCH"], "staff")])
                .starts_with("policy.rules[1].methods: unknown method \"FETCH\"")
        );
        assert!(
            e(vec![rule("/a/{id}/", &[], "object:shop.view_order:{pk}")])
                .contains("has no segment {pk}")
        );
        assert!(e(vec![rule("/a/**/b/", &[], "staff")]).contains("'**' may only be the last"));
        assert!(e(vec![rule("/a/{id}/{id}/", &[], "staff")]).contains("appears twice"));
        assert!(e(vec![rule("/a/", &[], "perm:nodot")]).contains("app.action_model"));
        assert!(
            e(vec![rule("/a/{id}/", &[], "object:shop.order:{id}")])
                .contains("cannot tell the object type")
        );
        assert!(
            policy(vec![rule(
                "/a/{id}/",
                &[],
                "object:shop.order:{id}:shop.thing"
            )])
            .is_ok()
        );
        let bad_default = Policy::compile(
            &PolicyConfig {
                default: "nobody".into(),
                ..PolicyConfig::default()
            },
            None,
        )
        .unwrap_err();
        assert!(
            bad_default
                .0
                .starts_with("policy.default: unknown requirement")
        );
    }

    #[test]
    fn a_policy_file_adds_rules_and_may_set_the_default() {
        let config = PolicyConfig {
            file: Some("policy.toml".into()),
            rules: vec![rule("/a/", &[], "anonymous")],
            ..PolicyConfig::default()
        };
        let p = Policy::compile(
            &config,
            Some("default = \"staff\"\n[[rules]]\npath = \"/b/\"\nrequire = \"superuser\"\n"),
        )
        .unwrap();
        assert_eq!(p.rules.len(), 2);
        assert_eq!(p.default, Requirement::Staff);
        assert_eq!(
            p.describe(),
            "rule 1: * /a/ -> anonymous\nrule 2: * /b/ -> superuser\ndefault -> staff\n"
        );
        let e = Policy::compile(
            &config,
            Some("[[rules]]\npath = \"/b/\"\nrequire = \"x\"\n"),
        )
        .unwrap_err()
        .0;
        assert!(
            e.starts_with("policy.file (policy.toml): rules[1].require:"),
            "{e}"
        );
        let e = Policy::compile(
            &config,
            Some("[[rules]]\npath = \"/b/\"\nrequired = \"x\"\n"),
        )
        .unwrap_err()
        .0;
        assert!(e.starts_with("policy.file (policy.toml): "), "{e}");
    }

    #[test]
    fn model_permissions_need_view_for_reads() {
        assert_eq!(model_action("GET"), Some("view"));
        assert_eq!(model_action("OPTIONS"), Some("view"));
        assert_eq!(model_action("POST"), Some("add"));
        assert_eq!(model_action("PATCH"), Some("change"));
        assert_eq!(model_action("DELETE"), Some("delete"));
        assert_eq!(model_action("TRACE"), None);
    }
}
