pub mod config;
pub mod http;
pub mod listener;
pub mod relay;
pub mod server;
