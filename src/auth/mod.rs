//! Authentication primitives shared by the services: password hashing and secret tokens.

pub mod passwords;
pub mod tokens;
