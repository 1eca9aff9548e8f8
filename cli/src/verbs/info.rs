//! `info`: the engine's `docker info` (admins: it counts every peer's
//! objects and names the host's storage and runtimes).

use dockwire_docker::DockerClient;
use dockwire_docker::catalog::Info;

use super::format::bytes_size;
use super::out::{self, Verdict};
use super::template::Formatter;
use crate::error::Context;

/// Display system-wide information
#[derive(clap::Args, Debug)]
pub struct InfoArgs {
    /// Format output using a Go template (docker's fields: `.ServerVersion`,
    /// `.NCPU`, `.MemTotal`, `.Driver`, …)
    #[arg(short, long, value_name = "TEMPLATE")]
    format: Option<String>,
}

pub async fn info(docker: &DockerClient, args: InfoArgs) -> Verdict {
    let format = args.format.as_deref().map(Formatter::inspect).transpose()?;
    let info = docker
        .query(&Info {})
        .await
        .context(|| "ask the engine for its information".into())?;
    if let Some(format) = format {
        let data = serde_json::to_value(&info).unwrap_or_default();
        out::line(format.render(&data)?)?;
        return Ok(0);
    }
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let count = |v: Option<i64>| v.unwrap_or_default();
    let mut runtimes: Vec<&String> = info.runtimes.iter().flat_map(|r| r.keys()).collect();
    runtimes.sort();
    let runtimes: Vec<&str> = runtimes.into_iter().map(String::as_str).collect();
    let lines = [
        "Server:".to_owned(),
        format!(" Containers: {}", count(info.containers)),
        format!("  Running: {}", count(info.containers_running)),
        format!("  Paused: {}", count(info.containers_paused)),
        format!("  Stopped: {}", count(info.containers_stopped)),
        format!(" Images: {}", count(info.images)),
        format!(" Server Version: {}", text(&info.server_version)),
        format!(" Storage Driver: {}", text(&info.driver)),
        format!(
            " Cgroup Driver: {}",
            text(&info.cgroup_driver.map(|d| d.to_string()))
        ),
        format!(" Runtimes: {}", runtimes.join(" ")),
        format!(" Default Runtime: {}", text(&info.default_runtime)),
        format!(" Kernel Version: {}", text(&info.kernel_version)),
        format!(" Operating System: {}", text(&info.operating_system)),
        format!(" OSType: {}", text(&info.os_type)),
        format!(" Architecture: {}", text(&info.architecture)),
        format!(" CPUs: {}", count(info.ncpu)),
        format!(
            " Total Memory: {}",
            bytes_size(count(info.mem_total) as f64)
        ),
        format!(" Name: {}", text(&info.name)),
        format!(" ID: {}", text(&info.id)),
        format!(" Docker Root Dir: {}", text(&info.docker_root_dir)),
    ];
    for line in lines {
        out::line(line)?;
    }
    Ok(0)
}
