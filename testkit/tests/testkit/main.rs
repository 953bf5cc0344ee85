//! The one integration-test binary of `windlass-testkit`: it checks the helpers other suites rely
//! on against the real tools they drive. [`kube_tools`] runs the real `kubectl kustomize` and
//! `helm template` (installed by `scripts/install-kube-tools.sh`) on tiny overlays and charts
//! written here, and checks that `assert_same_objects` catches what it should.

mod kube_tools;
