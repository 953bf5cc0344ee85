//! Images in a release: parsing references the way Docker does ([`grammar`]) while keeping them
//! exactly as written ([`reference`](mod@reference)), the user's extra image-field rules for custom resources ([`rules`]),
//! and finding every image with its provenance ([`discovery`]).

pub mod discovery;
pub mod grammar;
pub mod known_images;
pub mod reference;
pub mod rules;
