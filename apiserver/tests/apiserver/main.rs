//! Tests of the test API server. It is a fake Kubernetes API server: no real one can run on
//! these machines (no package ships kube-apiserver), so its behaviour is checked against the
//! scenarios of structured-merge-diff's merge tests (`merge_cases.rs`, data in
//! `tests/merge_cases.yaml`), against the real kubectl 1.33 driving it (`kubectl.rs`, and the
//! binary run as a process in `binary.rs`), with protobuf bodies built with prost as client-go
//! sends them (`protobuf.rs`), and over raw HTTP: routes and answers (`http.rs`), the write
//! path's rules (`writes.rs`), deletes, their propagation and the controllers (`deletes.rs`).

mod binary;
mod deletes;
mod http;
mod kubectl;
mod merge_cases;
mod protobuf;
mod writes;
