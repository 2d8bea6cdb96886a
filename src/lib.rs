pub mod auth;
pub mod config;
pub mod http;
pub mod listener;
pub mod relay;
pub mod rtsp;
pub mod server;
