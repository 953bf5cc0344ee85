//! The facts the built-in stages record, one module per stage's event, and [`SCHEMAS`], their
//! versions and upcasters. These structs are wire formats stored for ever: add only optional
//! fields; anything else bumps the type's `EventPayload::VERSION` and adds an upcaster here.
//! This module imports no stage: stages import it.

mod base;
mod plan;
mod probe;
mod render;
mod secrets;
mod templates;
mod upcast;

pub use base::*;
pub use plan::*;
pub use probe::*;
pub use render::*;
pub use secrets::*;
pub use templates::*;
pub use windlass_manifest::documents::DocumentClass;

use windlass_state::{EventSchema, Upcaster};

/// The built-in stages' event types.
pub const SCHEMAS: &[EventSchema] = &[
    EventSchema::of::<BaseFetched>(&[
        Upcaster {
            from_version: 1,
            upcast: upcast::unchanged,
        },
        Upcaster {
            from_version: 2,
            upcast: upcast::unchanged,
        },
    ]),
    EventSchema::of::<BaseWritten>(&[Upcaster {
        from_version: 1,
        upcast: upcast::unchanged,
    }]),
    EventSchema::of::<ImagesProbed>(&[Upcaster {
        from_version: 1,
        upcast: upcast::images_probed_v1_to_v2,
    }]),
    EventSchema::of::<OverridesPlanned>(&[]),
    EventSchema::of::<SecretsProvisioned>(&[]),
    EventSchema::of::<MidstreamRendered>(&[]),
];
