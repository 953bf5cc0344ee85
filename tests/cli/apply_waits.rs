//! `--target kube` against `windlass-test-apiserver` (a FAKE Kubernetes API server: no real one can
//! be installed on these machines): the foundation waits' failures and the status informers of every kind.

#[allow(unused_imports)]
use super::apply_kube::*;
