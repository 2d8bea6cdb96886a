//! `r58`: the R58 recorder's media server.

use r58::config::{Command, Config};

#[tokio::main]
async fn main() {
    let config = Config::load_or_exit();
    match &config.command {
        Some(Command::Cameras) => {
            print!(
                "{}",
                sfu::capture::v4l2_list::format_listing(&sfu::capture::v4l2_list::list_devices())
            );
            return;
        }
        Some(Command::User { action }) => match r58::auth::cli::run(action, &config.access) {
            Ok(done) => {
                println!("{done}");
                return;
            }
            Err(e) => {
                eprintln!("r58 user: {e}");
                std::process::exit(1);
            }
        },
        Some(Command::CheckConfig { .. }) => match r58::cli::check_config(&config) {
            Ok(line) => {
                println!("r58: {line}");
                return;
            }
            Err(e) => {
                // The same line and code as a server that stops on this configuration.
                eprintln!("r58: {e}");
                std::process::exit(2);
            }
        },
        None => {}
    }
    let mut filter = config.log_filter();
    if !config.log_level.contains("rtc_dtls") {
        // rtc-dtls warns about every ClientHello extension it does not know (browsers send
        // several per handshake); keep its errors only unless asked for more.
        if let Ok(directive) = "rtc_dtls=error".parse() {
            filter = filter.add_directive(directive);
        }
    }
    tracing_subscriber::fmt().with_env_filter(filter).init();
    if let Err(e) = r58::server::run(config).await {
        eprintln!("r58: {e}");
        std::process::exit(1);
    }
}
