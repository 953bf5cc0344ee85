//! A Docker-Hub-like token server written for tests (no packaged one exists): it signs ES256
//! JWTs with `x5c` headers that the real registry (`auth: token`) verifies against its
//! `rootcertbundle`. Anonymous callers get pull access to repositories under `public/` and a 401
//! `insufficient_scope` for anything else; the admin (Basic credentials) gets what it asks for.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;

use crate::certs::token_signing_identity;
use crate::registry::{Credentials, RegistryAuth};
use crate::server_task::ServerTask;

/// The `service` tokens are issued for and the registry's challenge names.
pub const TOKEN_SERVICE: &str = "windlass-test-registry";
/// The issuer tokens name.
pub const TOKEN_ISSUER: &str = "windlass-test-issuer";
/// The token server's admin, who is granted every action asked for (Basic credentials).
pub const TOKEN_ADMIN_USERNAME: &str = "admin";
/// The password of [`TOKEN_ADMIN_USERNAME`].
pub const TOKEN_ADMIN_PASSWORD: &str = "admin-password";

/// A running token server on 127.0.0.1 (`GET /token`); stops when dropped.
#[derive(Debug)]
pub struct TokenServer {
    realm: String,
    root_certificate: PathBuf,
    requests: Arc<AtomicUsize>,
    expires_in: Arc<AtomicU64>,
    _task: ServerTask,
    _directory: tempfile::TempDir,
}

struct Issuing {
    realm: String,
    encoding_key: jsonwebtoken::EncodingKey,
    certificate_der_base64: String,
    requests: Arc<AtomicUsize>,
    next_id: AtomicUsize,
    expires_in: Arc<AtomicU64>,
}

#[derive(Serialize)]
struct Claims {
    iss: &'static str,
    sub: String,
    aud: &'static str,
    exp: u64,
    nbf: u64,
    iat: u64,
    jti: String,
    access: Vec<Access>,
}

#[derive(Serialize)]
struct Access {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    actions: Vec<String>,
}

impl TokenServer {
    /// Starts the server on 127.0.0.1 with a fresh signing key; tokens say `expires_in: 300`.
    /// [`crate::TestRegistry::token`] starts a registry trusting it.
    pub async fn start() -> TokenServer {
        TokenServer::start_with_expires_in(300).await
    }

    /// Starts the server with tokens announcing `expires_in` seconds (the JWTs themselves stay
    /// valid for 300 s, so the registry accepts them either way).
    pub async fn start_with_expires_in(expires_in: u64) -> TokenServer {
        let directory = tempfile::tempdir().expect("temporary directory");
        let identity = token_signing_identity();
        let root_certificate = directory.path().join("token-root.pem");
        std::fs::write(&root_certificate, &identity.certificate_pem).expect("write root cert");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind token server");
        let address: SocketAddr = listener.local_addr().expect("token server address");
        let realm = format!("http://{address}/token");
        let requests = Arc::new(AtomicUsize::new(0));
        let expires_in = Arc::new(AtomicU64::new(expires_in));
        let issuing = Arc::new(Issuing {
            realm: realm.clone(),
            encoding_key: jsonwebtoken::EncodingKey::from_ec_pem(identity.key_pem.as_bytes())
                .expect("load signing key"),
            certificate_der_base64: STANDARD.encode(&identity.certificate_der),
            requests: Arc::clone(&requests),
            next_id: AtomicUsize::new(0),
            expires_in: Arc::clone(&expires_in),
        });
        let app = axum::Router::new()
            .route("/token", axum::routing::get(issue))
            .with_state(issuing);
        let task = ServerTask::spawn(async move {
            axum::serve(listener, app).await.expect("token server");
        });
        TokenServer {
            realm,
            root_certificate,
            requests,
            expires_in,
            _task: task,
            _directory: directory,
        }
    }

    /// `http://127.0.0.1:<port>/token`, the realm of the registry's challenge.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// The certificate (PEM) whose key signs the tokens.
    pub fn root_certificate(&self) -> &Path {
        &self.root_certificate
    }

    /// The authentication of a registry that trusts this server's tokens.
    pub fn registry_auth(&self) -> RegistryAuth {
        RegistryAuth::Token {
            realm: self.realm.clone(),
            service: TOKEN_SERVICE.to_owned(),
            issuer: TOKEN_ISSUER.to_owned(),
            root_certificate: self.root_certificate.clone(),
        }
    }

    /// The admin's credentials ([`TOKEN_ADMIN_USERNAME`], [`TOKEN_ADMIN_PASSWORD`]).
    pub fn admin_credentials(&self) -> Credentials {
        Credentials::new(TOKEN_ADMIN_USERNAME, TOKEN_ADMIN_PASSWORD)
    }

    /// Makes the tokens issued from now on announce `expires_in` seconds (`skopeo`, which pushes
    /// the test images, refuses lifetimes beyond Go's `int`, so a test of such a lifetime sets it
    /// after pushing).
    pub fn set_expires_in(&self, expires_in: u64) {
        self.expires_in.store(expires_in, Ordering::SeqCst);
    }

    /// Token requests answered so far (granted or refused).
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

fn is_admin(headers: &HeaderMap) -> bool {
    let expected = format!(
        "Basic {}",
        STANDARD.encode(format!("{TOKEN_ADMIN_USERNAME}:{TOKEN_ADMIN_PASSWORD}"))
    );
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value == expected)
}

async fn issue(
    State(issuing): State<Arc<Issuing>>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    issuing.requests.fetch_add(1, Ordering::SeqCst);
    let admin = is_admin(&headers);
    if headers.contains_key(header::AUTHORIZATION) && !admin {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let mut access = Vec::new();
    for (key, scope) in &query {
        if key != "scope" {
            continue;
        }
        // repository:<name>:<actions>
        let mut parts = scope.splitn(2, ':');
        let kind = parts.next().unwrap_or_default();
        let rest = parts.next().unwrap_or_default();
        let Some((name, actions)) = rest.rsplit_once(':') else {
            return StatusCode::BAD_REQUEST.into_response();
        };
        let requested: Vec<String> = actions.split(',').map(str::to_owned).collect();
        let granted: Vec<String> = if admin {
            requested
        } else if name.starts_with("public/") {
            requested
                .into_iter()
                .filter(|action| action == "pull")
                .collect()
        } else {
            let challenge = format!(
                r#"Bearer realm="{}",service="{TOKEN_SERVICE}",scope="{scope}",error="insufficient_scope""#,
                issuing.realm
            );
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, challenge)],
                axum::Json(serde_json::json!({"errors": [{"code": "UNAUTHORIZED", "message": "anonymous pull refused"}]})),
            )
                .into_response();
        };
        access.push(Access {
            kind: kind.to_owned(),
            name: name.to_owned(),
            actions: granted,
        });
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    let claims = Claims {
        iss: TOKEN_ISSUER,
        sub: if admin {
            TOKEN_ADMIN_USERNAME.to_owned()
        } else {
            String::new()
        },
        aud: TOKEN_SERVICE,
        exp: now + 300,
        nbf: now - 10,
        iat: now,
        jti: format!("token-{}", issuing.next_id.fetch_add(1, Ordering::SeqCst)),
        access,
    };
    let mut jwt_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    jwt_header.x5c = Some(vec![issuing.certificate_der_base64.clone()]);
    let token =
        jsonwebtoken::encode(&jwt_header, &claims, &issuing.encoding_key).expect("sign token");
    axum::Json(
        serde_json::json!({"token": token, "access_token": token, "expires_in": issuing.expires_in.load(Ordering::SeqCst)}),
    )
        .into_response()
}
