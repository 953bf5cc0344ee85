//! KOTS's hook delete policy for Jobs. KOTS applies a chart's hook Jobs as plain objects (copying
//! their `helm.sh/hook-delete-policy` to `kots.io/hook-delete-policy`), and a Job informer of its
//! long-running admin console deletes a finished Job whose policy says so: `hook-succeeded` once it
//! succeeded, `hook-failed` once it failed. So the next version of such a Job (a migration whose
//! image changed) is created afresh, where an apply of it over the finished one would be refused
//! (a Job's template cannot change). windlass runs no informer; it gets the same result at the
//! next apply: a Job the release annotates with either annotation, whose live Job finished as the
//! policy says, is deleted and created again when the server refuses the change as immutable
//! (see `kube_apply`'s recreate, which otherwise needs `windlass.io/recreate-on-immutable`).

use serde_json::Value;

use crate::order::annotation_of;

/// The annotation KOTS reads, on a Job of a plain manifest or copied from a chart's hook.
pub const KOTS_HOOK_DELETE_POLICY: &str = "kots.io/hook-delete-policy";

/// helm's annotation on a chart's hook, which KOTS copies to [`KOTS_HOOK_DELETE_POLICY`].
pub const HELM_HOOK_DELETE_POLICY: &str = "helm.sh/hook-delete-policy";

/// Why the live Job `live` may be deleted and created again, as KOTS would have deleted it: the
/// release's object `object` (a Job) names a hook delete policy (KOTS's annotation, else helm's)
/// that holds for how `live` finished (`hook-succeeded` and `status.succeeded` > 0, or
/// `hook-failed` and `status.failed` > 0, no pod of it active), as KOTS's informer judges it. `None`
/// when it does not, or when the object is not a `batch/v1` Job. (KOTS copies helm's annotation
/// over its own on a chart's Job; windlass reads its own first, so a vendor may set it.)
pub fn finished_as_its_policy_says(object: &Value, live: &Value) -> Option<String> {
    if object.get("kind").and_then(Value::as_str) != Some("Job")
        || object.get("apiVersion").and_then(Value::as_str) != Some("batch/v1")
    {
        return None;
    }
    let (annotation, policy) = [KOTS_HOOK_DELETE_POLICY, HELM_HOOK_DELETE_POLICY]
        .into_iter()
        .find_map(|annotation| {
            annotation_of(object, annotation).map(|policy| (annotation, policy))
        })?;
    let count = |field: &str| {
        live.pointer(&format!("/status/{field}"))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    // As KOTS's informer: never while a pod of it still runs (a retry after a failure, the rest
    // of a parallel Job), and the policy read as KOTS reads it (it holds the word).
    if count("active") > 0 {
        return None;
    }
    [("hook-succeeded", "succeeded"), ("hook-failed", "failed")]
        .into_iter()
        .find(|(hook, field)| policy.contains(hook) && count(field) > 0)
        .map(|(_, finished)| format!("it {finished}, and its {annotation} is {policy:?}"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn job(annotations: Value) -> Value {
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate", "annotations": annotations}})
    }

    fn finished(succeeded: u64, failed: u64) -> Value {
        json!({"status": {"succeeded": succeeded, "failed": failed}})
    }

    #[test]
    fn a_job_finished_as_its_policy_says_may_be_created_again() {
        let succeeded = job(json!({KOTS_HOOK_DELETE_POLICY: "hook-succeeded"}));
        assert_eq!(
            finished_as_its_policy_says(&succeeded, &finished(1, 0)).as_deref(),
            Some("it succeeded, and its kots.io/hook-delete-policy is \"hook-succeeded\"")
        );
        assert_eq!(
            finished_as_its_policy_says(&succeeded, &finished(0, 2)),
            None
        );
        assert_eq!(finished_as_its_policy_says(&succeeded, &json!({})), None);
        // helm's annotation, as a chart's hook carries it, with both policies.
        let either = job(
            json!({HELM_HOOK_DELETE_POLICY: "before-hook-creation, hook-failed,hook-succeeded"}),
        );
        assert!(finished_as_its_policy_says(&either, &finished(0, 1)).is_some_and(
            |why| why.starts_with("it failed, and its helm.sh/hook-delete-policy")
        ));
        // KOTS's annotation wins over helm's.
        let both = job(
            json!({KOTS_HOOK_DELETE_POLICY: "hook-failed", HELM_HOOK_DELETE_POLICY: "hook-succeeded"}),
        );
        assert_eq!(finished_as_its_policy_says(&both, &finished(1, 0)), None);
        // Never while a pod of it is active (a retry after a failure).
        assert_eq!(
            finished_as_its_policy_says(&either, &json!({"status": {"failed": 1, "active": 1}})),
            None
        );
        // Only the deleting policies count, and only on a batch/v1 Job.
        let before = job(json!({HELM_HOOK_DELETE_POLICY: "before-hook-creation"}));
        assert_eq!(finished_as_its_policy_says(&before, &finished(1, 1)), None);
        let mut config_map = succeeded.clone();
        config_map["kind"] = json!("ConfigMap");
        assert_eq!(
            finished_as_its_policy_says(&config_map, &finished(1, 0)),
            None
        );
        assert_eq!(
            finished_as_its_policy_says(&job(json!({})), &finished(1, 0)),
            None
        );
    }
}
