//! Tests of the test API server. It is a fake Kubernetes API server: no real one can run on
//! these machines (no package ships kube-apiserver), so its behaviour is checked against the
//! scenarios of structured-merge-diff's merge tests (`merge_cases.rs`, data in
//! `tests/merge_cases.yaml`) and against the real kubectl 1.33 driving it (`kubectl.rs`).

mod http;
mod kubectl;
mod merge_cases;
