//! Plaintext secrets in a client's server entries: API keys in `env`, in
//! `headers`, or in `args` (`--api-key=…`, or the value after `--token`).

use super::apps::Upstream;

/// Where a secret was found in an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    Env(String),
    /// A header; `prefix` is kept in the config (`Bearer `).
    Header {
        name: String,
        prefix: String,
    },
    /// An argument; `prefix` is kept (`--api-key=`).
    Arg {
        index: usize,
        prefix: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub place: Place,
    /// The keychain name it is kept under.
    pub name: String,
    pub value: String,
}

/// Names that say "this is a credential".
fn secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "key",
        "token",
        "secret",
        "password",
        "passwd",
        "credential",
        "auth",
        "authorization",
        "pat",
        "cookie",
    ]
    .iter()
    .any(|w| {
        n == *w
            || n.split(['_', '-', '.']).any(|part| part == *w)
            || n.ends_with(w) && (n.contains("api") || n.contains("access"))
    })
}

/// Values that look like a credential whatever they are called.
fn secret_value(value: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "sk-",
        "sk_",
        "ghp_",
        "gho_",
        "ghs_",
        "github_pat_",
        "glpat-",
        "xoxb-",
        "xoxp-",
        "AKIA",
        "AIza",
        "pk_live_",
        "rk_live_",
        "shpat_",
    ];
    PREFIXES.iter().any(|p| value.starts_with(p)) && value.len() >= 16
}

fn worth_keeping(value: &str) -> bool {
    !value.trim().is_empty() && !value.contains("${")
}

/// A keychain name from a variable or header name: `GITHUB_TOKEN`.
fn name_from(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    out.truncate(64);
    out
}

/// The secrets in one server's entry.
pub fn find(upstream: &Upstream) -> Vec<Found> {
    let mut found = Vec::new();
    match upstream {
        Upstream::Stdio { args, env, .. } => {
            for (k, v) in env {
                if worth_keeping(v) && (secret_name(k) || secret_value(v)) {
                    found.push(Found {
                        place: Place::Env(k.clone()),
                        name: name_from(k),
                        value: v.clone(),
                    });
                }
            }
            for (i, arg) in args.iter().enumerate() {
                let (prefix, value, flag) = match arg.split_once('=') {
                    Some((flag, value)) if flag.starts_with('-') => {
                        (format!("{flag}="), value, flag)
                    }
                    _ => match i.checked_sub(1).map(|p| args[p].as_str()) {
                        Some(flag) if flag.starts_with('-') && !arg.starts_with('-') => {
                            (String::new(), arg.as_str(), flag)
                        }
                        _ => (String::new(), arg.as_str(), ""),
                    },
                };
                let named = !flag.is_empty() && secret_name(flag.trim_start_matches('-'));
                if worth_keeping(value) && (named || secret_value(value)) {
                    let base = if flag.is_empty() {
                        "ARG".to_string()
                    } else {
                        name_from(flag.trim_start_matches('-'))
                    };
                    found.push(Found {
                        place: Place::Arg { index: i, prefix },
                        name: format!("{base}_{i}"),
                        value: value.to_string(),
                    });
                }
            }
        }
        Upstream::Http { headers, .. } => {
            for (k, v) in headers {
                let (prefix, value) = match v.split_once(' ') {
                    Some((scheme, rest))
                        if matches!(
                            scheme.to_ascii_lowercase().as_str(),
                            "bearer" | "token" | "basic"
                        ) =>
                    {
                        (format!("{scheme} "), rest)
                    }
                    _ => (String::new(), v.as_str()),
                };
                if worth_keeping(value) && (secret_name(k) || secret_value(value)) {
                    found.push(Found {
                        place: Place::Header {
                            name: k.clone(),
                            prefix,
                        },
                        name: name_from(k),
                        value: value.to_string(),
                    });
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn secrets_are_found_in_env_headers_and_args() {
        let stdio = Upstream::Stdio {
            command: "npx".into(),
            args: vec![
                "--api-key=sk-abc".into(),
                "--token".into(),
                "t0k3n".into(),
                "--verbose".into(),
                "ghp_0123456789abcdef0123".into(),
            ],
            env: BTreeMap::from([
                ("GITHUB_PERSONAL_ACCESS_TOKEN".into(), "ghp_x".into()),
                ("LOG_LEVEL".into(), "info".into()),
                ("API_KEY".into(), "${env:KEY}".into()),
            ]),
        };
        let found = find(&stdio);
        let places: Vec<&Place> = found.iter().map(|f| &f.place).collect();
        assert_eq!(
            places,
            vec![
                &Place::Env("GITHUB_PERSONAL_ACCESS_TOKEN".into()),
                &Place::Arg {
                    index: 0,
                    prefix: "--api-key=".into()
                },
                &Place::Arg {
                    index: 2,
                    prefix: String::new()
                },
                &Place::Arg {
                    index: 4,
                    prefix: String::new()
                },
            ]
        );
        assert_eq!(found[1].value, "sk-abc");
        let http = Upstream::Http {
            url: "https://x".into(),
            headers: BTreeMap::from([
                ("Authorization".into(), "Bearer abc123".into()),
                ("Accept".into(), "json".into()),
            ]),
        };
        assert_eq!(
            find(&http),
            vec![Found {
                place: Place::Header {
                    name: "Authorization".into(),
                    prefix: "Bearer ".into()
                },
                name: "AUTHORIZATION".into(),
                value: "abc123".into(),
            }]
        );
    }
}
