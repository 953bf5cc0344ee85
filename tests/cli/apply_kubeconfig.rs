//! `--target kube` against `windlass-test-apiserver` (a FAKE Kubernetes API server: no real one can
//! be installed on these machines): how `--target kube[:CONTEXT]` finds its kubeconfig and context.

#[allow(unused_imports)]
use super::apply_kube::*;
