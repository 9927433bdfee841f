//! Frames over tokio streams: the async twin of `dmtcp_protocol::frame`.

use dmtcp_protocol::frame::{self, FrameError};
use serde::{Serialize, de::DeserializeOwned};
use std::io;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub async fn read_frame<T: DeserializeOwned>(
    r: &mut (impl AsyncRead + Unpin),
) -> Result<T, FrameError> {
    let mut prefix = [0u8; 4];
    let eof = |e: io::Error| match e.kind() {
        io::ErrorKind::UnexpectedEof => FrameError::Closed,
        _ => FrameError::Io(e),
    };
    r.read_exact(&mut prefix).await.map_err(eof)?;
    let len = frame::check_len(prefix)?;
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload).await.map_err(eof)?;
    frame::decode(&payload)
}

pub async fn write_frame<T: Serialize>(
    w: &mut (impl AsyncWrite + Unpin),
    msg: &T,
) -> Result<(), FrameError> {
    w.write_all(&frame::encode(msg)).await?;
    w.flush().await?;
    Ok(())
}
