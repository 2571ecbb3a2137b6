//! The gateway's rules, without I/O: the SMEV envelope and what the gateway
//! decides from it, participants, and the message log's hash chain.

pub mod chain;
pub mod connection;
pub mod envelope;
pub mod participant;
