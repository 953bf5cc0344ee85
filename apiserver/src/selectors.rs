//! Label selectors, lexed and parsed as `k8s.io/apimachinery/pkg/labels` does (`=`, `==`,
//! `!=`, `in`, `notin`, exists, `!key`, `>`, `<`, and its error messages), and field selectors
//! (`label=value`, `label==value`, `label!=value`) limited to the field labels the real server
//! accepts per kind: `metadata.name` and `metadata.namespace` for most, a few more for the kinds
//! that register a field label conversion (Pods, Nodes, Namespaces, Secrets, Services, Events,
//! ReplicationControllers, Jobs, StatefulSets) and a CRD version's `selectableFields`, for list,
//! watch and deletecollection.

use serde_json::Value;

use crate::catalog::ResourceType;
use crate::error::ApiError;

#[derive(Debug, Clone)]
enum Requirement {
    /// `=`, `==` and `in`: the label is set to one of the values.
    In(String, Vec<String>),
    /// `!=` and `notin`: the label is unset or set to none of the values.
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
    /// `>`: the label is an integer greater than this.
    GreaterThan(String, i64),
    /// `<`: the label is an integer less than this.
    LessThan(String, i64),
}

/// A parsed label selector (all requirements must hold).
#[derive(Debug, Clone, Default)]
pub struct LabelSelector(Vec<Requirement>);

/// A token of the label selector grammar, as `k8s.io/apimachinery/pkg/labels` lexes it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Identifier(String),
    In,
    NotIn,
    Equals,
    DoubleEquals,
    NotEquals,
    DoesNotExist,
    GreaterThan,
    LessThan,
    OpenParenthesis,
    ClosedParenthesis,
    Comma,
    End,
}

impl Token {
    /// The text the token was read from, as the parser's errors quote it.
    fn literal(&self) -> &str {
        match self {
            Token::Identifier(text) => text,
            Token::In => "in",
            Token::NotIn => "notin",
            Token::Equals => "=",
            Token::DoubleEquals => "==",
            Token::NotEquals => "!=",
            Token::DoesNotExist => "!",
            Token::GreaterThan => ">",
            Token::LessThan => "<",
            Token::OpenParenthesis => "(",
            Token::ClosedParenthesis => ")",
            Token::Comma => ",",
            Token::End => "",
        }
    }

    /// The token as read where a value may stand: `in` and `notin` are values there.
    fn as_value(&self) -> Token {
        match self {
            Token::In | Token::NotIn => Token::Identifier(self.literal().to_owned()),
            other => other.clone(),
        }
    }
}

fn is_special_symbol(character: char) -> bool {
    matches!(character, '=' | '!' | '(' | ')' | ',' | '>' | '<')
}

fn special_symbol(text: &str) -> Option<Token> {
    Some(match text {
        "=" => Token::Equals,
        "==" => Token::DoubleEquals,
        "!=" => Token::NotEquals,
        "!" => Token::DoesNotExist,
        ">" => Token::GreaterThan,
        "<" => Token::LessThan,
        "(" => Token::OpenParenthesis,
        ")" => Token::ClosedParenthesis,
        "," => Token::Comma,
        _ => return None,
    })
}

/// Splits a selector into tokens: runs of special symbols into the longest operators they
/// start with, everything between whitespace and symbols into identifiers (or `in`/`notin`).
fn lex(text: &str) -> Vec<Token> {
    let characters: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut position = 0;
    while position < characters.len() {
        let character = characters[position];
        if character.is_ascii_whitespace() {
            position += 1;
        } else if is_special_symbol(character) {
            let mut longest = (special_symbol(&character.to_string()), position + 1);
            let mut buffer = character.to_string();
            for (offset, next) in characters[position + 1..].iter().enumerate() {
                if !is_special_symbol(*next) {
                    break;
                }
                buffer.push(*next);
                match special_symbol(&buffer) {
                    Some(token) => longest = (Some(token), position + offset + 2),
                    None => break,
                }
            }
            // Every single symbol is a token, so a run always starts with one.
            tokens.push(longest.0.expect("a special symbol is a token"));
            position = longest.1;
        } else {
            let start = position;
            while position < characters.len()
                && !characters[position].is_ascii_whitespace()
                && !is_special_symbol(characters[position])
            {
                position += 1;
            }
            let word: String = characters[start..position].iter().collect();
            tokens.push(match word.as_str() {
                "in" => Token::In,
                "notin" => Token::NotIn,
                _ => Token::Identifier(word),
            });
        }
    }
    tokens.push(Token::End);
    tokens
}

/// The recursive-descent parser of `k8s.io/apimachinery/pkg/labels`, with its error messages.
struct Parser {
    tokens: Vec<Token>,
    position: usize,
}

impl Parser {
    fn lookahead(&self) -> &Token {
        self.tokens.get(self.position).unwrap_or(&Token::End)
    }

    fn consume(&mut self) -> Token {
        let token = self.lookahead().clone();
        if self.position < self.tokens.len() {
            self.position += 1;
        }
        token
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, String> {
        let mut requirements = Vec::new();
        loop {
            match self.lookahead().as_value() {
                Token::Identifier(_) | Token::DoesNotExist => {
                    let requirement = self
                        .requirement()
                        .map_err(|why| format!("unable to parse requirement: {why}"))?;
                    requirements.push(requirement);
                    match self.consume().as_value() {
                        Token::End => return Ok(requirements),
                        Token::Comma => {
                            let next = self.lookahead().as_value();
                            if !matches!(next, Token::Identifier(_) | Token::DoesNotExist) {
                                return Err(format!(
                                    "found '{}', expected: identifier after ','",
                                    next.literal()
                                ));
                            }
                        }
                        other => {
                            return Err(format!(
                                "found '{}', expected: ',' or 'end of string'",
                                other.literal()
                            ));
                        }
                    }
                }
                Token::End => return Ok(requirements),
                other => {
                    return Err(format!(
                        "found '{}', expected: !, identifier, or 'end of string'",
                        other.literal()
                    ));
                }
            }
        }
    }

    fn requirement(&mut self) -> Result<Requirement, String> {
        let mut token = self.consume().as_value();
        let negated = token == Token::DoesNotExist;
        if negated {
            token = self.consume().as_value();
        }
        let Token::Identifier(key) = token else {
            return Err(format!("found '{}', expected: identifier", token.literal()));
        };
        let bare = matches!(self.lookahead().as_value(), Token::End | Token::Comma);
        if negated {
            return Ok(Requirement::NotExists(key));
        }
        if bare {
            return Ok(Requirement::Exists(key));
        }
        let operator = self.consume();
        Ok(match operator {
            Token::In => Requirement::In(key, self.values()?),
            Token::NotIn => Requirement::NotIn(key, self.values()?),
            Token::Equals | Token::DoubleEquals => Requirement::In(key, vec![self.exact_value()?]),
            Token::NotEquals => Requirement::NotIn(key, vec![self.exact_value()?]),
            Token::GreaterThan | Token::LessThan => {
                let value = self.exact_value()?;
                let bound = value.parse::<i64>().map_err(|_| {
                    format!(
                        "values[0][{key}]: Invalid value: {:?}: for 'Gt', 'Lt' operators, the value must be an integer",
                        value
                    )
                })?;
                if operator == Token::GreaterThan {
                    Requirement::GreaterThan(key, bound)
                } else {
                    Requirement::LessThan(key, bound)
                }
            }
            other => {
                return Err(format!(
                    "found '{}', expected: in, notin, =, ==, !=, gt, lt",
                    other.literal()
                ));
            }
        })
    }

    fn exact_value(&mut self) -> Result<String, String> {
        if matches!(self.lookahead().as_value(), Token::End | Token::Comma) {
            return Ok(String::new());
        }
        match self.consume().as_value() {
            Token::Identifier(value) => Ok(value),
            other => Err(format!("found '{}', expected: identifier", other.literal())),
        }
    }

    fn values(&mut self) -> Result<Vec<String>, String> {
        let open = self.consume().as_value();
        if open != Token::OpenParenthesis {
            return Err(format!("found '{}' expected: '('", open.literal()));
        }
        match self.lookahead().as_value() {
            Token::Identifier(_) | Token::Comma => {
                let values = self.identifiers()?;
                let close = self.consume().as_value();
                if close != Token::ClosedParenthesis {
                    return Err(format!("found '{}', expected: ')'", close.literal()));
                }
                Ok(values)
            }
            Token::ClosedParenthesis => {
                self.consume();
                Ok(vec![String::new()])
            }
            other => Err(format!(
                "found '{}', expected: ',', ')' or identifier",
                other.literal()
            )),
        }
    }

    fn identifiers(&mut self) -> Result<Vec<String>, String> {
        let mut values: Vec<String> = Vec::new();
        loop {
            match self.consume().as_value() {
                Token::Identifier(value) => {
                    values.push(value);
                    match self.lookahead().as_value() {
                        Token::Comma => {}
                        Token::ClosedParenthesis => return Ok(values),
                        other => {
                            return Err(format!(
                                "found '{}', expected: ',' or ')'",
                                other.literal()
                            ));
                        }
                    }
                }
                Token::Comma => {
                    // An empty value: `(,a)`, `(a,,b)`, `(a,)`.
                    if values.is_empty() {
                        values.push(String::new());
                    }
                    match self.lookahead().as_value() {
                        Token::ClosedParenthesis => {
                            values.push(String::new());
                            return Ok(values);
                        }
                        Token::Comma => {
                            self.consume();
                            values.push(String::new());
                        }
                        _ => {}
                    }
                }
                other => {
                    return Err(format!(
                        "found '{}', expected: ',', or identifier",
                        other.literal()
                    ));
                }
            }
        }
    }
}

impl LabelSelector {
    /// Parses `?labelSelector=` by the real grammar (`k8s.io/apimachinery/pkg/labels`):
    /// `=`, `==`, `!=`, `in`, `notin`, exists, `!key`, `>` and `<`.
    ///
    /// # Errors
    ///
    /// 400 BadRequest with the real parser's message (`found '=', expected: ',' or 'end of
    /// string'`, `unable to parse requirement: ...`) when it does not parse. Keys and values
    /// are not checked against the label syntax.
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        let mut parser = Parser {
            tokens: lex(text),
            position: 0,
        };
        parser.parse().map(Self).map_err(ApiError::bad_request)
    }

    /// Whether the object's labels satisfy the selector.
    pub fn matches(&self, object: &Value) -> bool {
        let label = |key: &str| {
            object
                .pointer("/metadata/labels")
                .and_then(|labels| labels.get(key))
                .and_then(Value::as_str)
        };
        let integer = |key: &str| label(key).and_then(|value| value.parse::<i64>().ok());
        self.0.iter().all(|requirement| match requirement {
            Requirement::In(key, values) => {
                label(key).is_some_and(|v| values.iter().any(|x| x == v))
            }
            Requirement::NotIn(key, values) => {
                !label(key).is_some_and(|v| values.iter().any(|x| x == v))
            }
            Requirement::Exists(key) => label(key).is_some(),
            Requirement::NotExists(key) => label(key).is_none(),
            Requirement::GreaterThan(key, bound) => integer(key).is_some_and(|v| v > *bound),
            Requirement::LessThan(key, bound) => integer(key).is_some_and(|v| v < *bound),
        })
    }
}

/// One `label=value` or `label!=value` term of a field selector, by where its value is read.
#[derive(Debug, Clone)]
struct FieldTerm {
    equal: bool,
    value: String,
    /// The JSON pointer of the field the label selects.
    pointer: String,
    /// What an absent field reads as (`"0"`, `"false"` for numbers and booleans Go always has).
    absent: &'static str,
}

/// A parsed field selector.
#[derive(Debug, Clone, Default)]
pub struct FieldSelector(Vec<FieldTerm>);

/// How the real server refuses a field label a kind does not support: each kind's registered
/// field label conversion words it its own way.
enum FieldLabels {
    /// Kinds with no conversion of their own: `metadata.name` and `metadata.namespace` only.
    Default,
    /// Core kinds' and custom resources' conversions: `field label not supported: <label>`.
    Listed(Vec<String>),
    /// batch/v1 Job's: `field label "<label>" not supported for batchv1.Job`.
    Job,
    /// apps/v1 StatefulSet's: `field label not supported for appsv1.StatefulSet: <label>`.
    StatefulSet,
}

fn field_labels(t: &ResourceType) -> FieldLabels {
    let listed = |labels: &[&str]| {
        let mut all: Vec<String> = labels.iter().map(|label| (*label).to_owned()).collect();
        all.extend(["metadata.name", "metadata.namespace"].map(str::to_owned));
        FieldLabels::Listed(all)
    };
    if t.crd.is_some() {
        let mut labels = vec!["metadata.name".to_owned()];
        if t.namespaced {
            labels.push("metadata.namespace".to_owned());
        }
        labels.extend(t.selectable_fields.iter().cloned());
        return FieldLabels::Listed(labels);
    }
    match (t.group.as_str(), t.kind.as_str()) {
        ("", "Pod") => listed(&[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.podIPs",
            "status.nominatedNodeName",
            "spec.host",
        ]),
        // Nodes and Namespaces list no `metadata.namespace`.
        ("", "Node") => FieldLabels::Listed(vec![
            "metadata.name".to_owned(),
            "spec.unschedulable".to_owned(),
        ]),
        ("", "Namespace") => {
            FieldLabels::Listed(vec!["metadata.name".to_owned(), "status.phase".to_owned()])
        }
        ("", "ReplicationController") => listed(&["status.replicas"]),
        // Not verified against apps/v1's registered conversions; accepted as the extensions
        // group's ReplicaSet accepted it.
        ("apps", "ReplicaSet") => listed(&["status.replicas"]),
        ("", "Event") => listed(&[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ]),
        ("", "Secret") => listed(&["type"]),
        ("", "Service") => listed(&["spec.clusterIP", "spec.type"]),
        ("batch", "Job") => FieldLabels::Job,
        ("apps", "StatefulSet") => FieldLabels::StatefulSet,
        _ => FieldLabels::Default,
    }
}

/// Whether `t` supports the field label, and if not the real server's message.
fn check_field_label(t: &ResourceType, label: &str) -> Result<(), String> {
    let metadata = matches!(label, "metadata.name" | "metadata.namespace");
    match field_labels(t) {
        FieldLabels::Default if metadata => Ok(()),
        FieldLabels::Default => Err(format!(
            "{label:?} is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
        )),
        FieldLabels::Listed(labels) if labels.iter().any(|known| known == label) => Ok(()),
        FieldLabels::Listed(_) => Err(format!("field label not supported: {label}")),
        FieldLabels::Job if metadata || label == "status.successful" => Ok(()),
        FieldLabels::Job => Err(format!(
            "field label {label:?} not supported for batchv1.Job"
        )),
        FieldLabels::StatefulSet if metadata || label == "status.successful" => Ok(()),
        FieldLabels::StatefulSet => Err(format!(
            "field label not supported for appsv1.StatefulSet: {label}"
        )),
    }
}

/// Where a supported label's value is read, and what it reads as when absent: most labels
/// name their field's path; a few name another field, or one Go always serializes.
fn field_source(t: &ResourceType, label: &str) -> (String, &'static str) {
    let path = |dotted: &str| format!("/{}", dotted.replace('.', "/"));
    match (t.group.as_str(), t.kind.as_str(), label) {
        ("", "Pod", "spec.host") => (path("spec.nodeName"), ""),
        ("", "Pod", "spec.hostNetwork") => (path(label), "false"),
        ("", "Node", "spec.unschedulable") => (path(label), "false"),
        ("", "Event", "source") => (path("source.component"), ""),
        ("batch", "Job", "status.successful") => (path("status.succeeded"), "0"),
        ("apps", "StatefulSet", "status.successful") => (path("status.succeeded"), "0"),
        (_, _, "status.replicas") => (path(label), "0"),
        _ => (path(label), ""),
    }
}

impl FieldSelector {
    /// Parses `?fieldSelector=` for a list or watch of `t`.
    ///
    /// # Errors
    ///
    /// 400 BadRequest when a term is not `label=value`, `label==value` or `label!=value`, or
    /// names a field label `t` does not support (worded as the kind's conversion words it).
    pub fn parse(text: &str, t: &ResourceType) -> Result<Self, ApiError> {
        let mut terms = Vec::new();
        for term in split_terms(text) {
            let (label, equal, value) = if let Some((label, value)) = term.split_once("!=") {
                (label, false, value)
            } else if let Some((label, value)) = term.split_once("==") {
                (label, true, value)
            } else if let Some((label, value)) = term.split_once('=') {
                (label, true, value)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: '{text}'; can't understand '{term}'"
                )));
            };
            let label = label.trim();
            check_field_label(t, label).map_err(ApiError::bad_request)?;
            let (pointer, absent) = field_source(t, label);
            terms.push(FieldTerm {
                equal,
                value: value.trim().to_owned(),
                pointer,
                absent,
            });
        }
        Ok(Self(terms))
    }

    /// Whether the object's fields satisfy the selector.
    pub fn matches(&self, object: &Value) -> bool {
        self.0.iter().all(|term| {
            let actual = match object.pointer(&term.pointer) {
                Some(Value::String(text)) => text.clone(),
                Some(Value::Null) | None => term.absent.to_owned(),
                Some(other) => other.to_string(),
            };
            (actual == term.value) == term.equal
        })
    }
}

/// Splits on commas that are not inside parentheses.
fn split_terms(text: &str) -> Vec<String> {
    let mut terms = Vec::new();
    let mut depth = 0;
    let mut current = String::new();
    for character in text.chars() {
        match character {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                terms.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(character);
    }
    terms.push(current);
    terms
        .into_iter()
        .map(|term| term.trim().to_owned())
        .filter(|term| !term.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_selectors_follow_the_api_grammar() {
        let object = json!({"metadata": {"labels": {"app": "web", "tier": "front"}}});
        for (selector, expected) in [
            ("app=web", true),
            ("app==web,tier!=back", true),
            ("app in (web, api),!missing", true),
            ("tier notin (front)", false),
            ("missing", false),
            ("app", true),
        ] {
            assert_eq!(
                LabelSelector::parse(selector).unwrap().matches(&object),
                expected,
                "{selector}"
            );
        }
        assert!(LabelSelector::parse("app in web").is_err());
    }

    fn builtin(kind: &str) -> ResourceType {
        crate::catalog::Catalog::builtin()
            .types()
            .iter()
            .find(|t| t.kind == kind)
            .cloned()
            .expect("a built-in kind")
    }

    #[test]
    fn label_selectors_refuse_what_the_real_parser_refuses() {
        for (selector, message) in [
            ("a=b=c", "found '=', expected: ',' or 'end of string'"),
            ("a=b,", "found '', expected: identifier after ','"),
            (
                "=b",
                "found '=', expected: !, identifier, or 'end of string'",
            ),
            (
                "a in (b",
                "unable to parse requirement: found '', expected: ',' or ')'",
            ),
            (
                "a=!b",
                "unable to parse requirement: found '!', expected: identifier",
            ),
        ] {
            let error = LabelSelector::parse(selector).unwrap_err();
            assert_eq!(
                (error.code, error.message.as_str()),
                (400, message),
                "{selector}"
            );
        }
        let object = json!({"metadata": {"labels": {"replicas": "3", "in": "notin"}}});
        for (selector, expected) in [
            ("replicas>2", true),
            ("replicas<3", false),
            ("in=notin", true),
            ("in in (notin)", true),
            ("x in (,a)", false),
            ("x notin (a,)", true),
        ] {
            assert_eq!(
                LabelSelector::parse(selector).unwrap().matches(&object),
                expected,
                "{selector}"
            );
        }
    }

    #[test]
    fn field_selectors_allow_only_the_kinds_labels() {
        let config_map = builtin("ConfigMap");
        let object = json!({"metadata": {"name": "a", "namespace": "ns"}});
        assert!(
            FieldSelector::parse("metadata.name=a,metadata.namespace!=x", &config_map)
                .unwrap()
                .matches(&object)
        );
        assert!(
            !FieldSelector::parse("metadata.name=b", &config_map)
                .unwrap()
                .matches(&object)
        );
        assert_eq!(
            FieldSelector::parse("data.k=v", &config_map)
                .unwrap_err()
                .message,
            "\"data.k\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
        );
        let pod = builtin("Pod");
        let scheduled = json!({"spec": {"nodeName": "n1"}, "status": {"phase": "Running"}});
        for (selector, expected) in [
            ("spec.nodeName=n1,status.phase=Running", true),
            ("spec.host=n1", true),
            ("spec.hostNetwork=false", true),
            ("status.phase!=Running", false),
        ] {
            assert_eq!(
                FieldSelector::parse(selector, &pod)
                    .unwrap()
                    .matches(&scheduled),
                expected,
                "{selector}"
            );
        }
        assert_eq!(
            FieldSelector::parse("spec.containers=x", &pod)
                .unwrap_err()
                .message,
            "field label not supported: spec.containers"
        );
        let job = builtin("Job");
        assert!(
            FieldSelector::parse("status.successful=0", &job)
                .unwrap()
                .matches(&json!({"status": {}}))
        );
        assert_eq!(
            FieldSelector::parse("spec.parallelism=1", &job)
                .unwrap_err()
                .message,
            "field label \"spec.parallelism\" not supported for batchv1.Job"
        );
        assert!(FieldSelector::parse("metadata.namespace=x", &builtin("Namespace")).is_err());
    }
}
