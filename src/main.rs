//! `r58`: the R58 recorder's media server.

use r58::config::Config;

#[tokio::main]
async fn main() {
    let config = Config::load_or_exit();
    tracing_subscriber::fmt()
        .with_env_filter(config.log_filter())
        .init();
    if let Err(e) = r58::server::run(config).await {
        eprintln!("r58: {e}");
        std::process::exit(1);
    }
}
