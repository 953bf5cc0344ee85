//! `--target kube` against `windlass-test-apiserver` (a FAKE Kubernetes API server: no real one can
//! be installed on these machines): the order of what windlass sends, and its retries.

#[allow(unused_imports)]
use super::apply_kube::*;
