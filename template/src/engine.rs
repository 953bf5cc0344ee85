//! The two passes of KOTS's template rendering over one text: Go `text/template` with the
//! delimiters `{{repl` … `}}`, then with `repl{{` … `}}` over the output of the first, each parsed
//! and executed with nil data (`kots pkg/template/builder.go RenderTemplate`). Plain `{{ … }}` (Helm)
//! is text to both passes. Parsing and execution are the `gotmpl` crate's; what it does not do as
//! Go does is added here: a call of a function that is not in the function map is an error when the
//! template is *parsed*, naming the file and line, even in a branch that never runs.

use gotmpl::parse::{CommandNode, Expr, ListNode, Node, Parser, PipeNode};
use std::sync::LazyLock;

use gotmpl::{FuncMap, Template, Value};

use crate::functions::{Scope, enter, function_map};

/// The left delimiter of the first pass.
pub const FIRST_PASS_LEFT: &str = "{{repl";
/// The left delimiter of the second pass.
pub const SECOND_PASS_LEFT: &str = "repl{{";
/// The right delimiter of both passes.
pub const RIGHT: &str = "}}";

/// Go's own template functions, always defined.
const GO_BUILTINS: [&str; 20] = [
    "and",
    "or",
    "not",
    "len",
    "index",
    "slice",
    "print",
    "printf",
    "println",
    "html",
    "js",
    "urlquery",
    "call",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "_eval_args",
];

/// A text that cannot be rendered. Every variant names the file (and, for parse problems, the line
/// in the text the failing pass read).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// The template does not parse (unclosed action, bad syntax, undefined variable).
    #[error("{file}:{line}: {message}")]
    Parse {
        /// The file.
        file: String,
        /// The line of the problem, from 1.
        line: usize,
        /// What is wrong, as Go's parser words it.
        message: String,
    },
    /// The template calls a function that does not exist (Go fails at parse time, even when the
    /// call is in a branch that never runs).
    #[error("{file}:{line}: function \"{name}\" not defined")]
    UnknownFunction {
        /// The file.
        file: String,
        /// The line of the call, from 1.
        line: usize,
        /// The function.
        name: String,
    },
    /// Executing the template failed (a function returned an error, a type error, `fail`).
    #[error("{file}: {message}")]
    Execute {
        /// The file.
        file: String,
        /// What went wrong.
        message: String,
    },
}

/// What rendering one text produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The rendered text.
    pub text: String,
    /// Whether either pass found a template action (an untemplated text is returned as it is).
    pub templated: bool,
}

/// Renders `text` (named `file` in errors) with KOTS's two passes; the functions read `scope`.
pub fn render(file: &str, text: &str, scope: &Scope) -> Result<Rendered, RenderError> {
    let has_first = text.contains(FIRST_PASS_LEFT);
    if !has_first && !text.contains(SECOND_PASS_LEFT) {
        return Ok(Rendered {
            text: text.to_string(),
            templated: false,
        });
    }
    let _current = enter(scope);
    let first = if has_first {
        run_pass(file, text, FIRST_PASS_LEFT, &FIRST_PASS)?
    } else {
        text.to_string()
    };
    let second = if first.contains(SECOND_PASS_LEFT) {
        run_pass(file, &first, SECOND_PASS_LEFT, &SECOND_PASS)?
    } else {
        first
    };
    Ok(Rendered {
        text: second,
        templated: true,
    })
}

/// The function appended to every printing action, so values print as Go prints them (gotmpl
/// prints floats with Rust's `Display`: `1000000` where Go prints `1e+06`).
const PRINT: &str = "_windlass_print";

/// The name the parsed text is executed under.
const ROOT: &str = "windlass-root";

/// An empty template with the delimiters `left` … `}}` and every function, cloned for each pass
/// (a clone shares the function map).
fn blank(left: &str) -> Template {
    Template::new(ROOT)
        .delims(left, RIGHT)
        .max_range_iters(MAX_RANGE_ITERATIONS)
        .funcs(function_map().clone())
        .func(PRINT, |args: &[Value]| {
            Ok(Value::String(
                go_print(args.last().unwrap_or(&Value::Nil)).into(),
            ))
        })
}

static FIRST_PASS: LazyLock<Template> = LazyLock::new(|| blank(FIRST_PASS_LEFT));
static SECOND_PASS: LazyLock<Template> = LazyLock::new(|| blank(SECOND_PASS_LEFT));

/// Parses `text` with the delimiters `left` … `}}`, checks every function it calls exists, and
/// executes it with nil data.
fn run_pass(file: &str, text: &str, left: &str, blank: &Template) -> Result<String, RenderError> {
    let (mut tree, mut defines) = Parser::with_name(Some(file), text, left, RIGHT)
        .and_then(Parser::parse)
        .map_err(|error| parse_error(file, error))?;
    let functions = function_map();
    let mut unknown = None;
    find_unknown_function(&tree, functions, &mut unknown);
    for define in &defines {
        find_unknown_function(&define.body, functions, &mut unknown);
    }
    if let Some((line, name)) = unknown {
        return Err(RenderError::UnknownFunction {
            file: file.to_string(),
            line,
            name,
        });
    }
    print_as_go(&mut tree);
    let mut template = blank.clone();
    for define in defines.drain(..) {
        let mut body = define.body;
        print_as_go(&mut body);
        template = template.add_parse_tree(define.name.as_str(), body);
    }
    template = template.add_parse_tree(ROOT, tree);
    let mut output = CappedText::default();
    match template.execute_template_fmt(&mut output, ROOT, &Value::Nil) {
        Ok(()) => Ok(output.text),
        Err(gotmpl::TemplateError::Write) if output.over => Err(RenderError::Execute {
            file: file.to_string(),
            message: format!("the rendered text is over the limit of {MAX_RENDERED_BYTES} bytes"),
        }),
        Err(error) => Err(RenderError::Execute {
            file: file.to_string(),
            message: execution_message(error),
        }),
    }
}

/// The most bytes one pass may produce (a release file is at most 16 MiB too).
pub const MAX_RENDERED_BYTES: usize = 16 * 1024 * 1024;

/// Most `range` iterations one pass may run (over all its loops); also the most elements sprig's
/// `until` and `untilStep` may make.
pub const MAX_RANGE_ITERATIONS: u64 = 1_000_000;

/// Output that refuses to grow past [`MAX_RENDERED_BYTES`].
#[derive(Default)]
struct CappedText {
    text: String,
    over: bool,
}

impl std::fmt::Write for CappedText {
    fn write_str(&mut self, piece: &str) -> std::fmt::Result {
        if self.text.len() + piece.len() > MAX_RENDERED_BYTES {
            self.over = true;
            return Err(std::fmt::Error);
        }
        self.text.push_str(piece);
        Ok(())
    }
}

/// Appends [`PRINT`] to every action that prints (not to assignments).
fn print_as_go(list: &mut ListNode) {
    for node in &mut list.nodes {
        match node {
            Node::List(inner) => print_as_go(inner),
            Node::Action(action) if action.pipe.decl.is_empty() => {
                let position = action.pipe.pos;
                action.pipe.commands.push(CommandNode {
                    pos: position,
                    args: vec![Expr::Identifier(position, PRINT.into())],
                });
            }
            Node::If(branch) | Node::Range(branch) | Node::With(branch) => {
                print_as_go(&mut branch.body);
                if let Some(else_body) = &mut branch.else_body {
                    print_as_go(else_body);
                }
            }
            Node::Define(define) => print_as_go(&mut define.body),
            _ => {}
        }
    }
}

/// A value as Go's `fmt.Print` prints it in a template (nil as `<no value>` at the top).
fn go_print(value: &Value) -> String {
    match value {
        Value::Nil => "<no value>".into(),
        other => go_format(other),
    }
}

fn go_format(value: &Value) -> String {
    match value {
        Value::Nil => "<nil>".into(),
        Value::String(text) => text.to_string(),
        Value::Float(number) => go_float(*number),
        Value::List(items) => {
            let parts: Vec<String> = items.iter().map(go_format).collect();
            format!("[{}]", parts.join(" "))
        }
        Value::Map(entries) => {
            let parts: Vec<String> = entries
                .iter()
                .map(|(key, value)| format!("{key}:{}", go_format(value)))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
        other => other.to_string(),
    }
}

/// Go's `%v` of a float64: the shortest digits, in exponent form when the exponent is below -4
/// or at least 6 (`1e+06`, `7.5`, `1.5e-05`).
pub fn go_float(number: f64) -> String {
    if number.is_nan() {
        return "NaN".into();
    }
    if number.is_infinite() {
        return if number > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let scientific = format!("{number:e}");
    let (mantissa, exponent) = scientific
        .split_once('e')
        .unwrap_or((scientific.as_str(), "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if (-4..6).contains(&exponent) {
        return format!("{number}");
    }
    let sign = if exponent < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exponent.abs())
}

fn parse_error(file: &str, error: gotmpl::TemplateError) -> RenderError {
    match error {
        gotmpl::TemplateError::Parse { line, message, .. }
        | gotmpl::TemplateError::Lex { line, message, .. } => RenderError::Parse {
            file: file.to_string(),
            line,
            message,
        },
        other => RenderError::Parse {
            file: file.to_string(),
            line: 0,
            message: other.to_string(),
        },
    }
}

/// An execution error in words without gotmpl's prefixes.
fn execution_message(error: gotmpl::TemplateError) -> String {
    match error {
        gotmpl::TemplateError::Exec(message) => message,
        other => other.to_string(),
    }
}

/// The first (lowest line) call of a function not in `functions` nor Go's builtins, into `found`.
fn find_unknown_function(
    list: &ListNode,
    functions: &FuncMap,
    found: &mut Option<(usize, String)>,
) {
    for node in &list.nodes {
        match node {
            Node::List(inner) => find_unknown_function(inner, functions, found),
            Node::Text(_) | Node::Break(_) | Node::Continue(_) => {}
            Node::Action(action) => pipe_unknown(&action.pipe, functions, found),
            Node::If(branch) | Node::Range(branch) | Node::With(branch) => {
                pipe_unknown(&branch.pipe, functions, found);
                find_unknown_function(&branch.body, functions, found);
                if let Some(else_body) = &branch.else_body {
                    find_unknown_function(else_body, functions, found);
                }
            }
            Node::Template(call) => {
                if let Some(pipe) = &call.pipe {
                    pipe_unknown(pipe, functions, found);
                }
            }
            Node::Define(define) => find_unknown_function(&define.body, functions, found),
        }
    }
}

fn pipe_unknown(pipe: &PipeNode, functions: &FuncMap, found: &mut Option<(usize, String)>) {
    for command in &pipe.commands {
        for argument in &command.args {
            expr_unknown(argument, functions, found);
        }
    }
}

fn expr_unknown(expr: &Expr, functions: &FuncMap, found: &mut Option<(usize, String)>) {
    match expr {
        Expr::Identifier(position, name) => {
            let name = name.as_str();
            if !functions.contains_key(name) && !GO_BUILTINS.contains(&name) {
                let earlier = found
                    .as_ref()
                    .is_some_and(|(line, _)| *line <= position.line);
                if !earlier {
                    *found = Some((position.line, name.to_string()));
                }
            }
        }
        Expr::Pipe(_, pipe) => pipe_unknown(pipe, functions, found),
        Expr::Chain(_, inner, _) => expr_unknown(inner, functions, found),
        _ => {}
    }
}
