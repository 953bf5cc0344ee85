//! The part of kustomize's name-reference fixing (`api/filters/nameref`, run once at the end of a
//! build) that a `namespace:` can trigger without renames: references held as `{name, namespace}`
//! maps follow the object they name into its new namespace. Those are the `subjects` of
//! (Cluster)RoleBindings naming a ServiceAccount, and the `service` of webhook configurations and
//! APIServices naming a Service. A reference matches an object whose current or earlier identity
//! has its name and (when the reference gives one) its namespace; when the object moved, the
//! reference gets the object's namespace. A reference matching several objects is unsupported.

use serde_json::Value;

use super::resource::{ResId, Resource};

/// Why references cannot be fixed natively.
#[derive(Debug)]
pub(crate) struct AmbiguousReference(pub String);

fn same_namespace(reference: &str, id: &ResId) -> bool {
    let normal = |namespace: &str| {
        if namespace.is_empty() {
            "default".to_string()
        } else {
            namespace.to_string()
        }
    };
    reference.is_empty() || normal(reference) == normal(&id.namespace)
}

/// The one object of `kind` (core or `v1`) a `{name, namespace}` reference names, if any.
fn referral<'a>(
    resources: &'a [ResourceView],
    kind: &str,
    name: &str,
    namespace: &str,
) -> Result<Option<&'a ResourceView>, AmbiguousReference> {
    let mut found = resources.iter().filter(|view| {
        view.current.kind == kind
            && view.current.group.is_empty()
            && view
                .ids
                .iter()
                .any(|id| id.name == name && same_namespace(namespace, id))
    });
    let first = found.next();
    if found.next().is_some() {
        return Err(AmbiguousReference(format!(
            "a reference to {kind} `{name}` matches several objects"
        )));
    }
    Ok(first)
}

struct ResourceView {
    current: ResId,
    ids: Vec<ResId>,
}

/// Points `{name, namespace}` references at the namespaces their objects ended up in.
pub(crate) fn fix_references(resources: &mut [Resource]) -> Result<(), AmbiguousReference> {
    if resources
        .iter()
        .all(|resource| resource.previous.is_empty())
    {
        return Ok(());
    }
    let views: Vec<ResourceView> = resources
        .iter()
        .filter(|resource| {
            let id = resource.id();
            id.group.is_empty() && matches!(id.kind.as_str(), "ServiceAccount" | "Service")
        })
        .map(|resource| {
            let current = resource.id();
            let mut ids = resource.previous.clone();
            ids.push(current.clone());
            ResourceView { current, ids }
        })
        .collect();
    if views.is_empty() {
        return Ok(());
    }
    for resource in resources.iter_mut() {
        let id = resource.id();
        match (id.group.as_str(), id.kind.as_str()) {
            ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => {
                if let Some(Value::Array(subjects)) = resource.value.get_mut("subjects") {
                    for subject in subjects {
                        if subject.get("kind").and_then(Value::as_str) == Some("ServiceAccount") {
                            point(subject, &views, "ServiceAccount")?;
                        }
                    }
                }
            }
            (
                "admissionregistration.k8s.io",
                "MutatingWebhookConfiguration" | "ValidatingWebhookConfiguration",
            ) => {
                if let Some(Value::Array(webhooks)) = resource.value.get_mut("webhooks") {
                    for webhook in webhooks {
                        if let Some(service) = webhook
                            .get_mut("clientConfig")
                            .and_then(|config| config.get_mut("service"))
                        {
                            point(service, &views, "Service")?;
                        }
                    }
                }
            }
            ("apiregistration.k8s.io", "APIService") => {
                if let Some(service) = resource
                    .value
                    .get_mut("spec")
                    .and_then(|spec| spec.get_mut("service"))
                {
                    point(service, &views, "Service")?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn point(
    reference: &mut Value,
    views: &[ResourceView],
    kind: &str,
) -> Result<(), AmbiguousReference> {
    let Some(map) = reference.as_object_mut() else {
        return Ok(());
    };
    let Some(name) = map.get("name").and_then(Value::as_str) else {
        return Ok(());
    };
    let namespace = map.get("namespace").and_then(Value::as_str).unwrap_or("");
    let Some(view) = referral(views, kind, name, namespace)? else {
        return Ok(());
    };
    if view.current.namespace.is_empty() || view.current.namespace == namespace {
        return Ok(());
    }
    map.insert(
        "namespace".to_string(),
        Value::String(view.current.namespace.clone()),
    );
    Ok(())
}
