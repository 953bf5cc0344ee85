//! The license an install runs with: read by the one License reader ([`windlass_kots::license`],
//! which the proxy uses too) and fingerprinted here. The license ID is a credential: it is wrapped
//! in a [`windlass_state::SecretString`] the moment it is read, errors never quote it, and only its
//! keyed fingerprint leaves this module in anything that is recorded.

use std::path::Path;

use windlass_engine::License;
use windlass_state::FingerprintKey;

pub use windlass_kots::LicenseError;

/// The fingerprint purpose for license IDs.
pub const LICENSE_ID_PURPOSE: &str = "license-id";

/// Reads the license file at `path` and fingerprints its ID with `key`.
pub fn read_license(path: &Path, key: &FingerprintKey) -> Result<License, LicenseError> {
    let license = windlass_kots::read_license_file(path)?;
    let fingerprint = key.fingerprint(LICENSE_ID_PURPOSE, &license.license_id);
    Ok(License {
        app_slug: license.app_slug,
        license_id: license.license_id,
        sequence: license.sequence,
        expires_at: license.expires_at,
        fingerprint,
        fields: license.fields,
    })
}
