//! Probes of real registries that require authentication: htpasswd (401 Basic) without and with
//! credentials from the settings file, and token auth like Docker Hub — the real registry with
//! `auth: token` trusting the test token server, which grants anonymous pulls of `public/*` only,
//! including tokens whose announced lifetime is absurdly long.

use windlass_registry::{ProbeOutcome, Prober};

use windlass_testkit::{
    HTPASSWD_PASSWORD, RegistriesFile, TOKEN_SERVICE, TestRegistry, TokenServer,
};

use crate::support::{load_settings, probe, quick_config, target};

#[tokio::test(flavor = "multi_thread")]
async fn htpasswd_registry_requires_authentication() {
    let registry = TestRegistry::htpasswd().await;
    let host = registry.host();
    registry.push_image("private/app:v1", "htpasswd");
    let settings_dir = tempfile::tempdir().unwrap();
    let settings = load_settings(
        settings_dir.path(),
        &RegistriesFile::new().plain_http(&host),
    );
    let (results, requests) = probe(
        settings,
        quick_config(),
        vec![target(
            &format!("{host}/private/app:v1"),
            &host,
            "private/app",
            "v1",
        )],
    )
    .await;
    let result = &results[0];
    assert_eq!(result.outcome, ProbeOutcome::AuthRequired, "{result:?}");
    assert_eq!(result.evidence.status_codes, vec![401, 401]);
    let challenge = result.evidence.challenge.as_ref().expect("a challenge");
    assert_eq!(challenge.scheme, "Basic");
    assert_eq!(challenge.realm.as_deref(), Some("windlass-test"));
    assert!(
        result.evidence.reason.contains("401"),
        "{}",
        result.evidence.reason
    );
    assert_eq!(requests, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_from_settings_open_an_htpasswd_registry() {
    let registry = TestRegistry::htpasswd().await;
    let host = registry.host();
    let digest = registry.push_image("private/app:v1", "with-credentials");
    let settings_dir = tempfile::tempdir().unwrap();
    // Username `reader`, the password in a file ending with a newline.
    let settings = load_settings(
        settings_dir.path(),
        &RegistriesFile::new().route_with_credentials(&host, &registry),
    );
    assert!(!format!("{settings:?}").contains(HTPASSWD_PASSWORD));
    let prober = Prober::new(settings, quick_config()).unwrap();
    assert!(!format!("{prober:?}").contains(HTPASSWD_PASSWORD));
    let results = prober
        .probe_all(
            vec![target(
                &format!("{host}/private/app:v1"),
                &host,
                "private/app",
                "v1",
            )],
            |_, _| {},
        )
        .await;
    let result = &results[0];
    assert_eq!(result.outcome, ProbeOutcome::Public, "{result:?}");
    assert_eq!(result.evidence.digest.as_deref(), Some(digest.as_str()));
    assert_eq!(result.evidence.status_codes, vec![401, 200]);
    assert!(
        result.evidence.reason.contains("credentials configured"),
        "{}",
        result.evidence.reason
    );
    assert!(!result.evidence.reason.contains(HTPASSWD_PASSWORD));
}

#[tokio::test(flavor = "multi_thread")]
async fn token_registry_grants_public_repositories_and_refuses_private_ones() {
    let tokens = TokenServer::start().await;
    let registry = TestRegistry::token(&tokens).await;
    let host = registry.host();
    // Pushed as the token server's admin.
    let public_digest = registry.push_image("public/app:v1", "token-public");
    registry.push_image("public/app:v2", "token-public-2");
    registry.push_image("private/app:v1", "token-private");

    let settings_dir = tempfile::tempdir().unwrap();
    let settings = load_settings(
        settings_dir.path(),
        &RegistriesFile::new().plain_http(&host),
    );
    let token_requests_before = tokens.requests();
    let (results, requests) = probe(
        settings,
        quick_config(),
        vec![
            target(&format!("{host}/public/app:v1"), &host, "public/app", "v1"),
            target(&format!("{host}/public/app:v2"), &host, "public/app", "v2"),
            target(
                &format!("{host}/private/app:v1"),
                &host,
                "private/app",
                "v1",
            ),
        ],
    )
    .await;

    let public = &results[0];
    assert_eq!(
        public.outcome,
        ProbeOutcome::Public,
        "{public:?}\n{}",
        registry.log()
    );
    assert_eq!(
        public.evidence.digest.as_deref(),
        Some(public_digest.as_str())
    );
    assert_eq!(public.evidence.status_codes, vec![401, 200, 200]);
    let challenge = public.evidence.challenge.as_ref().expect("a challenge");
    assert_eq!(challenge.scheme, "Bearer");
    assert_eq!(challenge.realm.as_deref(), Some(tokens.realm()));
    assert_eq!(challenge.service.as_deref(), Some(TOKEN_SERVICE));
    assert!(
        public.evidence.reason.contains("anonymous pull token"),
        "{}",
        public.evidence.reason
    );
    assert_eq!(results[1].outcome, ProbeOutcome::Public, "{:?}", results[1]);

    let private = &results[2];
    assert_eq!(private.outcome, ProbeOutcome::AuthRequired, "{private:?}");
    assert_eq!(private.evidence.status_codes, vec![401, 401]);
    assert!(
        private.evidence.reason.contains("insufficient_scope"),
        "{}",
        private.evidence.reason
    );

    // One token per repository: public/app's two tags share one; private/app was refused once.
    assert_eq!(tokens.requests() - token_requests_before, 2);
    // /v2/ once, two token requests, two manifest requests (the refused one never gets there).
    assert_eq!(requests, 1 + 2 + 2);

    // With credentials configured for the host, the token request carries them (Basic) and the
    // private repository's token grants the pull.
    let settings = load_settings(
        settings_dir.path(),
        &RegistriesFile::new().route_with_credentials(&host, &registry),
    );
    let (results, _) = probe(
        settings,
        quick_config(),
        vec![target(
            &format!("{host}/private/app:v1"),
            &host,
            "private/app",
            "v1",
        )],
    )
    .await;
    let private = &results[0];
    assert_eq!(private.outcome, ProbeOutcome::Public, "{private:?}");
    assert!(
        private
            .evidence
            .reason
            .contains("obtained with the credentials configured"),
        "{}",
        private.evidence.reason
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_is_reused_until_it_nears_expiry_then_fetched_again() {
    let tokens = TokenServer::start_with_expires_in(5).await;
    let registry = TestRegistry::token(&tokens).await;
    let host = registry.host();
    registry.push_image("public/app:v1", "expiring");
    let settings_dir = tempfile::tempdir().unwrap();
    let settings = load_settings(
        settings_dir.path(),
        &RegistriesFile::new().plain_http(&host),
    );
    let prober = Prober::new(settings, quick_config()).unwrap();
    let probe_target = target(&format!("{host}/public/app:v1"), &host, "public/app", "v1");
    let before = tokens.requests();

    let first = prober
        .probe_all(vec![probe_target.clone(), probe_target.clone()], |_, _| {})
        .await;
    assert!(
        first
            .iter()
            .all(|result| result.outcome == ProbeOutcome::Public),
        "{first:?}"
    );
    assert_eq!(tokens.requests() - before, 1, "one token for both probes");

    // `expires_in: 5`: the token is reused for 4.5 s, then fetched again.
    tokio::time::sleep(std::time::Duration::from_millis(5100)).await;
    let second = prober.probe_all(vec![probe_target], |_, _| {}).await;
    assert_eq!(second[0].outcome, ProbeOutcome::Public, "{second:?}");
    assert_eq!(tokens.requests() - before, 2);
}

/// A token endpoint announcing the largest `expires_in` there is (`u64::MAX` seconds): the token
/// is used, and reused within the hour, instead of the clock's arithmetic overflowing.
#[tokio::test(flavor = "multi_thread")]
async fn a_token_announcing_an_endless_lifetime_is_used() {
    let tokens = TokenServer::start().await;
    let registry = TestRegistry::token(&tokens).await;
    let host = registry.host();
    registry.push_image("public/app:v1", "endless-token");
    tokens.set_expires_in(u64::MAX);
    let settings_dir = tempfile::tempdir().unwrap();
    let settings = load_settings(
        settings_dir.path(),
        &RegistriesFile::new().plain_http(&host),
    );
    let before = tokens.requests();
    let probe_target = target(&format!("{host}/public/app:v1"), &host, "public/app", "v1");
    let (results, _) = probe(
        settings,
        quick_config(),
        vec![probe_target.clone(), probe_target],
    )
    .await;
    assert!(
        results
            .iter()
            .all(|result| result.outcome == ProbeOutcome::Public),
        "{results:?}"
    );
    assert_eq!(tokens.requests() - before, 1, "one token for both probes");
}
