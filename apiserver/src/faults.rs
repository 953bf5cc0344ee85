//! Fault injection: rules a test installs that match requests (by verb, resource, namespace,
//! name) and delay them, answer 429 with `Retry-After`, answer a 5xx, or refuse a DELETE the
//! way an admission webhook does — for a number of times or until removed.

use std::time::Duration;

use crate::error::ApiError;
use crate::requests::RequestRecord;

/// Which requests a fault applies to; empty fields match anything.
#[derive(Clone, Debug, Default)]
pub struct FaultMatch {
    /// Verb (`get`, `patch`, `delete`, ...).
    pub verb: Option<String>,
    /// Plural resource name.
    pub resource: Option<String>,
    /// Namespace.
    pub namespace: Option<String>,
    /// Object name.
    pub name: Option<String>,
    /// Only dry runs (`Some(true)`) or only real writes (`Some(false)`).
    pub dry_run: Option<bool>,
}

impl FaultMatch {
    /// Matches every request.
    pub fn any() -> Self {
        Self::default()
    }

    /// Matches requests with this verb.
    pub fn verb(verb: &str) -> Self {
        Self {
            verb: Some(verb.to_owned()),
            ..Self::default()
        }
    }

    /// Narrows to a resource.
    pub fn resource(mut self, resource: &str) -> Self {
        self.resource = Some(resource.to_owned());
        self
    }

    /// Narrows to a namespace.
    pub fn namespace(mut self, namespace: &str) -> Self {
        self.namespace = Some(namespace.to_owned());
        self
    }

    /// Narrows to an object name.
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }

    /// Narrows to dry runs or to real writes.
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = Some(dry_run);
        self
    }

    fn matches(&self, record: &RequestRecord) -> bool {
        let field =
            |wanted: &Option<String>, actual: &str| wanted.as_deref().is_none_or(|w| w == actual);
        field(&self.verb, &record.verb)
            && field(&self.resource, &record.resource)
            && field(&self.namespace, &record.namespace)
            && field(&self.name, &record.name)
            && self.dry_run.is_none_or(|d| d == record.dry_run)
    }
}

/// What a fault does.
#[derive(Clone, Debug)]
pub enum FaultAction {
    /// Waits this long, then serves the request normally.
    Delay(Duration),
    /// Serves the request (what it writes is written), then holds the answer this long: a
    /// client that dies or gives up meanwhile never hears what was done.
    DelayAnswer(Duration),
    /// Answers 429 TooManyRequests with `Retry-After: <seconds>`.
    TooManyRequests {
        /// The `Retry-After` value.
        retry_after_seconds: u64,
    },
    /// Answers this 5xx status (500, 503, 504).
    ServerError(u16),
    /// Refuses the request as an admission webhook would: 403 with this message.
    Refuse(String),
}

/// An installed fault.
#[derive(Clone, Debug)]
pub struct Fault {
    /// Which requests.
    pub matcher: FaultMatch,
    /// What happens.
    pub action: FaultAction,
    /// How many more requests it applies to (None: until cleared).
    pub remaining: Option<u32>,
}

/// What the handler must do for a request, after faults.
pub enum Injected {
    /// Wait, then continue.
    Delay(Duration),
    /// Continue, then wait before answering.
    DelayAnswer(Duration),
    /// Answer with this error instead.
    Fail(ApiError),
}

/// Takes the first matching fault (counting it down) and says what it does.
pub fn take(faults: &mut Vec<Fault>, record: &RequestRecord) -> Option<Injected> {
    let index = faults
        .iter()
        .position(|fault| fault.matcher.matches(record))?;
    let fault = &mut faults[index];
    let action = fault.action.clone();
    if let Some(remaining) = fault.remaining.as_mut() {
        *remaining = remaining.saturating_sub(1);
        if *remaining == 0 {
            faults.remove(index);
        }
    }
    Some(match action {
        FaultAction::Delay(duration) => Injected::Delay(duration),
        FaultAction::DelayAnswer(duration) => Injected::DelayAnswer(duration),
        FaultAction::TooManyRequests {
            retry_after_seconds,
        } => Injected::Fail(ApiError::too_many_requests(retry_after_seconds)),
        FaultAction::ServerError(code) => Injected::Fail(ApiError::server_error(
            code,
            format!("injected fault: the server answered {code}"),
        )),
        FaultAction::Refuse(message) => Injected::Fail(ApiError::forbidden(format!(
            "admission webhook \"deny.windlass.test\" denied the request: {message}"
        ))),
    })
}
