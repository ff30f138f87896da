//! `bro dev`: development identities and certificates for trying bro out and
//! for tests — an identity provider key with its JWKS and tokens, and a
//! private CA with server and client certificates. Never for production.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use bro_dev::{DEV_AUDIENCE, DEV_ISSUER, DevCertificates, DevClaims, DevIdentityProvider};
use bro_server::access::{Assurance, Role};

/// What `bro dev` does.
#[derive(clap::Subcommand)]
pub enum DevCommand {
    /// Write an identity provider key, its JWKS (`jwks.json`) and a
    /// configuration snippet into DIR (the key is kept and reused).
    Identities {
        /// The directory.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print a token of the development identity provider in DIR.
    Token {
        /// The directory of `bro dev identities`.
        #[arg(long)]
        dir: PathBuf,
        /// caseworker, auditor or administrator; or a system's client id with --client.
        #[arg(long, default_value = "caseworker")]
        role: String,
        /// The municipality (CVR).
        #[arg(long, default_value = "29189846")]
        cvr: String,
        /// The subject.
        #[arg(long, default_value = "dev-user")]
        subject: String,
        /// A system's client-credentials token for this client id instead.
        #[arg(long)]
        client: Option<String>,
        /// Lifetime in minutes.
        #[arg(long, default_value_t = 60)]
        minutes: u64,
    },
    /// Write a private CA, a server certificate for localhost and a client
    /// certificate per system into DIR, and print the fingerprints to pin.
    Certs {
        /// The directory.
        #[arg(long)]
        out: PathBuf,
        /// Systems to make client certificates for.
        #[arg(long = "system")]
        systems: Vec<String>,
    },
}

/// Runs a `bro dev` command.
#[allow(clippy::print_stdout)]
pub fn run(command: &DevCommand) -> anyhow::Result<()> {
    match command {
        DevCommand::Identities { out } => {
            let idp = DevIdentityProvider::load_or_create(out)?;
            let jwks = out.join("jwks.json");
            std::fs::write(&jwks, idp.jwks()).with_context(|| format!("cannot write {}", jwks.display()))?;
            println!(
                "# bro.toml\n[identity]\nissuer = \"{DEV_ISSUER}\"\naudience = \"{DEV_AUDIENCE}\"\njwks_file = \"{}\"",
                jwks.display()
            );
        }
        DevCommand::Token { dir, role, cvr, subject, client, minutes } => {
            let idp = DevIdentityProvider::load_or_create(dir)?;
            let valid_for = Duration::from_secs(minutes * 60);
            let token = match client {
                Some(client) => idp.client_token(client, valid_for),
                None => {
                    let role = Role::ALL
                        .into_iter()
                        .find(|r| r.as_str() == role)
                        .with_context(|| format!("--role {role:?} is not caseworker, auditor or administrator"))?;
                    idp.token(&DevClaims {
                        subject: subject.clone(),
                        municipality: Some(cvr.clone()),
                        roles: vec![role],
                        assurance: Assurance::Substantial,
                        valid_for,
                    })
                }
            };
            println!("{token}");
        }
        DevCommand::Certs { out, systems } => {
            let names: Vec<&str> = systems.iter().map(String::as_str).collect();
            let certs = DevCertificates::generate(&names).context("cannot make certificates")?;
            std::fs::create_dir_all(out)?;
            std::fs::write(out.join("ca.pem"), &certs.ca)?;
            std::fs::write(out.join("server.pem"), &certs.server.cert)?;
            bro_store::write_private(&out.join("server.key"), &certs.server.key)?;
            println!(
                "# bro.toml\n[tls]\ncertificate = \"{0}/server.pem\"\nkey = \"{0}/server.key\"\nclient_ca = \"{0}/ca.pem\"",
                out.display()
            );
            for (name, pair) in &certs.clients {
                std::fs::write(out.join(format!("{name}.pem")), &pair.cert)?;
                bro_store::write_private(&out.join(format!("{name}.key")), &pair.key)?;
                println!("# [[systems]] name = \"{name}\": certificate_sha256 = [\"{}\"]", pair.sha256);
            }
        }
    }
    Ok(())
}
