//! `--target kube` against `windlass-test-apiserver` (a FAKE Kubernetes API server: no real one can
//! be installed on these machines): the prune guards (uid and ownership re-read), the empty-prune refusal and the records of failed objects.

#[allow(unused_imports)]
use super::apply_kube::*;
