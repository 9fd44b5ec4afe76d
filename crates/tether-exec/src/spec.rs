//! The `[[exec]]` configuration tables and the endpoints compiled from them: everything is
//! checked once at start-up so that a bad template or pattern stops the server, not a request.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use indexmap::IndexMap;
use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::params::{ParamSpec, ParamType, Schema, claude_schema};
use crate::template::{Template, TemplateError};

/// Default timeout of a process: 5 minutes, as the original.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
/// Default cap of one output frame's line, in bytes.
pub const DEFAULT_MAX_LINE: usize = 1 << 20;
/// Default prompt cap of the claude protocol, in bytes.
pub const MAX_PROMPT_BYTES: usize = 8192;
/// Environment variables every child gets from the server's environment, if set.
pub const BASE_ENV: &[&str] = &["PATH", "HOME", "LANG"];

/// How the request frame is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// `{prompt, meta}` as the original `/ws/claude`; the params table is fixed.
    Claude,
    /// One JSON object with the endpoint's own params.
    #[default]
    Params,
}

/// What happens to the process's stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StderrMode {
    /// Each line as `{"error": line}` (the original's shape); stdout stays raw.
    #[default]
    Error,
    /// Both streams as `{"stream": "stdout"|"stderr", "data": line}` (websocketd --passstderr).
    Tagged,
    /// Discarded.
    Drop,
}

/// One `[exec.params.NAME]` table as written.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ParamTable {
    /// `"string"` (default) or `"integer"`.
    #[serde(rename = "type", default = "string_type")]
    pub ty: ParamType,
    /// Whether a request must carry it (default false).
    #[serde(default)]
    pub required: bool,
    /// Fewest bytes of a string.
    pub min_bytes: Option<usize>,
    /// Most bytes of a string.
    pub max_bytes: Option<usize>,
    /// Regex the value must match.
    pub pattern: Option<String>,
    /// Allowed values.
    #[serde(rename = "enum")]
    pub choices: Option<Vec<String>>,
    /// Smallest integer.
    pub min: Option<i64>,
    /// Largest integer.
    pub max: Option<i64>,
}

fn string_type() -> ParamType {
    ParamType::String
}

/// One `[[exec]]` table as written in the server's TOML file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExecSpec {
    /// Served at `/ws/exec/<name>` (and `/ws/claude` for the entry named `claude`).
    pub name: String,
    /// The argv template; argv\[0\] is looked up in PATH.
    pub argv: Vec<String>,
    /// `"params"` (default) or `"claude"`.
    #[serde(default)]
    pub protocol: Protocol,
    /// Parameters of the request object (ignored by the claude protocol).
    #[serde(default)]
    pub params: IndexMap<String, ParamTable>,
    /// Seconds a process may run (default 300).
    pub timeout: Option<f64>,
    /// Processes of this endpoint at once (default: only the global limit).
    pub max_concurrent: Option<usize>,
    /// Names of the server's environment variables passed on (besides PATH, HOME, LANG).
    #[serde(default)]
    pub env: Vec<String>,
    /// Working directory (default: the server's).
    pub cwd: Option<PathBuf>,
    /// Whether later text frames go to the process's stdin (default false: stdin is /dev/null).
    #[serde(default)]
    pub stdin: bool,
    /// `"error"` (default), `"tagged"` or `"drop"`.
    #[serde(default)]
    pub stderr: StderrMode,
    /// Longest frame of output in bytes; longer lines are cut (default 1 MiB).
    pub max_line_bytes: Option<usize>,
    /// Name of the server's environment variable holding the token a client must present
    /// (default: none, the endpoint is open to any client the Origin policy admits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_env: Option<String>,
}

/// An `[[exec]]` table that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// Names are path segments.
    #[error("exec name {0:?} must be 1-64 of [A-Za-z0-9_-]")]
    Name(String),
    /// Two tables with one name.
    #[error("exec {0:?} is defined twice")]
    Duplicate(String),
    /// The argv template is wrong.
    #[error("exec {name:?}: {source}")]
    Template {
        /// Endpoint.
        name: String,
        /// Why.
        source: TemplateError,
    },
    /// A pattern is not a regex.
    #[error("exec {name:?}: param {param:?}: bad pattern: {source}")]
    Pattern {
        /// Endpoint.
        name: String,
        /// Parameter.
        param: String,
        /// Why.
        source: Box<regex::Error>,
    },
    /// Another value is out of range.
    #[error("exec {name:?}: {why}")]
    Invalid {
        /// Endpoint.
        name: String,
        /// Why.
        why: String,
    },
}

/// An endpoint ready to serve.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Its name.
    pub name: String,
    /// How requests are read.
    pub protocol: Protocol,
    /// Parameters, in declaration order.
    pub schema: Schema,
    /// The argv template.
    pub template: Template,
    /// How long a process may run.
    pub timeout: Duration,
    /// Processes of this endpoint at once, if limited.
    pub max_concurrent: Option<usize>,
    /// Variables passed on from the server's environment (BASE_ENV included).
    pub env: Vec<String>,
    /// Working directory.
    pub cwd: Option<PathBuf>,
    /// Whether later frames feed stdin.
    pub stdin: bool,
    /// Where stderr goes.
    pub stderr: StderrMode,
    /// Frame cap for output lines.
    pub max_line_bytes: usize,
    /// The token clients must present, read from `token_env` at start-up.
    pub token: Option<Token>,
}

/// A secret an endpoint's clients must present: never printed, compared in constant time.
#[derive(Clone)]
pub struct Token(Box<str>);

impl Token {
    /// Whether `presented` is this token. The time taken does not depend on where the two
    /// differ (only on their lengths), so a client cannot guess it byte by byte.
    pub fn matches(&self, presented: &str) -> bool {
        use subtle::ConstantTimeEq;
        self.0.as_bytes().ct_eq(presented.as_bytes()).into()
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl ExecSpec {
    /// Checks and compiles the table; `token_env` is read from the process environment.
    pub fn compile(&self) -> Result<Endpoint, SpecError> {
        self.compile_with_env(|name| std::env::var_os(name))
    }

    /// [`ExecSpec::compile`], with `env` standing for the process environment.
    pub fn compile_with_env(
        &self,
        lookup: impl Fn(&str) -> Option<OsString>,
    ) -> Result<Endpoint, SpecError> {
        let name = &self.name;
        let invalid = |why: String| SpecError::Invalid {
            name: name.clone(),
            why,
        };
        if name.is_empty()
            || name.len() > 64
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(SpecError::Name(name.clone()));
        }
        let schema = match self.protocol {
            Protocol::Claude => claude_schema(MAX_PROMPT_BYTES),
            Protocol::Params => {
                let mut params = IndexMap::new();
                for (pname, t) in &self.params {
                    if pname.is_empty() || pname.contains(['{', '}']) {
                        return Err(invalid(format!("bad param name {pname:?}")));
                    }
                    let pattern = match &t.pattern {
                        None => None,
                        Some(p) => Some(Regex::new(p).map_err(|e| SpecError::Pattern {
                            name: name.clone(),
                            param: pname.clone(),
                            source: Box::new(e),
                        })?),
                    };
                    params.insert(
                        pname.clone(),
                        ParamSpec {
                            ty: t.ty,
                            required: t.required,
                            min_bytes: t.min_bytes,
                            max_bytes: t.max_bytes,
                            pattern,
                            choices: t.choices.clone(),
                            min: t.min,
                            max: t.max,
                        },
                    );
                }
                Schema { params }
            }
        };
        let known: Vec<&str> = schema.params.keys().map(String::as_str).collect();
        let template =
            Template::parse(&self.argv, &known).map_err(|source| SpecError::Template {
                name: name.clone(),
                source,
            })?;
        let timeout = match self.timeout {
            None => DEFAULT_TIMEOUT,
            Some(t) if t.is_finite() && t > 0.0 && t <= 7.0 * 86400.0 => Duration::from_secs_f64(t),
            Some(t) => {
                return Err(invalid(format!(
                    "timeout {t} must be in (0, 604800] seconds"
                )));
            }
        };
        if self.max_concurrent == Some(0) {
            return Err(invalid("max_concurrent must be at least 1".into()));
        }
        let max_line_bytes = self.max_line_bytes.unwrap_or(DEFAULT_MAX_LINE);
        if max_line_bytes < 4 {
            return Err(invalid("max_line_bytes must be at least 4".into()));
        }
        let mut env: Vec<String> = BASE_ENV.iter().map(|s| s.to_string()).collect();
        for e in &self.env {
            if e.is_empty() || e.contains('=') || e.contains('\0') {
                return Err(invalid(format!("bad env name {e:?}")));
            }
            if !env.contains(e) {
                env.push(e.clone());
            }
        }
        let token = match &self.token_env {
            None => None,
            Some(var) => Some(read_token(var, &lookup).map_err(invalid)?),
        };
        Ok(Endpoint {
            name: name.clone(),
            protocol: self.protocol,
            schema,
            template,
            timeout,
            max_concurrent: self.max_concurrent,
            env,
            cwd: self.cwd.clone(),
            stdin: self.stdin,
            stderr: self.stderr,
            max_line_bytes,
            token,
        })
    }
}

/// The token in the variable `var`; the error names the variable, never its value.
fn read_token(var: &str, lookup: &impl Fn(&str) -> Option<OsString>) -> Result<Token, String> {
    if var.is_empty() || var.contains('=') || var.contains('\0') {
        return Err(format!("bad token_env name {var:?}"));
    }
    match lookup(var) {
        None => Err(format!(
            "token_env names {var}, which is not set in the server's environment"
        )),
        Some(v) if v.is_empty() => Err(format!(
            "token_env names {var}, which is empty: set it to the token clients must present"
        )),
        Some(v) => match v.into_string() {
            Ok(t) if t.bytes().all(|b| b.is_ascii_graphic()) => Ok(Token(t.into())),
            _ => Err(format!(
                "token_env {var}: the token must be printable ASCII without spaces \
                 (it travels in a URL query or an Authorization header)"
            )),
        },
    }
}

/// Compiles every table; names must be unique.
pub fn compile_all(specs: &[ExecSpec]) -> Result<Vec<Endpoint>, SpecError> {
    let mut out: Vec<Endpoint> = Vec::with_capacity(specs.len());
    for s in specs {
        if out.iter().any(|e| e.name == s.name) {
            return Err(SpecError::Duplicate(s.name.clone()));
        }
        out.push(s.compile()?);
    }
    Ok(out)
}

/// The entries used when the config file has no `[[exec]]` table: `claude` (the original
/// `/ws/claude`, with `--` before the prompt), `echo` (`printf '%s\n' {text}`, no shell) and
/// `demo` (five lines, 0.3 s apart, so a page shows streaming; a fixed `sh` script that reads the
/// text only as `$1`, never as code).
pub fn default_specs() -> Vec<ExecSpec> {
    let text = || {
        let mut p = IndexMap::new();
        p.insert(
            "text".to_owned(),
            ParamTable {
                ty: ParamType::String,
                required: true,
                min_bytes: Some(1),
                max_bytes: Some(1024),
                pattern: None,
                choices: None,
                min: None,
                max: None,
            },
        );
        p
    };
    let base = |name: &str, argv: &[&str]| ExecSpec {
        name: name.to_owned(),
        argv: argv.iter().map(|s| s.to_string()).collect(),
        protocol: Protocol::Params,
        params: IndexMap::new(),
        timeout: None,
        max_concurrent: None,
        env: Vec::new(),
        cwd: None,
        stdin: false,
        stderr: StderrMode::Error,
        max_line_bytes: None,
        token_env: None,
    };
    vec![
        ExecSpec {
            protocol: Protocol::Claude,
            max_concurrent: Some(8),
            ..base(
                "claude",
                &[
                    "claude",
                    "-p",
                    "--output-format",
                    "stream-json",
                    "--verbose",
                    "--",
                    "{prompt}",
                ],
            )
        },
        ExecSpec {
            params: text(),
            timeout: Some(10.0),
            ..base("echo", &["printf", "%s\\n", "{text}"])
        },
        ExecSpec {
            params: text(),
            timeout: Some(30.0),
            stderr: StderrMode::Tagged,
            ..base(
                "demo",
                &[
                    "sh",
                    "-c",
                    "for i in 1 2 3 4 5; do printf '%s: %s\\n' \"$i\" \"$1\"; sleep 0.3; done; \
                     echo 'demo done' >&2",
                    "demo",
                    "{text}",
                ],
            )
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_compile() {
        let eps = compile_all(&default_specs()).unwrap();
        let names: Vec<&str> = eps.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["claude", "echo", "demo"]);
        assert_eq!(eps[0].schema.info(), "send {prompt,meta}");
        assert_eq!(eps[0].timeout, DEFAULT_TIMEOUT);
        let mut v = crate::params::Values::new();
        v.insert("prompt".into(), "--help".into());
        assert_eq!(
            eps[0].template.expand(&v),
            [
                "claude",
                "-p",
                "--output-format",
                "stream-json",
                "--verbose",
                "--",
                "--help"
            ]
        );
    }

    #[test]
    fn bad_tables_are_refused() {
        let mut s = default_specs().remove(1);
        s.argv = vec!["printf".into(), "{nope}".into()];
        assert!(s.compile().unwrap_err().to_string().contains("{nope}"));
        let mut s = default_specs().remove(1);
        s.name = "a/b".into();
        assert!(matches!(s.compile(), Err(SpecError::Name(_))));
        let mut s = default_specs().remove(1);
        if let Some(p) = s.params.get_mut("text") {
            p.pattern = Some("(".into());
        }
        assert!(matches!(s.compile(), Err(SpecError::Pattern { .. })));
        let mut s = default_specs().remove(1);
        s.timeout = Some(-1.0);
        assert!(s.compile().is_err());
        let d = default_specs();
        assert!(matches!(
            compile_all(&[d[1].clone(), d[1].clone()]),
            Err(SpecError::Duplicate(_))
        ));
    }

    #[test]
    fn token_env_is_read_at_compile_time_and_never_printed() {
        let mut s = default_specs().remove(1);
        s.token_env = Some("ECHO_TOKEN".into());
        fn env(v: Option<&'static str>) -> impl Fn(&str) -> Option<OsString> {
            move |k| {
                if k == "ECHO_TOKEN" {
                    v.map(OsString::from)
                } else {
                    None
                }
            }
        }
        let err = s.compile_with_env(env(None)).unwrap_err().to_string();
        assert!(
            err.contains("ECHO_TOKEN") && err.contains("not set"),
            "{err}"
        );
        let err = s.compile_with_env(env(Some(""))).unwrap_err().to_string();
        assert!(err.contains("ECHO_TOKEN") && err.contains("empty"), "{err}");
        let err = s
            .compile_with_env(env(Some("has space")))
            .unwrap_err()
            .to_string();
        assert!(!err.contains("has space"), "{err}");
        let ep = s.compile_with_env(env(Some("s3cret-XYZ"))).unwrap();
        let token = ep.token.as_ref().unwrap();
        assert!(token.matches("s3cret-XYZ"));
        assert!(!token.matches("s3cret-XY"));
        assert!(!token.matches("s3cret-XYZ0"));
        assert!(!token.matches(""));
        assert!(!format!("{ep:?}").contains("s3cret"));
        assert!(default_specs()[1].compile().unwrap().token.is_none());
    }
}
