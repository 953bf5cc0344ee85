//! `windlass-apply` is the last stage of the pipeline: applying the rendered objects. The
//! [`stage`] reads what `render_midstream` wrote ([`source`]), orders it ([`order`]: pull secrets;
//! CRDs, Namespaces and ClusterRoles, waited for; `*Class` kinds; the rest — by creation phase and
//! KOTS's kind order) and sends it to a [`target`]: a directory of one file per object in apply
//! order ([`dir`]), or a cluster by server-side apply as field manager `windlass`
//! ([`kube_apply`], over [`cluster`]), with waits and the app state ([`health`]) and a prune of what
//! the previous install of the app (and any apply of it since that never completed) applied and this
//! one does not ([`prune_candidates`]). What it does is recorded as it
//! goes ([`events`]), so a killed apply resumes without sending again what was recorded. The
//! engine knows nothing of this crate: the binary registers [`stage::kind`] and injects
//! [`cluster::KubeClients`] as the Kubernetes client factory; [`apply_install`] applies an install
//! rendered earlier (`windlass apply INSTALL_ID`), or removes its app from a cluster
//! (`windlass undeploy INSTALL_ID`: the same stage applying nothing and pruning everything).

pub mod apply_install;
pub mod cluster;
pub mod credentials_in_text;
pub mod dir;
pub mod events;
pub mod health;
pub mod helm_pending;
pub mod helm_release;
mod helm_step;
pub mod hook_jobs;
pub mod kube_apply;
pub mod order;
pub mod prune_candidates;
mod redact;
pub mod source;
pub mod stage;
pub mod target;
mod undeploy;
pub mod view;

pub use events::SCHEMAS;
pub use stage::{ApplyConfig, kind, pipeline_stage};
pub use target::Target;
