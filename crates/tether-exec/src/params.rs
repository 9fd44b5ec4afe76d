//! Request validation: one JSON text frame checked against an endpoint's parameter schema, so
//! that only well-formed values ever reach an argv.

use indexmap::IndexMap;
use regex::Regex;
use serde::Serialize;
use serde_json::Value;

/// Why a request frame was refused; `Display` is the text of the `{"error": …}` frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The frame is not JSON at all.
    #[error("Bad JSON")]
    BadJson,
    /// The frame is JSON but not a request object (or a binary frame).
    #[error("Invalid request: {0}")]
    Request(String),
    /// One parameter is missing or does not match its schema.
    #[error("Invalid {name}: {why}")]
    Param {
        /// The parameter.
        name: String,
        /// What is wrong with it.
        why: String,
    },
}

/// The JSON type a parameter takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    /// A JSON string, passed as is.
    String,
    /// A JSON integer (no fraction), passed in decimal.
    Integer,
}

/// One parameter's schema, compiled (the pattern is a ready [`Regex`]).
#[derive(Debug, Clone, Serialize)]
pub struct ParamSpec {
    /// Its JSON type.
    #[serde(rename = "type")]
    pub ty: ParamType,
    /// Whether a request must carry it.
    pub required: bool,
    /// Fewest UTF-8 bytes of a string value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_bytes: Option<usize>,
    /// Most UTF-8 bytes of a string value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<usize>,
    /// A regex the whole value must match (anchor it with `^…$`).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_regex")]
    pub pattern: Option<Regex>,
    /// The only values allowed (compared as the decimal text for integers).
    #[serde(rename = "enum", skip_serializing_if = "Option::is_none")]
    pub choices: Option<Vec<String>>,
    /// Smallest integer value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<i64>,
    /// Largest integer value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<i64>,
}

fn ser_regex<S: serde::Serializer>(re: &Option<Regex>, s: S) -> Result<S::Ok, S::Error> {
    match re {
        Some(re) => s.serialize_str(re.as_str()),
        None => s.serialize_none(),
    }
}

impl ParamSpec {
    /// A string parameter with no constraints but presence.
    pub fn string(required: bool) -> ParamSpec {
        ParamSpec {
            ty: ParamType::String,
            required,
            min_bytes: None,
            max_bytes: None,
            pattern: None,
            choices: None,
            min: None,
            max: None,
        }
    }

    /// Checks one present value; returns its argv text.
    fn check(&self, name: &str, v: &Value) -> Result<String, RequestError> {
        let bad = |why: String| RequestError::Param {
            name: name.to_owned(),
            why,
        };
        let text = match (self.ty, v) {
            (ParamType::String, Value::String(s)) => {
                if let Some(min) = self.min_bytes
                    && s.len() < min
                {
                    return Err(bad(if s.is_empty() {
                        "empty".to_owned()
                    } else {
                        format!("shorter than {min} bytes")
                    }));
                }
                if let Some(max) = self.max_bytes
                    && s.len() > max
                {
                    return Err(bad(format!("too long ({} bytes, at most {max})", s.len())));
                }
                s.clone()
            }
            (ParamType::Integer, Value::Number(n)) => {
                let Some(i) = n.as_i64() else {
                    return Err(bad(format!("not an integer: {n}")));
                };
                if let Some(min) = self.min
                    && i < min
                {
                    return Err(bad(format!("{i} is below {min}")));
                }
                if let Some(max) = self.max
                    && i > max
                {
                    return Err(bad(format!("{i} is above {max}")));
                }
                i.to_string()
            }
            (ParamType::String, other) => {
                return Err(bad(format!("not a string ({})", kind(other))));
            }
            (ParamType::Integer, other) => {
                return Err(bad(format!("not an integer ({})", kind(other))));
            }
        };
        if let Some(re) = &self.pattern
            && !re.is_match(&text)
        {
            return Err(bad(format!("does not match {}", re.as_str())));
        }
        if let Some(choices) = &self.choices
            && !choices.contains(&text)
        {
            return Err(bad(format!("not one of {}", choices.join(", "))));
        }
        Ok(text)
    }
}

/// The JSON kind of a value, for error texts.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// An endpoint's parameters, in declaration order (the order of the info frame).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(transparent)]
pub struct Schema {
    /// Name → schema.
    pub params: IndexMap<String, ParamSpec>,
}

/// Validated values by parameter name; optional ones that were absent are absent.
pub type Values = IndexMap<String, String>;

impl Schema {
    /// `send {a,b}`: what the info frame asks for.
    pub fn info(&self) -> String {
        let names: Vec<&str> = self.params.keys().map(String::as_str).collect();
        format!("send {{{}}}", names.join(","))
    }

    /// Parses and validates one text frame. Unknown keys are ignored (as the original did);
    /// parameters are checked in declaration order and the first failure is reported.
    pub fn validate(&self, frame: &str) -> Result<Values, RequestError> {
        let v: Value = serde_json::from_str(frame).map_err(|_| RequestError::BadJson)?;
        let Value::Object(obj) = v else {
            return Err(RequestError::Request(format!(
                "expected a JSON object, got {}",
                kind(&v)
            )));
        };
        let mut out = Values::new();
        for (name, spec) in &self.params {
            match obj.get(name) {
                None | Some(Value::Null) if spec.required => {
                    return Err(RequestError::Param {
                        name: name.clone(),
                        why: "missing".to_owned(),
                    });
                }
                None | Some(Value::Null) => {}
                Some(v) => {
                    out.insert(name.clone(), spec.check(name, v)?);
                }
            }
        }
        Ok(out)
    }
}

/// The `/ws/claude` schema: `prompt` 1..=8192 bytes, optional `meta` matching
/// `^[A-Z0-9_\-]+$`.
pub fn claude_schema(max_prompt_bytes: usize) -> Schema {
    let mut params = IndexMap::new();
    params.insert(
        "prompt".to_owned(),
        ParamSpec {
            min_bytes: Some(1),
            max_bytes: Some(max_prompt_bytes),
            ..ParamSpec::string(true)
        },
    );
    params.insert(
        "meta".to_owned(),
        ParamSpec {
            pattern: Regex::new(r"^[A-Z0-9_\-]+$").ok(),
            ..ParamSpec::string(false)
        },
    );
    Schema { params }
}

/// The claude protocol's full prompt: `prompt + "\n\n[meta:" + meta + "]"` when meta is present
/// and not empty, as the original did.
pub fn claude_prompt(values: &mut Values) {
    if let Some(meta) = values.get("meta").filter(|m| !m.is_empty()).cloned()
        && let Some(p) = values.get_mut("prompt")
    {
        p.push_str("\n\n[meta:");
        p.push_str(&meta);
        p.push(']');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(s: &Schema, frame: &str) -> String {
        s.validate(frame).unwrap_err().to_string()
    }

    #[test]
    fn claude_requests_are_checked_like_the_contract_says() {
        let s = claude_schema(8192);
        assert_eq!(s.info(), "send {prompt,meta}");
        assert_eq!(err(&s, "nope"), "Bad JSON");
        assert_eq!(
            err(&s, "\"hello\""),
            "Invalid request: expected a JSON object, got a string"
        );
        assert_eq!(err(&s, "{\"meta\":\"X\"}"), "Invalid prompt: missing");
        assert_eq!(err(&s, "{\"prompt\":\"\"}"), "Invalid prompt: empty");
        assert_eq!(
            err(&s, "{\"prompt\":5}"),
            "Invalid prompt: not a string (a number)"
        );
        let long = format!("{{\"prompt\":\"{}\"}}", "a".repeat(8193));
        assert_eq!(
            err(&s, &long),
            "Invalid prompt: too long (8193 bytes, at most 8192)"
        );
        // Bytes, not characters: 2731 euro signs are 8193 bytes.
        let euros = format!("{{\"prompt\":\"{}\"}}", "€".repeat(2731));
        assert!(err(&s, &euros).starts_with("Invalid prompt: too long"));
        let ok = format!("{{\"prompt\":\"{}\"}}", "a".repeat(8192));
        assert!(s.validate(&ok).is_ok());
        assert_eq!(
            err(&s, "{\"prompt\":\"hi\",\"meta\":\"bad-meta!\"}"),
            "Invalid meta: does not match ^[A-Z0-9_\\-]+$"
        );
        let mut v = s
            .validate("{\"prompt\":\"hi\",\"meta\":\"TASK-1\",\"extra\":1}")
            .unwrap();
        claude_prompt(&mut v);
        assert_eq!(v["prompt"], "hi\n\n[meta:TASK-1]");
        let mut v = s.validate("{\"prompt\":\"hi\"}").unwrap();
        claude_prompt(&mut v);
        assert_eq!(v["prompt"], "hi");
        assert!(!v.contains_key("meta"));
    }

    #[test]
    fn integers_enums_and_patterns() {
        let mut params = IndexMap::new();
        params.insert(
            "n".to_owned(),
            ParamSpec {
                ty: ParamType::Integer,
                min: Some(1),
                max: Some(10),
                ..ParamSpec::string(true)
            },
        );
        params.insert(
            "mode".to_owned(),
            ParamSpec {
                choices: Some(vec!["fast".into(), "slow".into()]),
                ..ParamSpec::string(false)
            },
        );
        let s = Schema { params };
        assert_eq!(s.info(), "send {n,mode}");
        assert_eq!(s.validate("{\"n\":3}").unwrap()["n"], "3");
        assert_eq!(err(&s, "{\"n\":3.5}"), "Invalid n: not an integer: 3.5");
        assert_eq!(
            err(&s, "{\"n\":\"3\"}"),
            "Invalid n: not an integer (a string)"
        );
        assert_eq!(err(&s, "{\"n\":11}"), "Invalid n: 11 is above 10");
        assert_eq!(
            err(&s, "{\"n\":1,\"mode\":\"x\"}"),
            "Invalid mode: not one of fast, slow"
        );
        assert_eq!(
            s.validate("{\"n\":1,\"mode\":\"slow\"}").unwrap()["mode"],
            "slow"
        );
        assert_eq!(
            err(&s, "[1]"),
            "Invalid request: expected a JSON object, got an array"
        );
    }
}
