//! Protobuf request bodies as client-go's typed clients send them (Helm 4 stores its releases
//! this way): the bodies are encoded here by a small protobuf writer of the test's own (the
//! field numbers of Kubernetes' `generated.proto` files, each string written even when empty and
//! a zero `creationTimestamp`, as Go's encoder does, and a field the server does not read),
//! sent as `application/vnd.kubernetes.protobuf`, and read back as JSON. The server is a fake
//! API server because no real one can run here.

use std::time::Duration;

use reqwest::{Client, Method, StatusCode};
use serde_json::Value;
use windlass_test_apiserver::{Options, TestApiServer};

/// A protobuf message being written.
#[derive(Default, Clone)]
struct Message(Vec<u8>);

fn push_varint(bytes: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            bytes.push(byte);
            return;
        }
        bytes.push(byte | 0x80);
    }
}

impl Message {
    fn varint(mut self, number: u64, value: u64) -> Message {
        push_varint(&mut self.0, number << 3);
        push_varint(&mut self.0, value);
        self
    }

    fn bytes(mut self, number: u64, value: &[u8]) -> Message {
        push_varint(&mut self.0, (number << 3) | 2);
        push_varint(&mut self.0, value.len() as u64);
        self.0.extend_from_slice(value);
        self
    }

    fn string(self, number: u64, value: &str) -> Message {
        self.bytes(number, value.as_bytes())
    }

    fn message(self, number: u64, value: Message) -> Message {
        self.bytes(number, &value.0)
    }

    /// A `map<string, string|bytes>` entry.
    fn entry(self, number: u64, key: &str, value: &[u8]) -> Message {
        self.message(number, Message::default().string(1, key).bytes(2, value))
    }

    /// A fixed 64-bit field (wire type 1), which the server skips.
    fn fixed64(mut self, number: u64, value: u64) -> Message {
        push_varint(&mut self.0, (number << 3) | 1);
        self.0.extend_from_slice(&value.to_le_bytes());
        self
    }
}

const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

/// `k8s\0` and a `runtime.Unknown` {typeMeta = 1 {apiVersion = 1, kind = 2}, raw = 2,
/// contentEncoding = 3, contentType = 4}.
fn envelope(api_version: &str, kind: &str, raw: Message) -> Vec<u8> {
    let unknown = Message::default()
        .message(1, Message::default().string(1, api_version).string(2, kind))
        .message(2, raw)
        .string(3, "")
        .string(4, "");
    let mut body = b"k8s\0".to_vec();
    body.extend(unknown.0);
    body
}

/// `ObjectMeta` as Go writes it: name = 1, generateName = 2, namespace = 3, selfLink = 4,
/// uid = 5, resourceVersion = 6, generation = 7, creationTimestamp = 8 {seconds = 1, nanos = 2},
/// deletionGracePeriodSeconds = 10 (not read by the server), labels = 11.
fn meta(name: &str, resource_version: &str, labels: &[(&str, &str)]) -> Message {
    let mut meta = Message::default()
        .string(1, name)
        .string(2, "")
        .string(3, "")
        .string(4, "")
        .string(5, "")
        .string(6, resource_version)
        .varint(7, 0)
        .message(8, Message::default().varint(1, 0).varint(2, 0))
        .varint(10, 30);
    for (key, value) in labels {
        meta = meta.entry(11, key, value.as_bytes());
    }
    meta
}

/// `Secret`: metadata = 1, data = 2, type = 3; plus a fixed64 field 99 nobody reads.
fn secret(meta: Message) -> Message {
    Message::default()
        .message(1, meta)
        .entry(2, "release", b"H4sI\x00binary")
        .string(3, "helm.sh/release.v1")
        .fixed64(99, 7)
}

/// `DeleteOptions`: preconditions = 2 {uid = 1}, propagationPolicy = 4.
fn delete_options(uid: &str) -> Message {
    Message::default()
        .message(2, Message::default().string(1, uid))
        .string(4, "Background")
}

async fn send(
    server: &TestApiServer,
    method: Method,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let request = Client::new()
        .request(method, format!("{}{path}", server.url()))
        .header("Content-Type", content_type)
        .header(
            "Accept",
            "application/vnd.kubernetes.protobuf, application/json",
        )
        .body(body);
    let response = tokio::time::timeout(Duration::from_secs(10), request.send())
        .await
        .expect("answered in time")
        .expect("request sent");
    let status = response.status();
    let text = response.text().await.expect("body read");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

const SECRETS: &str = "/api/v1/namespaces/default/secrets";

/// Fake API server (no real one can run here): a Secret created, updated and deleted with
/// protobuf bodies, as Helm 4's release storage writes it, reads back as the JSON object it
/// encodes; fields the server does not declare are skipped, empty strings and the zero time Go
/// always writes are left out.
#[tokio::test]
async fn a_protobuf_secret_is_created_updated_and_deleted() {
    let server = TestApiServer::start(Options::default()).expect("the test API server starts");
    let (status, created) = send(
        &server,
        Method::POST,
        SECRETS,
        PROTOBUF,
        envelope(
            "v1",
            "Secret",
            secret(meta(
                "sh.helm.release.v1.web.v1",
                "",
                &[("owner", "helm"), ("name", "web"), ("status", "deployed")],
            )),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created:#}");
    assert_eq!(created["metadata"]["name"], "sh.helm.release.v1.web.v1");
    assert_eq!(created["metadata"]["namespace"], "default");
    assert_eq!(created["metadata"]["labels"]["owner"], "helm");
    assert_eq!(created["type"], "helm.sh/release.v1");
    // base64 of the bytes sent.
    assert_eq!(created["data"]["release"], "SDRzSQBiaW5hcnk=");
    assert!(created["metadata"].get("generateName").is_none());
    assert!(
        created["metadata"]["uid"]
            .as_str()
            .is_some_and(|uid| !uid.is_empty())
    );

    let listed = Client::new()
        .get(format!(
            "{}{SECRETS}?labelSelector=owner%3Dhelm",
            server.url()
        ))
        .send()
        .await
        .expect("list")
        .json::<Value>()
        .await
        .expect("JSON list");
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(1));

    let version = created["metadata"]["resourceVersion"].as_str().unwrap();
    let (status, replaced) = send(
        &server,
        Method::PUT,
        &format!("{SECRETS}/sh.helm.release.v1.web.v1"),
        PROTOBUF,
        envelope(
            "v1",
            "Secret",
            secret(meta(
                "sh.helm.release.v1.web.v1",
                version,
                &[("owner", "helm"), ("name", "web"), ("status", "superseded")],
            )),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{replaced:#}");
    assert_eq!(replaced["metadata"]["labels"]["status"], "superseded");
    assert_eq!(replaced["metadata"]["uid"], created["metadata"]["uid"]);

    // A DeleteOptions body whose precondition names another uid is honoured (409).
    let (status, refused) = send(
        &server,
        Method::DELETE,
        &format!("{SECRETS}/sh.helm.release.v1.web.v1"),
        PROTOBUF,
        envelope("meta.k8s.io/v1", "DeleteOptions", delete_options("not-it")),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused:#}");
    let uid = created["metadata"]["uid"].as_str().unwrap().to_string();
    let (status, deleted) = send(
        &server,
        Method::DELETE,
        &format!("{SECRETS}/sh.helm.release.v1.web.v1"),
        PROTOBUF,
        envelope("meta.k8s.io/v1", "DeleteOptions", delete_options(&uid)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{deleted:#}");
}

/// Fake API server: a protobuf ConfigMap (`HELM_DRIVER=configmap`) keeps its text and binary data.
#[tokio::test]
async fn a_protobuf_config_map_keeps_text_and_binary_data() {
    let server = TestApiServer::start(Options::default()).expect("the test API server starts");
    // ConfigMap: metadata = 1, data = 2, binaryData = 3.
    let config_map = Message::default()
        .message(1, meta("settings", "", &[]))
        .entry(2, "mode", b"fast")
        .entry(3, "blob", &[0, 1, 2]);
    let (status, created) = send(
        &server,
        Method::POST,
        "/api/v1/namespaces/default/configmaps",
        PROTOBUF,
        envelope("v1", "ConfigMap", config_map),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created:#}");
    assert_eq!(created["data"]["mode"], "fast");
    assert_eq!(created["binaryData"]["blob"], "AAEC");
    assert!(created["metadata"].get("labels").is_none());
}

/// Fake API server: protobuf bodies of other kinds, or not in the envelope, are refused with 415
/// naming what is decoded; a Secret sent to the configmaps collection is a 400.
#[tokio::test]
async fn other_protobuf_bodies_are_refused() {
    let server = TestApiServer::start(Options::default()).expect("the test API server starts");
    let (status, error) = send(
        &server,
        Method::POST,
        "/apis/apps/v1/namespaces/default/deployments",
        PROTOBUF,
        envelope("apps/v1", "Deployment", Message::default()),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{error:#}");
    assert_eq!(error["reason"], "UnsupportedMediaType");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains(
            "decodes protobuf bodies only for creates and updates of core/v1 secrets and configmaps"
        ) && message.contains("deployments.apps"),
        "{message}"
    );

    let (status, error) = send(&server, Method::POST, SECRETS, PROTOBUF, b"{}".to_vec()).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{error:#}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("not a Kubernetes protobuf envelope"),
        "{error:#}"
    );

    let (status, error) = send(
        &server,
        Method::POST,
        SECRETS,
        PROTOBUF,
        envelope("v1", "Pod", Message::default()),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{error:#}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("send Pod (v1) as application/json"),
        "{error:#}"
    );

    let (status, error) = send(
        &server,
        Method::POST,
        "/api/v1/namespaces/default/configmaps",
        PROTOBUF,
        envelope("v1", "Secret", secret(meta("x", "", &[]))),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error:#}");
}
