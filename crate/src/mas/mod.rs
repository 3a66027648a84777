//! MAS's HTTP API as the core uses it: the admin API's registration-token
//! operations and the OAuth2 token endpoint.

pub mod admin;
pub mod discovery;
pub mod error;
pub mod model;
pub mod oauth;
