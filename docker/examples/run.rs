//! Runs a command in a fresh container through dockwire over QUIC on
//! 127.0.0.1: a server serving the local engine, a client that sends
//! `container/run` with auto-remove, streams the output to this process's
//! stdout and stderr, and exits with the container's exit code.
//!
//! ```text
//! cargo run -p dockwire-docker --example run -- dockwire/testbox:latest sh -c 'echo hello; exit 3'
//! ```

use std::net::SocketAddr;
use std::sync::Arc;

use dockwire_core::Limits;
use dockwire_docker::catalog::{ContainerSpec, RunInput};
use dockwire_docker::{DockerClient, DockerService};
use dockwire_service::Runtime;
use dockwire_service::quic::{self, PrivateKeyDer, QuicConnect};
use dockwire_tokio::Tokio;
use futures::AsyncWriteExt;
use futures::io::AllowStdIo;

fn main() -> Result<std::process::ExitCode, Box<dyn std::error::Error + Send + Sync>> {
    let mut args = std::env::args().skip(1);
    let image = args.next().ok_or("usage: run IMAGE [CMD…]")?;
    let spec = ContainerSpec {
        auto_remove: true,
        ..ContainerSpec::new(image, args)
    };
    tokio::runtime::Runtime::new()?.block_on(async {
        // The server: the local engine's operations on a QUIC endpoint.
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])?;
        let cert_der = cert.cert.der().clone();
        let key = PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
        let any: SocketAddr = "127.0.0.1:0".parse()?;
        let runtime = Tokio::current();
        let endpoint =
            runtime.quic_endpoint(any, Some(quic::server_config(vec![cert_der.clone()], key)?))?;
        let addr = endpoint.local_addr()?;
        let service = Arc::new(DockerService::from_env());
        tokio::spawn(quic::serve_quic(
            endpoint,
            service,
            runtime.spawner(),
            Limits::default(),
            quic::peer_by_address(),
        ));

        // The client: run, and copy the session's output out.
        let mut endpoint = runtime.quic_endpoint(any, None)?;
        endpoint.set_default_client_config(quic::client_config(&[cert_der])?);
        let connect = QuicConnect::connect(&endpoint, addr, "localhost").await?;
        let docker = DockerClient::new(runtime.client(Arc::new(connect), Limits::default()));
        let session = docker.open(&RunInput(spec)).await?;
        let (mut stdout, mut stderr) = (session.stdout, session.stderr);
        let (mut out, mut err) = (
            AllowStdIo::new(std::io::stdout()),
            AllowStdIo::new(std::io::stderr()),
        );
        let (copied_out, copied_err) = futures::join!(
            futures::io::copy(&mut stdout, &mut out),
            futures::io::copy(&mut stderr, &mut err)
        );
        copied_out?;
        copied_err?;
        out.flush().await?;
        let code = session.exit.await?;
        Ok(std::process::ExitCode::from(
            u8::try_from(code).unwrap_or(255),
        ))
    })
}
