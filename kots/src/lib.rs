//! The KOTS model: what windlass knows about KOTS releases, kept apart from the stages that use it.
//! [`classify()`] says which documents of a release KOTS reads itself and never deploys (and which
//! of them a release may hold only once), [`license`] is the one reader of KOTS license files (the
//! install and the proxy both use it), and [`resources`] has the KOTS custom resources windlass
//! reads as typed structs. This crate knows nothing about stages, events or the proxy's store.

pub mod classify;
pub mod license;
pub mod license_fields;
pub mod resources;

pub use classify::{
    Classification, KOTS_API_VERSIONS, classify, helm_chart_release_name, is_single_instance,
};
pub use license::{LicenseError, LicenseFile, MAX_LICENSE_BYTES, parse_license, read_license_file};
pub use license_fields::license_fields;
pub use resources::{
    Application, ChartIdentifier, Config, ConfigValues, HelmChartV1Beta1, HelmChartV1Beta2,
    Installation, LicenseResource, ObjectMeta, OptionalValues, yaml_1_1_bool,
};
