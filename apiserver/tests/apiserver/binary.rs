//! The `windlass-test-apiserver` binary, run as a process and driven by the real kubectl.
