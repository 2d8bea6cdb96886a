pub mod config;
pub mod http;
pub mod listener;
pub mod server;
