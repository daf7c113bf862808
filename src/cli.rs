//! The command line: one subcommand per job, each taking only its own options.

use clap::{CommandFactory, Parser, Subcommand};

use crate::config::{PasswordSettings, Secret, Settings, StoreSettings};

/// Topkart: a flash-sale (lightning deal) engine.
#[derive(Debug, Parser)]
#[command(name = "topkart", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the engine (the default: `topkart` alone, or with serve's options, runs it).
    Serve(Settings),
    /// Apply the store's migrations and exit.
    Migrate(StoreSettings),
    /// Drive real HTTP load at a running Topkart and verify it afterwards.
    Loadtest(crate::loadtest::LoadtestArgs),
    /// Manage users from the command line.
    Admin {
        #[command(flatten)]
        store: StoreSettings,
        #[command(flatten)]
        passwords: PasswordSettings,
        #[command(subcommand)]
        action: AdminAction,
    },
}

impl Cli {
    /// Parses the command line; with no command (or only serve's options) it is `serve`, so
    /// `topkart` alone runs the engine. `--help` and `--version` alone stay the program's own.
    pub fn parse_args(args: impl IntoIterator<Item = String>) -> Self {
        let mut args: Vec<String> = args.into_iter().collect();
        let first = args.get(1).map(String::as_str);
        let names_a_command = first.is_some_and(|arg| {
            Self::command()
                .get_subcommands()
                .any(|command| command.get_name() == arg)
                || matches!(arg, "help" | "--help" | "-h" | "--version" | "-V")
        });
        if !names_a_command {
            args.insert(1.min(args.len()), "serve".to_owned());
        }
        Self::parse_from(args)
    }
}

#[derive(Debug, Subcommand)]
pub enum AdminAction {
    /// Create an admin user.
    Create {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: String,
        #[arg(long, env = "TOPKART_NEW_ADMIN_PASSWORD", hide_env_values = true)]
        password: Secret,
    },
}

impl Settings {
    /// The settings as if no flag were given (environment variables still apply).
    pub fn defaults() -> Self {
        match Cli::parse_from(["topkart", "serve"]).command {
            Command::Serve(settings) => settings,
            _ => unreachable!("`topkart serve` parses as the serve command"),
        }
    }
}
