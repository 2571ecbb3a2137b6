//! The services this binary knows. The only crate that depends on every service.

use std::sync::Arc;

/// Every service of the platform, in start-up order.
pub fn services() -> Vec<Arc<dyn platform::Service>> {
    vec![
        Arc::new(payments::PaymentsService),
        Arc::new(meals::MealsService),
        Arc::new(gateway::GatewayService),
    ]
}
