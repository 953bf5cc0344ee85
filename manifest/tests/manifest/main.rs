//! The integration tests of `windlass-manifest`: [`reference_grammar`] holds the image-reference
//! parser to `oci-spec`'s, on generated references.

mod reference_grammar;
