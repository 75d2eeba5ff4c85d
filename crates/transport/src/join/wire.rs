//! Join messages on a TLS stream: `u32` big-endian length, then the body of
//! [`pake::encode`](super::pake::encode) (at most [`MAX_MESSAGE`] bytes).

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::join::pake::{self, JoinMessage, MAX_MESSAGE};

/// Why a message could not be read or written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WireError {
    /// The peer sent something that is not a message (or too long a one).
    #[error("{0}")]
    Malformed(String),
    /// The stream failed or ended.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Writes one message and flushes.
pub(crate) async fn write_message<S: AsyncWrite + Unpin>(
    stream: &mut S,
    msg: &JoinMessage,
) -> Result<(), WireError> {
    let body = pake::encode(msg).map_err(|e| WireError::Malformed(e.to_string()))?;
    let len = u32::try_from(body.len())
        .map_err(|_| WireError::Malformed("message too long to send".into()))?;
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&body);
    stream.write_all(&out).await?;
    stream.flush().await?;
    Ok(())
}

/// Reads one message; a length over [`MAX_MESSAGE`] is refused before its body is read.
pub(crate) async fn read_message<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<JoinMessage, WireError> {
    let mut prefix = [0u8; 4];
    stream.read_exact(&mut prefix).await?;
    let len = u32::from_be_bytes(prefix) as usize;
    if len > MAX_MESSAGE {
        return Err(WireError::Malformed(format!(
            "a {len}-byte message (at most {MAX_MESSAGE})"
        )));
    }
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).await?;
    pake::decode(&body).map_err(|e| WireError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::join::pake::WireRefusal;

    #[tokio::test]
    async fn messages_round_trip_and_oversized_ones_are_refused_early() {
        let msg = JoinMessage::Refused(WireRefusal::WrongPassword);
        let mut buf = Vec::new();
        write_message(&mut buf, &msg).await.unwrap();
        assert_eq!(read_message(&mut &buf[..]).await.unwrap(), msg);
        let huge = ((MAX_MESSAGE + 1) as u32).to_be_bytes();
        assert!(matches!(
            read_message(&mut &huge[..]).await,
            Err(WireError::Malformed(_))
        ));
        assert!(matches!(
            read_message(&mut &buf[..buf.len() - 1]).await,
            Err(WireError::Io(_))
        ));
    }
}
