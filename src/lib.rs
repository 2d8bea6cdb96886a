pub mod config;
pub mod http;
pub mod server;
