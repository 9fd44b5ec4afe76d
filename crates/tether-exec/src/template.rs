//! argv templates: each element is literal text with `{name}` placeholders, filled in with the
//! validated values. No shell ever sees the result, so a value is always exactly one argv
//! element (or part of one) whatever it contains.

use crate::params::Values;

/// One piece of an argv element.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    /// Text kept as is (`{{`/`}}` already unescaped).
    Lit(String),
    /// A parameter's value.
    Var(String),
}

/// A parsed argv template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    elements: Vec<Vec<Piece>>,
}

/// Why a template cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// No program to run.
    #[error("argv is empty")]
    Empty,
    /// The program itself must be fixed, not a placeholder.
    #[error("argv[0] must be literal text, not a placeholder")]
    ProgramPlaceholder,
    /// A `{` without its `}` (or a lone `}`); write `{{`/`}}` for literal braces.
    #[error("argv[{0}]: unbalanced brace (write {{{{ or }}}} for a literal one)")]
    Brace(usize),
    /// `{name}` where no parameter `name` exists.
    #[error("argv[{index}]: unknown placeholder {{{name}}}")]
    Unknown {
        /// Element index.
        index: usize,
        /// Placeholder name.
        name: String,
    },
}

impl Template {
    /// Parses `argv`; every placeholder must name one of `known`.
    pub fn parse(argv: &[String], known: &[&str]) -> Result<Template, TemplateError> {
        if argv.is_empty() {
            return Err(TemplateError::Empty);
        }
        let mut elements = Vec::with_capacity(argv.len());
        for (index, el) in argv.iter().enumerate() {
            let pieces = parse_element(el).ok_or(TemplateError::Brace(index))?;
            for p in &pieces {
                if let Piece::Var(name) = p {
                    if index == 0 {
                        return Err(TemplateError::ProgramPlaceholder);
                    }
                    if !known.contains(&name.as_str()) {
                        return Err(TemplateError::Unknown {
                            index,
                            name: name.clone(),
                        });
                    }
                }
            }
            elements.push(pieces);
        }
        Ok(Template { elements })
    }

    /// The program (argv\[0\]), for messages.
    pub fn program(&self) -> String {
        self.elements
            .first()
            .map(|e| render(e, &Values::new()))
            .unwrap_or_default()
    }

    /// The argv for these values. An element that is exactly one placeholder whose optional
    /// parameter was not given is left out; inside a longer element it becomes empty text.
    pub fn expand(&self, values: &Values) -> Vec<String> {
        let mut out = Vec::with_capacity(self.elements.len());
        for el in &self.elements {
            if let [Piece::Var(name)] = el.as_slice()
                && !values.contains_key(name)
            {
                continue;
            }
            out.push(render(el, values));
        }
        out
    }
}

fn render(el: &[Piece], values: &Values) -> String {
    let mut s = String::new();
    for p in el {
        match p {
            Piece::Lit(t) => s.push_str(t),
            Piece::Var(n) => s.push_str(values.get(n).map_or("", String::as_str)),
        }
    }
    s
}

/// Splits one element into pieces; `None` on an unbalanced brace.
fn parse_element(el: &str) -> Option<Vec<Piece>> {
    let mut pieces = Vec::new();
    let mut lit = String::new();
    let mut chars = el.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                lit.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                lit.push('}');
            }
            '{' => {
                let mut name = String::new();
                loop {
                    match chars.next()? {
                        '}' => break,
                        '{' => return None,
                        c => name.push(c),
                    }
                }
                if name.is_empty() {
                    return None;
                }
                if !lit.is_empty() {
                    pieces.push(Piece::Lit(std::mem::take(&mut lit)));
                }
                pieces.push(Piece::Var(name));
            }
            '}' => return None,
            c => lit.push(c),
        }
    }
    if !lit.is_empty() || pieces.is_empty() {
        pieces.push(Piece::Lit(lit));
    }
    Some(pieces)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn placeholders_become_whole_argv_elements_and_never_split() {
        let t = Template::parse(
            &argv(&["claude", "-p", "--", "{prompt}", "x={n}{{}}", ""]),
            &["prompt", "n"],
        )
        .unwrap();
        let mut v = Values::new();
        v.insert("prompt".into(), "-rf; $(rm -rf /) \"a b\"".into());
        v.insert("n".into(), "7".into());
        assert_eq!(
            t.expand(&v),
            argv(&[
                "claude",
                "-p",
                "--",
                "-rf; $(rm -rf /) \"a b\"",
                "x=7{}",
                ""
            ])
        );
        assert_eq!(t.program(), "claude");
        // Absent optional: a lone placeholder disappears, an embedded one is empty.
        let v = Values::new();
        assert_eq!(t.expand(&v), argv(&["claude", "-p", "--", "x={}", ""]));
    }

    #[test]
    fn bad_templates_are_refused() {
        assert_eq!(Template::parse(&[], &[]), Err(TemplateError::Empty));
        assert_eq!(
            Template::parse(&argv(&["{p}"]), &["p"]),
            Err(TemplateError::ProgramPlaceholder)
        );
        assert_eq!(
            Template::parse(&argv(&["a", "{p"]), &["p"]),
            Err(TemplateError::Brace(1))
        );
        assert_eq!(
            Template::parse(&argv(&["a", "p}"]), &["p"]),
            Err(TemplateError::Brace(1))
        );
        assert_eq!(
            Template::parse(&argv(&["a", "{}"]), &["p"]),
            Err(TemplateError::Brace(1))
        );
        assert_eq!(
            Template::parse(&argv(&["a", "{q}"]), &["p"]),
            Err(TemplateError::Unknown {
                index: 1,
                name: "q".into()
            })
        );
    }
}
