//! The `topkart` binary: parse the configuration, then serve, migrate or manage users.

use clap::Parser;
use topkart::config::{AdminAction, Cli, Command};
use topkart::startup::{Application, create_admin};
use topkart::store::Store;

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    topkart::telemetry::init_logging();
    let cli = Cli::parse();
    let outcome = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(cli.settings).await,
        Command::Migrate => migrate(&cli.settings).await,
        Command::Loadtest(args) => topkart::loadtest::run(&args)
            .await
            .map(|_| ())
            .map_err(Into::into),
        Command::Admin {
            action:
                AdminAction::Create {
                    username,
                    email,
                    password,
                },
        } => create_admin(&cli.settings, &username, &email, &password.0).await,
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = %topkart::store::error_chain(error.as_ref()), "topkart failed");
            eprintln!("topkart: {}", topkart::store::error_chain(error.as_ref()));
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(settings: topkart::config::Settings) -> Result<(), Box<dyn std::error::Error>> {
    let app = Application::build(settings).await?;
    // Tests and scripts read this line to find the port when binding to port 0.
    println!("topkart listening on http://{}", app.address());
    app.run_until_stopped().await?;
    Ok(())
}

async fn migrate(settings: &topkart::config::Settings) -> Result<(), Box<dyn std::error::Error>> {
    let store = Store::connect(&settings.database_url, 1).await?;
    store.migrate().await?;
    println!("migrations applied to the {} store", store.backend_name());
    Ok(())
}
