//! [`UpstreamAccess`]: which apps' licenses may pull through an upstream (`apps:`), and, when the
//! configuration narrows it, which of its repositories (`repositories:`, prefixes matched at `/`
//! boundaries). A license is checked against its own app first; this is the second check, so a
//! license cannot reach another vendor's images by naming its own app in the path.

/// The apps and repositories one upstream serves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpstreamAccess {
    /// The app slugs whose licenses may pull through the upstream. Empty: no app may.
    pub apps: Vec<String>,
    /// Repository prefixes the apps may pull; `None` allows every repository of the upstream.
    pub repositories: Option<Vec<String>>,
}

/// Why [`UpstreamAccess::check`] refuses a pull.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessDenial {
    /// The app is not in the upstream's `apps:`.
    AppNotBound,
    /// The repository matches none of the upstream's `repositories:` prefixes.
    RepositoryNotAllowed,
}

impl AccessDenial {
    /// The pull log's `result` for this refusal.
    pub fn result(self) -> &'static str {
        match self {
            AccessDenial::AppNotBound => "app_not_bound_to_upstream",
            AccessDenial::RepositoryNotAllowed => "repository_not_allowed",
        }
    }

    /// The message of the registry `DENIED` error sent to the client.
    pub fn message(self) -> &'static str {
        match self {
            AccessDenial::AppNotBound => "this app may not pull through that upstream registry",
            AccessDenial::RepositoryNotAllowed => "this app may not pull that repository",
        }
    }
}

impl UpstreamAccess {
    /// Whether licenses of `app` may pull `repository` (e.g. `team/app`) through this upstream.
    pub fn check(&self, app: &str, repository: &str) -> Result<(), AccessDenial> {
        if !self.apps.iter().any(|allowed| allowed == app) {
            return Err(AccessDenial::AppNotBound);
        }
        match &self.repositories {
            None => Ok(()),
            Some(prefixes) if prefixes.iter().any(|prefix| has_prefix(repository, prefix)) => {
                Ok(())
            }
            Some(_) => Err(AccessDenial::RepositoryNotAllowed),
        }
    }
}

/// Whether `repository` is `prefix` or lies under it: `team/app` matches `team/app` and
/// `team/app/x`, not `team/apple`.
fn has_prefix(repository: &str, prefix: &str) -> bool {
    repository
        .strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Checks the `apps:` list of an upstream; an error is (index, problem).
pub(crate) fn check_apps(apps: &[String]) -> Result<(), (usize, &'static str)> {
    match apps.iter().position(|app| !crate::path::is_valid_slug(app)) {
        Some(index) => Err((
            index,
            "not a valid app slug (lowercase letters, digits and dashes)",
        )),
        None => Ok(()),
    }
}

/// Checks the `repositories:` list of an upstream; an error is (index, problem), with index 0
/// for an empty list.
pub(crate) fn check_repositories(repositories: &[String]) -> Result<(), (usize, &'static str)> {
    if repositories.is_empty() {
        return Err((
            0,
            "empty: list at least one repository prefix, or leave `repositories` out to allow all",
        ));
    }
    match repositories.iter().position(|repository| {
        repository.len() > 4096
            || !repository
                .split('/')
                .all(crate::path::is_repository_component)
    }) {
        Some(index) => Err((
            index,
            "not a repository path (lowercase components such as `team/app`, separated by `/`)",
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(apps: &[&str], repositories: Option<&[&str]>) -> UpstreamAccess {
        UpstreamAccess {
            apps: apps.iter().map(|app| app.to_string()).collect(),
            repositories: repositories
                .map(|prefixes| prefixes.iter().map(|prefix| prefix.to_string()).collect()),
        }
    }

    #[test]
    fn apps_and_repository_prefixes_are_matched_at_segment_boundaries() {
        let open = access(&["my-app"], None);
        assert_eq!(open.check("my-app", "anything/at/all"), Ok(()));
        assert_eq!(
            open.check("other-app", "team/app"),
            Err(AccessDenial::AppNotBound)
        );
        assert_eq!(
            access(&[], None).check("my-app", "team/app"),
            Err(AccessDenial::AppNotBound)
        );

        let narrow = access(&["my-app", "second"], Some(&["team/app", "shared"]));
        for allowed in ["team/app", "team/app/x", "shared", "shared/a/b"] {
            assert_eq!(narrow.check("second", allowed), Ok(()), "{allowed}");
        }
        for refused in ["team/apple", "team", "team/ap", "sharedx", "other/team/app"] {
            assert_eq!(
                narrow.check("my-app", refused),
                Err(AccessDenial::RepositoryNotAllowed),
                "{refused}"
            );
        }
    }

    #[test]
    fn lists_are_validated_with_the_index_of_the_bad_entry() {
        let strings = |values: &[&str]| values.iter().map(|v| v.to_string()).collect::<Vec<_>>();
        assert_eq!(check_apps(&strings(&["a", "b-2"])), Ok(()));
        assert_eq!(check_apps(&strings(&["a", "Bad"])).unwrap_err().0, 1);
        assert_eq!(check_apps(&strings(&["a", ""])).unwrap_err().0, 1);
        assert_eq!(check_repositories(&strings(&["team/app"])), Ok(()));
        assert_eq!(check_repositories(&[]).unwrap_err().0, 0);
        for bad in ["team/", "/team", "team//app", "Team/app", "team/../x", ""] {
            assert_eq!(
                check_repositories(&strings(&["ok", bad])).unwrap_err().0,
                1,
                "{bad}"
            );
        }
    }
}
