//! Readiness, as pure functions over objects read from the server: CRDs `Established`, Namespaces
//! `Active`, the KOTS resource states of `statusInformers` and `kots.io/wait-for-ready` (section
//! 1.6 of the reference notes: Deployment, StatefulSet, DaemonSet, Service — from its
//! EndpointSlices, not the deprecated Endpoints —, Ingress from its backend Services' endpoints
//! and its own load-balancer address, PVC), the `kots.io/wait-for-properties` jsonpath values
//! (client-go's path syntax, rewritten into the RFC 9535 one `jsonpath-rust` reads, and checked so
//! that a path that cannot be read is refused rather than waited for), and the informer syntax
//! `[namespace/]kind/name`.

use serde_json::Value;

use crate::events::AppState;

fn int(object: &Value, pointer: &str) -> Option<i64> {
    object.pointer(pointer).and_then(Value::as_i64)
}

fn generation_observed(object: &Value) -> bool {
    match (
        int(object, "/metadata/generation"),
        int(object, "/status/observedGeneration"),
    ) {
        (Some(generation), Some(observed)) => generation == observed,
        (Some(_), None) => false,
        _ => true,
    }
}

/// Whether a condition of type `kind` is `True`.
pub fn condition_true(object: &Value, kind: &str) -> bool {
    object
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|conditions| {
            conditions.iter().any(|condition| {
                condition.get("type").and_then(Value::as_str) == Some(kind)
                    && condition.get("status").and_then(Value::as_str) == Some("True")
            })
        })
}

/// A CustomResourceDefinition is `Established`.
pub fn crd_established(object: &Value) -> bool {
    condition_true(object, "Established")
}

/// A Namespace is `Active`.
pub fn namespace_active(object: &Value) -> bool {
    object.pointer("/status/phase").and_then(Value::as_str) == Some("Active")
}

/// A Deployment's state.
pub fn deployment_state(object: &Value) -> AppState {
    if !generation_observed(object) {
        return AppState::Updating;
    }
    let desired = int(object, "/spec/replicas").unwrap_or(1);
    let ready = int(object, "/status/readyReplicas").unwrap_or(0);
    if ready >= desired {
        if int(object, "/status/unavailableReplicas").unwrap_or(0) > 0 {
            return AppState::Updating;
        }
        return AppState::Ready;
    }
    if ready > 0 {
        AppState::Degraded
    } else {
        AppState::Unavailable
    }
}

/// Whether a workload's pods run two revisions at once, read from its status: some pods `updated`
/// to the newest revision and some not. KOTS asks the same of the owned pods' revision labels
/// (`controller-revision-hash`); the counts say it without listing the pods. Pods that all run one
/// revision are not updating, even when that revision is not the newest (an `OnDelete` update
/// strategy, a partition holding every pod back): no pod differs.
fn pods_on_two_revisions(updated: Option<i64>, pods: i64) -> bool {
    updated.is_some_and(|updated| updated > 0 && updated < pods)
}

/// A StatefulSet's state.
pub fn statefulset_state(object: &Value) -> AppState {
    if !generation_observed(object) {
        return AppState::Updating;
    }
    if pods_on_two_revisions(
        int(object, "/status/updatedReplicas"),
        int(object, "/status/replicas").unwrap_or(0),
    ) {
        return AppState::Updating;
    }
    let desired = int(object, "/spec/replicas").unwrap_or(1);
    let ready = int(object, "/status/readyReplicas").unwrap_or(0);
    if ready >= desired {
        AppState::Ready
    } else if ready > 0 {
        AppState::Degraded
    } else {
        AppState::Unavailable
    }
}

/// A DaemonSet's state.
pub fn daemonset_state(object: &Value) -> AppState {
    if !generation_observed(object) {
        return AppState::Updating;
    }
    let desired = int(object, "/status/desiredNumberScheduled").unwrap_or(0);
    let scheduled = int(object, "/status/currentNumberScheduled").unwrap_or(0);
    let ready = int(object, "/status/numberReady").unwrap_or(0);
    if pods_on_two_revisions(int(object, "/status/updatedNumberScheduled"), scheduled) {
        return AppState::Updating;
    }
    if int(object, "/status/numberUnavailable").unwrap_or(0) > 0
        || int(object, "/status/numberMisscheduled").unwrap_or(0) > 0
        || scheduled != desired
    {
        return AppState::Degraded;
    }
    if ready >= desired {
        AppState::Ready
    } else if ready > 0 {
        AppState::Degraded
    } else {
        AppState::Unavailable
    }
}

/// A PersistentVolumeClaim's state.
pub fn pvc_state(object: &Value) -> AppState {
    if object.pointer("/status/phase").and_then(Value::as_str) == Some("Bound") {
        AppState::Ready
    } else {
        AppState::Unavailable
    }
}

/// Whether a Service is a LoadBalancer without an address yet.
fn load_balancer_pending(service: &Value) -> bool {
    service.pointer("/spec/type").and_then(Value::as_str) == Some("LoadBalancer")
        && service
            .pointer("/spec/externalIPs")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
        && service
            .pointer("/status/loadBalancer/ingress")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
}

/// A Service's state from its EndpointSlices (`kubernetes.io/service-name=<name>`): per port,
/// no ready endpoint is unavailable and some not-ready ones degraded; a LoadBalancer without an
/// address is unavailable. A Service without a selector (endpoints managed by hand) is ready when
/// it has no slices either. Terminating endpoints are left out, as the core `Endpoints` KOTS
/// reads leaves out terminating pods (a slice lists them, not ready, during every rollout).
pub fn service_state(service: &Value, slices: &[Value]) -> AppState {
    endpoints_state(service, slices).min(if load_balancer_pending(service) {
        AppState::Unavailable
    } else {
        AppState::Ready
    })
}

/// [`service_state`] without the LoadBalancer check: what KOTS reads of an Ingress's backend.
pub fn endpoints_state(service: &Value, slices: &[Value]) -> AppState {
    let mut state = AppState::Ready;
    if service.pointer("/spec/type").and_then(Value::as_str) == Some("ExternalName") {
        return AppState::Ready;
    }
    let has_selector = service
        .pointer("/spec/selector")
        .and_then(Value::as_object)
        .is_some_and(|selector| !selector.is_empty());
    if has_selector {
        let endpoints: Vec<&Value> = slices
            .iter()
            .filter_map(|slice| slice.get("endpoints").and_then(Value::as_array))
            .flatten()
            .filter(|endpoint| {
                endpoint
                    .pointer("/conditions/terminating")
                    .and_then(Value::as_bool)
                    != Some(true)
            })
            .collect();
        let ready = |endpoint: &&Value| {
            endpoint
                .pointer("/conditions/ready")
                .and_then(Value::as_bool)
                .unwrap_or(true)
        };
        let ready_count = endpoints.iter().filter(|endpoint| ready(endpoint)).count();
        state = if ready_count == 0 {
            AppState::Unavailable
        } else if ready_count < endpoints.len() {
            AppState::Degraded
        } else {
            AppState::Ready
        };
    }
    state
}

/// An Ingress's state from its backend Services' endpoints (`backends`, each
/// [`endpoints_state`]'s answer with the Service, or `None` when it does not exist) and, when a
/// backend is a LoadBalancer, the Ingress's own address: KOTS asks the Ingress for the address,
/// not the Service.
pub fn ingress_state(ingress: &Value, backends: &[(AppState, Option<Value>)]) -> AppState {
    let mut state = AppState::Ready;
    let mut behind_a_balancer = false;
    for (backend_state, service) in backends {
        state = state.min(*backend_state);
        behind_a_balancer |= service.as_ref().is_some_and(|service| {
            service.pointer("/spec/type").and_then(Value::as_str) == Some("LoadBalancer")
        });
    }
    let addressed = ingress
        .pointer("/status/loadBalancer/ingress")
        .and_then(Value::as_array)
        .is_some_and(|addresses| !addresses.is_empty());
    if behind_a_balancer && !addressed {
        state = state.min(AppState::Unavailable);
    }
    state
}

/// The backend Service names of an Ingress (default backend and every rule path).
pub fn ingress_backends(ingress: &Value) -> Vec<String> {
    let mut names = Vec::new();
    let mut add = |backend: Option<&Value>| {
        if let Some(name) = backend
            .and_then(|backend| backend.pointer("/service/name"))
            .and_then(Value::as_str)
            && !names.iter().any(|known| known == name)
        {
            names.push(name.to_string());
        }
    };
    add(ingress.pointer("/spec/defaultBackend"));
    for rule in ingress
        .pointer("/spec/rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for path in rule
            .pointer("/http/paths")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            add(path.get("backend"));
        }
    }
    names
}

/// One `kots.io/wait-for-properties` pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertyWait {
    /// The path, e.g. `.status.phase`.
    pub path: String,
    /// The value it must have, compared as text.
    pub value: String,
}

/// Reads `<path>=<value>[,...]`; pairs without `=` are skipped, as KOTS does. Paths are not
/// checked: [`read_property_waits`] also refuses a path that cannot be read.
pub fn parse_property_waits(text: &str) -> Vec<PropertyWait> {
    text.split(',')
        .filter_map(|pair| pair.split_once('='))
        .map(|(path, value)| PropertyWait {
            path: path.trim().to_string(),
            value: value.trim().to_string(),
        })
        .collect()
}

/// [`parse_property_waits`], refusing the annotation when one of its paths cannot be read
/// ([`check_property_path`]): such a wait could only time out. The error names the annotation,
/// the path and what is wrong with it; the caller adds the object.
pub fn read_property_waits(text: &str) -> Result<Vec<PropertyWait>, String> {
    let waits = parse_property_waits(text);
    for wait in &waits {
        check_property_path(&wait.path).map_err(|problem| {
            format!(
                "{}: the path {:?} is not a jsonpath: {problem}",
                crate::kube_apply::WAIT_FOR_PROPERTIES,
                wait.path
            )
        })?;
    }
    Ok(waits)
}

/// Whether `path` (client-go's jsonpath syntax, as [`property`] reads it) can be read at all;
/// the error says what is wrong and where.
pub fn check_property_path(path: &str) -> Result<(), String> {
    let query = rfc9535_query(path)?;
    jsonpath_rust::parser::parse_json_path(&query)
        .map(|_| ())
        .map_err(|error| format!("read as {query:?}: {}", in_one_line(&error.to_string())))
}

/// A `jsonpath-rust` refusal in one line: pest's report (`--> 1:8`, the query, a caret,
/// `= expected selector`) as `expected selector at character 8`, other refusals with their
/// blanks collapsed.
fn in_one_line(error: &str) -> String {
    let column = error
        .split_once("--> ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|line_and_column| line_and_column.split_once(':'))
        .map(|(_, column)| column);
    let expected = error
        .lines()
        .find_map(|line| line.trim().strip_prefix("= "));
    match (expected, column) {
        (Some(expected), Some(column)) => format!("{expected} at character {column}"),
        _ => error.split_whitespace().collect::<Vec<_>>().join(" "),
    }
}

/// The value at a jsonpath path, as KOTS compares it (client-go's jsonpath printing `{<path>}`).
/// The path is rewritten by `rfc9535_query` and read with `jsonpath-rust` (RFC 9535): fields,
/// `['a.b']`, indexes, `[*]`, `.*`, slices, `..`, filters such as `[?(@.type=="Ready")]`; it is
/// taken with or without braces and a leading `$`. Strings print as they are, other values as
/// JSON; several matches print separated by spaces. `None` when nothing matches or the path does
/// not parse ([`check_property_path`] says why).
pub fn property(object: &Value, path: &str) -> Option<String> {
    use jsonpath_rust::JsonPath;
    let query = rfc9535_query(path).ok()?;
    let matches = object.query(&query).ok()?;
    if matches.is_empty() {
        return None;
    }
    let printed: Vec<String> = matches
        .into_iter()
        .map(|value| match value {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        })
        .collect();
    Some(printed.join(" "))
}

/// Whether client-go's jsonpath lexer ends a dotted field name at `character` (when it is not
/// escaped with `\`). Everything else belongs to the name: `-`, `/`, `:`, `*`, `'`, `(`, digits
/// first, as `kubectl get -o jsonpath='{.data.my-key}'` shows.
fn ends_field_name(character: char) -> bool {
    matches!(
        character,
        ' ' | '\t' | '\r' | '\n' | '.' | ',' | '[' | ']' | '$' | '@' | '{' | '}'
    )
}

/// Whether RFC 9535 reads `name` after a dot (its `member-name-shorthand`): a letter, `_` or a
/// character outside ASCII first, then those or digits.
fn is_shorthand_name(name: &str) -> bool {
    let starts_a_name = |character: char| {
        character.is_ascii_alphabetic() || character == '_' || !character.is_ascii()
    };
    let mut characters = name.chars();
    characters.next().is_some_and(starts_a_name)
        && characters.all(|character| starts_a_name(character) || character.is_ascii_digit())
}

/// `name` as an RFC 9535 name selector, `['name']`, escaped for single quotes.
fn name_selector(name: &str) -> String {
    let mut selector = String::from("['");
    for character in name.chars() {
        match character {
            '\'' => selector.push_str("\\'"),
            '\\' => selector.push_str("\\\\"),
            control if u32::from(control) < 0x20 => {
                selector.push_str(&format!("\\u{:04x}", u32::from(control)));
            }
            other => selector.push(other),
        }
    }
    selector.push_str("']");
    selector
}

/// A dotted field name read from `characters` at `start`, as client-go reads it: up to a
/// character that [`ends_field_name`] unless `\` escapes it, every `\` then dropped (`\.` is a
/// dot of the name, `\\` nothing). Returns the name, whether it is the wildcard `*` (written
/// without an escape), and where reading stopped.
fn field_name(characters: &[char], start: usize) -> Result<(String, bool, usize), String> {
    let mut name = String::new();
    let mut at = start;
    while let Some(&character) = characters.get(at) {
        if character == '\\' {
            match characters.get(at + 1) {
                Some('\\') => {}
                Some(&escaped) => name.push(escaped),
                None => {
                    return Err(format!("the '\\' at character {} escapes nothing", at + 1));
                }
            }
            at += 2;
            continue;
        }
        if ends_field_name(character) {
            break;
        }
        name.push(character);
        at += 1;
    }
    let wildcard = characters[start..at] == ['*'];
    Ok((name, wildcard, at))
}

/// Where the bracket opened at `start` closes: the `]` that balances it, outside quoted strings
/// (so `['a]b']` and filters such as `[?(@.a[0]=="x")]` are one bracket).
fn bracket_end(characters: &[char], start: usize) -> Result<usize, String> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut at = start;
    while let Some(&character) = characters.get(at) {
        match (quote, character) {
            (Some(_), '\\') => at += 1,
            (Some(open), close) if close == open => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(character),
            (None, '[') => depth += 1,
            (None, ']') => {
                depth -= 1;
                if depth == 0 {
                    return Ok(at);
                }
            }
            (None, _) => {}
        }
        at += 1;
    }
    Err(format!(
        "the '[' at character {} is never closed by ']'",
        start + 1
    ))
}

/// A `kots.io/wait-for-properties` path in client-go's jsonpath syntax rewritten as the RFC 9535
/// query `jsonpath-rust` reads. KOTS prints client-go's `{<path>}`, whose dotted field names take
/// characters RFC 9535's dot notation does not (`.data.my-key`, `.labels.app\.kubernetes\.io/name`,
/// `.annotations.1st`): each dotted name that is not a plain identifier becomes `['name']`, with
/// client-go's `\` escapes undone; an empty name (`.data.`) is the key `""`, as in client-go.
/// Brackets (`[0]`, `[-1]`, `[*]`, slices, `['a.b']`, filters), `.*` and `..` are kept as they
/// are. The path may be in braces, may start with `$`, and may leave out its first dot
/// (`status.phase`). The error says what cannot be read and where (characters counted from 1).
fn rfc9535_query(path: &str) -> Result<String, String> {
    let characters: Vec<char> = path.trim().chars().collect();
    let mut query = String::from("$");
    let braced = characters.first() == Some(&'{');
    let mut at = usize::from(braced);
    while characters
        .get(at)
        .is_some_and(|character| character.is_whitespace())
    {
        at += 1;
    }
    let rooted = characters.get(at) == Some(&'$');
    at += usize::from(rooted);
    // A path without its first dot (`status.phase`) starts with a field name.
    let mut expect_name = characters
        .get(at)
        .is_some_and(|&character| !ends_field_name(character));
    let mut after_descent = false;
    let mut closed = false;
    while at < characters.len() || expect_name {
        if expect_name {
            let (name, wildcard, end) = field_name(&characters, at)?;
            match (wildcard, is_shorthand_name(&name), after_descent) {
                (true, _, true) => query.push('*'),
                (true, _, false) => query.push_str(".*"),
                (false, true, true) => query.push_str(&name),
                (false, true, false) => {
                    query.push('.');
                    query.push_str(&name);
                }
                (false, false, _) => query.push_str(&name_selector(&name)),
            }
            expect_name = false;
            after_descent = false;
            at = end;
            continue;
        }
        let character = characters[at];
        if closed && !character.is_whitespace() {
            return Err(format!(
                "{character:?} at character {} follows the closing '}}'",
                at + 1
            ));
        }
        match character {
            // client-go skips blanks between the steps of a path.
            blank if blank.is_whitespace() => at += 1,
            '.' if characters.get(at + 1) == Some(&'.') => {
                if after_descent {
                    return Err(format!("'..' follows '..' at character {}", at + 1));
                }
                query.push_str("..");
                after_descent = true;
                at += 2;
                expect_name = characters
                    .get(at)
                    .is_some_and(|&next| !ends_field_name(next));
            }
            '.' => {
                expect_name = true;
                at += 1;
            }
            '[' => {
                let end = bracket_end(&characters, at)?;
                let inside: String = characters[at + 1..end].iter().collect();
                query.push('[');
                query.push_str(inside.trim());
                query.push(']');
                after_descent = false;
                at = end + 1;
            }
            '}' if braced => {
                closed = true;
                at += 1;
            }
            other => {
                return Err(format!("unexpected {other:?} at character {}", at + 1));
            }
        }
    }
    if braced && !closed {
        return Err("the '{' is never closed by '}'".into());
    }
    if after_descent {
        return Err("'..' at the end: a name, '*' or '[' must follow it".into());
    }
    if query == "$" && !rooted {
        return Err("the path is empty".into());
    }
    Ok(query)
}

/// A status informer: which object, and of which supported kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Informer {
    /// As written.
    pub text: String,
    /// The canonical kind (`Deployment`, ...), or `None` when KOTS does not support it.
    pub kind: Option<&'static str>,
    /// The namespace (the app namespace when not written).
    pub namespace: String,
    /// The name.
    pub name: String,
}

/// Reads `[namespace/]kind/name` with KOTS's kind aliases; `None` when malformed.
pub fn parse_informer(text: &str, app_namespace: &str) -> Option<Informer> {
    let parts: Vec<&str> = text.trim().split('/').collect();
    let (namespace, kind, name) = match parts.as_slice() {
        [kind, name] => (app_namespace, *kind, *name),
        [namespace, kind, name] => (*namespace, *kind, *name),
        _ => return None,
    };
    if name.is_empty() || kind.is_empty() {
        return None;
    }
    let kind = match kind.to_lowercase().as_str() {
        "deployment" | "deployments" | "deploy" => Some("Deployment"),
        "statefulset" | "statefulsets" | "sts" => Some("StatefulSet"),
        "daemonset" | "daemonsets" | "ds" => Some("DaemonSet"),
        "service" | "services" | "svc" => Some("Service"),
        "ingress" | "ingresses" | "ing" => Some("Ingress"),
        "persistentvolumeclaim" | "persistentvolumeclaims" | "pvc" => Some("PersistentVolumeClaim"),
        _ => None,
    };
    Some(Informer {
        text: text.to_string(),
        kind,
        namespace: namespace.to_string(),
        name: name.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn deployment_states_follow_kots() {
        let deployment = |generation: i64, observed: i64, ready: i64, unavailable: i64| {
            json!({"metadata": {"generation": generation}, "spec": {"replicas": 2},
                   "status": {"observedGeneration": observed, "readyReplicas": ready, "unavailableReplicas": unavailable}})
        };
        assert_eq!(
            deployment_state(&deployment(2, 1, 2, 0)),
            AppState::Updating
        );
        assert_eq!(deployment_state(&deployment(1, 1, 2, 0)), AppState::Ready);
        assert_eq!(
            deployment_state(&deployment(1, 1, 2, 1)),
            AppState::Updating
        );
        assert_eq!(
            deployment_state(&deployment(1, 1, 1, 1)),
            AppState::Degraded
        );
        assert_eq!(
            deployment_state(&deployment(1, 1, 0, 2)),
            AppState::Unavailable
        );
    }

    #[test]
    fn statefulsets_and_daemonsets_are_updating_only_while_their_pods_differ() {
        let statefulset = |replicas: i64, updated: i64, ready: i64| {
            json!({"metadata": {"generation": 2}, "spec": {"replicas": 3},
                   "status": {"observedGeneration": 2, "replicas": replicas,
                              "updatedReplicas": updated, "readyReplicas": ready,
                              "currentRevision": "r1", "updateRevision": "r2"}})
        };
        // OnDelete (or a partition holding every pod back): all three pods on r1, none differs.
        assert_eq!(statefulset_state(&statefulset(3, 0, 3)), AppState::Ready);
        assert_eq!(statefulset_state(&statefulset(3, 1, 3)), AppState::Updating);
        assert_eq!(statefulset_state(&statefulset(3, 3, 3)), AppState::Ready);
        assert_eq!(statefulset_state(&statefulset(3, 3, 1)), AppState::Degraded);
        assert_eq!(
            statefulset_state(&statefulset(3, 3, 0)),
            AppState::Unavailable
        );

        let daemonset = |scheduled: i64, updated: i64, ready: i64, unavailable: i64| {
            json!({"metadata": {"generation": 1},
                       "status": {"observedGeneration": 1, "desiredNumberScheduled": 3,
                                  "currentNumberScheduled": scheduled,
                                  "updatedNumberScheduled": updated, "numberReady": ready,
                                  "numberUnavailable": unavailable}})
        };
        assert_eq!(daemonset_state(&daemonset(3, 3, 3, 0)), AppState::Ready);
        // A template change not rolled out yet (OnDelete): every pod on the old revision, ready.
        assert_eq!(daemonset_state(&daemonset(3, 0, 3, 0)), AppState::Ready);
        assert_eq!(daemonset_state(&daemonset(3, 1, 3, 0)), AppState::Updating);
        // Pods unavailable, not yet scheduled everywhere: degraded (KOTS), not updating.
        assert_eq!(daemonset_state(&daemonset(3, 3, 0, 3)), AppState::Degraded);
        assert_eq!(daemonset_state(&daemonset(2, 2, 2, 1)), AppState::Degraded);
    }

    #[test]
    fn an_ingress_behind_a_load_balancer_needs_its_own_address() {
        let balancer = json!({"spec": {"type": "LoadBalancer", "selector": {"app": "web"}}});
        let addressed = json!({"status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.5"}]}}});
        let unaddressed = json!({"status": {}});
        // The Service has no address of its own (bare metal): the Ingress's is what counts.
        let backends = [(AppState::Ready, Some(balancer.clone()))];
        assert_eq!(ingress_state(&addressed, &backends), AppState::Ready);
        assert_eq!(
            ingress_state(&unaddressed, &backends),
            AppState::Unavailable
        );
        let plain = json!({"spec": {"selector": {"app": "web"}}});
        assert_eq!(
            ingress_state(&unaddressed, &[(AppState::Ready, Some(plain))]),
            AppState::Ready
        );
        assert_eq!(
            ingress_state(
                &addressed,
                &[(AppState::Ready, Some(balancer)), (AppState::Missing, None)]
            ),
            AppState::Missing
        );
    }

    #[test]
    fn services_read_their_endpoint_slices() {
        let service = json!({"spec": {"selector": {"app": "web"}}});
        let slice = |ready: &[bool]| json!({"endpoints": ready.iter().map(|ready| json!({"conditions": {"ready": ready}})).collect::<Vec<_>>()});
        assert_eq!(service_state(&service, &[]), AppState::Unavailable);
        assert_eq!(
            service_state(&service, &[slice(&[true, false])]),
            AppState::Degraded
        );
        assert_eq!(service_state(&service, &[slice(&[true])]), AppState::Ready);
        // A pod terminating in a rollout is listed, not ready: not a degraded Service.
        let rolling = json!({"endpoints": [
            {"conditions": {"ready": true}},
            {"conditions": {"ready": false, "terminating": true}},
        ]});
        assert_eq!(service_state(&service, &[rolling]), AppState::Ready);
        let balancer = json!({"spec": {"type": "LoadBalancer", "selector": {"app": "web"}}});
        assert_eq!(
            service_state(&balancer, &[slice(&[true])]),
            AppState::Unavailable
        );
    }

    #[test]
    fn properties_and_informers_parse() {
        let object =
            json!({"status": {"phase": "Running", "replicas": 3, "conditions": [{"type": "A"}]}});
        assert_eq!(
            property(&object, ".status.phase").as_deref(),
            Some("Running")
        );
        assert_eq!(
            property(&object, "{.status.replicas}").as_deref(),
            Some("3")
        );
        assert_eq!(
            property(&object, ".status.conditions[0].type").as_deref(),
            Some("A")
        );
        assert_eq!(property(&object, ".status.missing"), None);
        let pod = json!({"metadata": {"annotations": {"example.com/role": "db"}},
                         "status": {"containerStatuses": [{"ready": true}, {"ready": false}]}});
        assert_eq!(
            property(&pod, ".status.containerStatuses[*].ready").as_deref(),
            Some("true false")
        );
        assert_eq!(
            property(&pod, "{$.status.containerStatuses[-1].ready}").as_deref(),
            Some("false")
        );
        assert_eq!(
            property(&pod, ".metadata.annotations['example.com/role']").as_deref(),
            Some("db")
        );
        assert_eq!(
            property(&pod, ".metadata.annotations.*").as_deref(),
            Some("db")
        );
        assert_eq!(
            property(&pod, "status.containerStatuses[0].ready").as_deref(),
            Some("true")
        );
        assert_eq!(
            property(&pod, ".status.containerStatuses[0:1].ready").as_deref(),
            Some("true")
        );
        assert_eq!(property(&pod, "{..ready}").as_deref(), Some("true false"));
        assert_eq!(
            property(&pod, ".status.containerStatuses[?(@.ready==false)].ready").as_deref(),
            Some("false")
        );
        for unread in [".status.containerStatuses[5].ready", ".status[", "$$"] {
            assert_eq!(property(&pod, unread), None, "{unread}");
        }
        assert_eq!(
            parse_property_waits(".status.phase=Running,junk, .a = b"),
            vec![
                PropertyWait {
                    path: ".status.phase".into(),
                    value: "Running".into()
                },
                PropertyWait {
                    path: ".a".into(),
                    value: "b".into()
                },
            ]
        );
        let informer = parse_informer("tools/sts/db", "default").unwrap();
        assert_eq!(
            (informer.kind, informer.namespace.as_str()),
            (Some("StatefulSet"), "tools")
        );
        assert_eq!(
            parse_informer("deploy/web", "app").unwrap().namespace,
            "app"
        );
        assert_eq!(parse_informer("configmap/x", "app").unwrap().kind, None);
        assert_eq!(parse_informer("web", "app"), None);
    }

    /// A ConfigMap with keys client-go's dotted names reach and RFC 9535's dot notation does not;
    /// the expected values are what `kubectl get cm x -o jsonpath='{ <path> }'` (kubectl 1.33)
    /// printed for the same object.
    fn config_map_with_awkward_keys() -> Value {
        json!({
            "metadata": {
                "name": "x",
                "labels": {"app.kubernetes.io/name": "x", "plain": "p"},
                "annotations": {
                    "example.com/role": "db", "a/b": "slash", "1st": "digit", "_u": "under",
                    "we:rd": "colon", "sp ace": "space", "q'uote": "quote", "eq=ual": "equal",
                    "star*": "star", "dollar$": "dollar", "at@": "at", "ü": "umlaut",
                    "back\\slash": "backslash", "x-y.z": "dz"
                }
            },
            "data": {
                "my-key": "1", "k": "v", "-lead": "minus", "007": "bond", "a,b": "comma",
                "br]ack": "bracket", "par(en)": "paren", "q\"d": "dq", "hash#": "hash",
                "plus+": "plus", "*": "literal-star", "$": "literal-dollar", "": "empty"
            }
        })
    }

    #[test]
    fn client_go_field_names_read_as_kubectl_prints_them() {
        let object = config_map_with_awkward_keys();
        for (path, printed) in [
            (".data.my-key", "1"),
            ("{.data.my-key}", "1"),
            ("{ .data.my-key }", "1"),
            (".data.-lead", "minus"),
            (".data.007", "bond"),
            (".data.a\\,b", "comma"),
            (".data.br\\]ack", "bracket"),
            (".data.par(en)", "paren"),
            (".data.q\"d", "dq"),
            (".data.hash#", "hash"),
            (".data.plus+", "plus"),
            (".metadata.labels.app\\.kubernetes\\.io/name", "x"),
            (".metadata.annotations.example\\.com/role", "db"),
            (".metadata.annotations.a/b", "slash"),
            (".metadata.annotations.1st", "digit"),
            (".metadata.annotations._u", "under"),
            (".metadata.annotations.we:rd", "colon"),
            (".metadata.annotations.sp\\ ace", "space"),
            (".metadata.annotations.q'uote", "quote"),
            (".metadata.annotations.eq=ual", "equal"),
            (".metadata.annotations.star*", "star"),
            (".metadata.annotations.dollar\\$", "dollar"),
            (".metadata.annotations.at\\@", "at"),
            (".metadata.annotations.ü", "umlaut"),
            (".metadata.annotations.x-y\\.z", "dz"),
            // Every backslash is dropped, escaping a character or not.
            (".data.m\\y-key", "1"),
            (".data.k\\\\", "v"),
            // An escaped `*` is the key "*", a bare one every value.
            (".data.\\*", "literal-star"),
            (".metadata.labels.*", "x p"),
            (".data.\\$", "literal-dollar"),
            // A name left empty is the key "".
            (".data.", "empty"),
            ("..my-key", "1"),
            ("..plain", "p"),
            (".metadata..plain", "p"),
            ("...plain", "p"),
            (".data..k", "v"),
            ("$.data.k", "v"),
            (".metadata .name", "x"),
        ] {
            assert_eq!(property(&object, path).as_deref(), Some(printed), "{path}");
            assert_eq!(check_property_path(path), Ok(()), "{path}");
        }
        // kubectl prints nothing: no key is named `backslash` (its `\\` is dropped), `name` is a
        // string, `0` a name and not an index.
        for path in [
            ".metadata.annotations.back\\\\slash",
            ".metadata.name.x",
            ".metadata.name.",
            ".data.0",
        ] {
            assert_eq!(property(&object, path), None, "{path}");
            assert_eq!(check_property_path(path), Ok(()), "{path}");
        }
    }

    #[test]
    fn client_go_paths_become_rfc9535_queries() {
        for (path, query) in [
            (".status.phase", "$.status.phase"),
            ("{$.status.phase}", "$.status.phase"),
            ("status.phase", "$.status.phase"),
            (".data.my-key", "$.data['my-key']"),
            (
                ".metadata.labels.app\\.kubernetes\\.io/name",
                "$.metadata.labels['app.kubernetes.io/name']",
            ),
            (".data.q'uote", "$.data['q\\'uote']"),
            (".data.\\*", "$.data['*']"),
            (".data.*", "$.data.*"),
            ("..my-key", "$..['my-key']"),
            ("...plain", "$..plain"),
            (
                ".items[*].status.conditions[?(@.type==\"Ready\")].status",
                "$.items[*].status.conditions[?(@.type==\"Ready\")].status",
            ),
            (
                ".items[ -1 ].spec[0:2]['a.b']",
                "$.items[-1].spec[0:2]['a.b']",
            ),
        ] {
            assert_eq!(rfc9535_query(path).as_deref(), Ok(query), "{path}");
        }
    }

    #[test]
    fn unreadable_paths_are_refused_with_where_and_why() {
        let object = config_map_with_awkward_keys();
        for (path, problem) in [
            // kubectl: "unterminated array", "unclosed action".
            (
                ".data.[x=1",
                "the '[' at character 7 is never closed by ']'",
            ),
            ("{.a", "the '{' is never closed by '}'"),
            // kubectl prints the `}` after the value: a value with a brace in it is not meant.
            (".a}", "unexpected '}' at character 3"),
            ("{.a}}", "'}' at character 5 follows the closing '}'"),
            // kubectl: "unrecognized character in action: U+002C ','" and "... U+005D ']'".
            (".data.a,b", "unexpected ',' at character 8"),
            (".data.br]ack", "unexpected ']' at character 9"),
            // kubectl: "unrecognized identifier extra".
            (
                ".metadata.labels.plain extra",
                "unexpected 'e' at character 24",
            ),
            // kubectl: "invalid multiple recursive descent".
            ("....k", "'..' follows '..' at character 3"),
            // kubectl prints nothing for this one, and the whole object for the next four: no
            // value compares equal to that, so they are refused rather than waited for.
            (".data.k\\", "the '\\' at character 8 escapes nothing"),
            ("..", "'..' at the end: a name, '*' or '[' must follow it"),
            ("", "the path is empty"),
            ("{ }", "the path is empty"),
            ("$$", "unexpected '$' at character 2"),
        ] {
            assert_eq!(
                check_property_path(path),
                Err(problem.to_string()),
                "{path}"
            );
            assert_eq!(property(&object, path), None, "{path}");
        }
        // kubectl: "invalid array index k"; jsonpath-rust refuses it too.
        assert_eq!(
            check_property_path(".data[k]"),
            Err("read as \"$.data[k]\": expected selector at character 8".to_string())
        );
        assert_eq!(property(&object, ".data[k]"), None);
        assert_eq!(
            check_property_path(".items[?(@.ready==)]"),
            Err(
                "read as \"$.items[?(@.ready==)]\": expected comparable at character 20"
                    .to_string()
            )
        );
    }

    #[test]
    fn an_annotation_with_an_unreadable_path_is_refused() {
        assert_eq!(
            read_property_waits(".data.my-key=1, .status.phase = Running"),
            Ok(vec![
                PropertyWait {
                    path: ".data.my-key".into(),
                    value: "1".into()
                },
                PropertyWait {
                    path: ".status.phase".into(),
                    value: "Running".into()
                },
            ])
        );
        assert_eq!(
            read_property_waits(".status.phase=Running,.data.[x=1"),
            Err(
                "kots.io/wait-for-properties: the path \".data.[x\" is not a jsonpath: the '[' \
                 at character 7 is never closed by ']'"
                    .to_string()
            )
        );
        assert_eq!(
            read_property_waits("=x"),
            Err(
                "kots.io/wait-for-properties: the path \"\" is not a jsonpath: the path is empty"
                    .to_string()
            )
        );
    }
}
