//! The `topkart` binary: parse the command line, then serve, migrate, load-test or manage users.

use topkart::cli::{AdminAction, Cli, Command};
use topkart::config::{Settings, StoreSettings};
use topkart::startup::{Application, create_admin};
use topkart::store::Store;

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    topkart::telemetry::init_logging();
    let cli = Cli::parse_args(std::env::args());
    let outcome = match cli.command {
        Command::Serve(settings) => serve(settings).await,
        Command::Migrate(store) => migrate(&store).await,
        Command::Loadtest(args) => topkart::loadtest::run(&args)
            .await
            .map(|_| ())
            .map_err(Into::into),
        Command::Admin {
            store,
            passwords,
            action:
                AdminAction::Create {
                    username,
                    email,
                    password,
                },
        } => create_admin(&store, &passwords, &username, &email, &password.0).await,
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            // Once, on stderr (where the log goes too): a log line and a plain line saying the
            // same thing twice helped nobody.
            eprintln!(
                "topkart: {}",
                topkart::telemetry::error_chain(error.as_ref())
            );
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> Result<(), Box<dyn std::error::Error>> {
    let app = Application::build(settings).await?;
    // Tests and scripts read this line to find the port when binding to port 0.
    println!("topkart listening on http://{}", app.address());
    app.run_until_stopped().await?;
    Ok(())
}

async fn migrate(settings: &StoreSettings) -> Result<(), Box<dyn std::error::Error>> {
    let store = Store::connect(&settings.database_url, 1).await?;
    store.migrate().await?;
    println!("migrations applied to the {} store", store.backend_name());
    Ok(())
}
