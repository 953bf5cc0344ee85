//! Readiness, as pure functions over objects read from the server: CRDs `Established`, Namespaces
//! `Active`, the KOTS resource states of `statusInformers` and `kots.io/wait-for-ready` (section
//! 1.6 of the reference notes: Deployment, StatefulSet, DaemonSet, Service — from its
//! EndpointSlices, not the deprecated Endpoints —, Ingress from its backend Services' endpoints
//! and its own load-balancer address, PVC), the `kots.io/wait-for-properties` jsonpath values,
//! and the informer syntax `[namespace/]kind/name`.

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

/// Reads `<path>=<value>[,...]`; pairs without `=` are skipped, as KOTS does.
pub fn parse_property_waits(text: &str) -> Vec<PropertyWait> {
    text.split(',')
        .filter_map(|pair| pair.split_once('='))
        .map(|(path, value)| PropertyWait {
            path: path.trim().to_string(),
            value: value.trim().to_string(),
        })
        .collect()
}

/// The value at a jsonpath path, as KOTS compares it (client-go's jsonpath printing `{<path>}`),
/// read with `jsonpath-rust` (RFC 9535, whose syntax covers client-go's: fields, `['a.b']`,
/// indexes, `[*]`, slices, `..`, filters such as `[?(@.type=="Ready")]`): the path is taken with
/// or without braces and a leading `$`. Strings print as they are, other values as JSON; several
/// matches print separated by spaces. `None` when nothing matches or the path does not parse.
pub fn property(object: &Value, path: &str) -> Option<String> {
    use jsonpath_rust::JsonPath;
    let path = path
        .trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .trim()
        .trim_start_matches('$');
    let rooted = if path.starts_with(['.', '[']) {
        format!("${path}")
    } else {
        format!("$.{path}")
    };
    let matches = object.query(&rooted).ok()?;
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
}
