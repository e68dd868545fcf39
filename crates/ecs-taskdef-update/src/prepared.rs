//! A service after `prepare`: its plan, its state before the deploy, the base and the rendered
//! task definition, the image digests checked.

use std::collections::BTreeMap;

use crate::api::ServiceState;
use crate::service_plan::ServicePlan;
use crate::taskdef::RegisterInput;

/// A service after rendering.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The plan.
    pub plan: ServicePlan,
    /// The service as it was.
    pub before: ServiceState,
    /// Base task definition (register form).
    pub base: RegisterInput,
    /// Rendered task definition.
    pub rendered: RegisterInput,
    /// Image -> digest.
    pub image_digests: BTreeMap<String, String>,
    /// `register: false`: the ARN of the existing revision to deploy.
    pub existing: Option<String>,
}
