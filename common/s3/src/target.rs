//! Targets: `PROFILE:s3://BUCKET/KEY` is an S3 URL reached through one profile of the
//! shared AWS config and credentials files (the way the AWS tools name a profile) and
//! nothing else: its endpoint (`endpoint_url`), region and credentials (keys, a credential
//! process, a role) come from that profile only, so that several vendors can be named on
//! one command line. The `AWS_*` variables and `--endpoint-url`, `--region`, `--profile`
//! apply to plain `s3://` URLs. `AWS_CONFIG_FILE` and `AWS_SHARED_CREDENTIALS_FILE` say
//! where the files are. The syntax is `sol_common::target`'s.

use aws_config::profile::{ProfileFileCredentialsProvider, ProfileSet};
use aws_types::os_shim_internal::{Env, Fs};

pub use sol_common::target::{split, valid_profile};

/// What a profile says about the connection.
pub struct Profiled {
    /// `endpoint_url` as given and as messages show it (None: AWS).
    pub endpoint: Option<(String, String)>,
    /// `region` (None: us-east-1).
    pub region: Option<String>,
    /// The profile's credentials, resolved as the AWS tools resolve them (keys, a credential
    /// process, a role).
    pub credentials: ProfileFileCredentialsProvider,
}

/// Read profile `name` from the shared files. A profile that is in neither file, a file that
/// cannot be parsed, or an endpoint that is not `http(s)://HOST[:PORT]` is an error of the
/// target as given (a usage error).
pub async fn profiled(name: &str) -> Result<Profiled, String> {
    let files = Default::default();
    let set: ProfileSet = aws_config::profile::load(&Fs::real(), &Env::real(), &files, None)
        .await
        .map_err(|e| format!("profile '{name}': the AWS config files cannot be read: {e}"))?;
    let Some(profile) = set.get_profile(name) else {
        return Err(format!(
            "profile '{name}' is in neither {} nor {}",
            shown_file("AWS_CONFIG_FILE", "~/.aws/config"),
            shown_file("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials")
        ));
    };
    let endpoint = match profile.get("endpoint_url") {
        Some(e) => {
            let shown =
                crate::check_endpoint(e).map_err(|why| format!("profile '{name}': {why}"))?;
            Some((e.to_string(), shown))
        }
        None => None,
    };
    Ok(Profiled {
        endpoint,
        region: profile.get("region").map(str::to_string),
        credentials: ProfileFileCredentialsProvider::builder()
            .profile_name(name)
            .build(),
    })
}

/// Which file a variable names, or the default.
fn shown_file(var: &str, default: &str) -> String {
    match std::env::var(var) {
        Ok(f) if !f.is_empty() => f,
        _ => default.to_string(),
    }
}
