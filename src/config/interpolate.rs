//! `${VAR}` / `${VAR:-default}` expansion in config string values; `$${` writes a literal
//! `${`. A `$` not followed by `{` is kept as is.

/// Why a value could not be expanded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InterpolateError {
    /// `${NAME}` names a variable that is not set and has no default.
    Unset(String),
    /// `${` without a closing `}`.
    Unterminated,
    /// `${...}` whose name is not `[A-Za-z_][A-Za-z0-9_]*`.
    BadName(String),
}

/// Expands `text`, looking variables up with `lookup`. `${VAR:-default}` uses the default
/// when the variable is unset or empty, as the shell does.
pub fn interpolate(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, InterpolateError> {
    if !text.contains('$') {
        return Ok(text.to_string());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let end = tail.find('}').ok_or(InterpolateError::Unterminated)?;
            let inner = &tail[..end];
            let (name, default) = match inner.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (inner, None),
            };
            let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(InterpolateError::BadName(inner.to_string()));
            }
            match (lookup(name).filter(|v| !(default.is_some() && v.is_empty())), default) {
                (Some(value), _) => out.push_str(&value),
                (None, Some(default)) => out.push_str(default),
                (None, None) => return Err(InterpolateError::Unset(name.to_string())),
            }
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "A" => Some("alpha".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_variables_defaults_and_escapes() {
        assert_eq!(interpolate("x-${A}-y", &env).unwrap(), "x-alpha-y");
        assert_eq!(interpolate("${B:-dflt}", &env).unwrap(), "dflt");
        assert_eq!(interpolate("${EMPTY:-dflt}", &env).unwrap(), "dflt");
        assert_eq!(interpolate("${EMPTY}", &env).unwrap(), "");
        assert_eq!(interpolate("${B:-}", &env).unwrap(), "");
        assert_eq!(interpolate("$${A} costs $5", &env).unwrap(), "${A} costs $5");
        assert_eq!(interpolate("no vars", &env).unwrap(), "no vars");
    }

    #[test]
    fn reports_what_is_wrong() {
        assert_eq!(interpolate("${B}", &env), Err(InterpolateError::Unset("B".into())));
        assert_eq!(interpolate("${A", &env), Err(InterpolateError::Unterminated));
        assert_eq!(interpolate("${1x}", &env), Err(InterpolateError::BadName("1x".into())));
    }
}
