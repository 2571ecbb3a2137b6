//! Every message that crosses between services, in one place: its routing key
//! (topic), its kind with version, its body, and the queues that consume it.
//! A service never imports another service's crate; it imports these types.
//!
//! Versioning: a breaking change to a body is a new type with a new `KIND`
//! (`….v2`) and topic; the old one stays until no producer sends it.

use serde::{de::DeserializeOwned, Serialize};

/// A message body that crosses the bus.
pub trait Contract: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// Routing key on the topic exchange: `<producer>.<event>.v<version>`.
    const TOPIC: &'static str;
    /// Type name and version, carried as the AMQP `type` property.
    const KIND: &'static str;
}

/// A durable queue some service consumes, with the topics bound to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueDef {
    pub queue: &'static str,
    pub bindings: &'static [&'static str],
    /// The service that consumes it.
    pub consumer: &'static str,
}

/// Every consumer queue of the platform. Each service declares all of them at
/// start-up, before its relay publishes anything, so no event is dropped for want
/// of a queue, whichever service starts first.
pub fn topology() -> Vec<QueueDef> {
    let mut all = Vec::new();
    all.extend_from_slice(payments::QUEUES);
    all.push(meals::DEBITS_QUEUE);
    all.push(meals::ACCOUNTS_QUEUE);
    all.extend_from_slice(meals::QUEUES);
    all.extend_from_slice(gateway::QUEUES);
    all.push(gateway::REGISTRY_DELIVERIES);
    all.push(gateway::PAYMENTS_CALLS);
    all.push(gateway::MEALS_CALLS);
    all.push(meals::CLASS_REQUESTS_QUEUE);
    all
}

pub mod gateway;
pub mod meals;
pub mod payments;
pub mod school;
