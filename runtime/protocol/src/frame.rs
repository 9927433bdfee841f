//! Length-prefixed postcard frames over any byte stream.

use serde::{Serialize, de::DeserializeOwned};
use std::io::{self, Read, Write};

/// Upper bound of one frame; a longer length prefix is garbage, not a reason to allocate.
pub const MAX_FRAME: usize = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("connection closed")]
    Closed,
    #[error("frame of {0} bytes exceeds the {MAX_FRAME}-byte limit")]
    TooLarge(usize),
    #[error("malformed message: {0}")]
    Decode(#[from] postcard::Error),
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
}

/// Encodes `msg` as one frame: length prefix plus payload.
pub fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
    let mut buf = vec![0u8; 4];
    // Serializing our own message types into a Vec cannot fail.
    let payload = postcard::to_stdvec(msg).expect("message serializes");
    buf[..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    buf.extend_from_slice(&payload);
    buf
}

/// Decodes one frame's payload (without the length prefix).
pub fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, FrameError> {
    Ok(postcard::from_bytes(payload)?)
}

/// Validates a length prefix.
pub fn check_len(prefix: [u8; 4]) -> Result<usize, FrameError> {
    let len = u32::from_le_bytes(prefix) as usize;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len));
    }
    Ok(len)
}

pub fn write_frame<T: Serialize>(w: &mut impl Write, msg: &T) -> Result<(), FrameError> {
    w.write_all(&encode(msg))?;
    Ok(())
}

pub fn read_frame<T: DeserializeOwned>(r: &mut impl Read) -> Result<T, FrameError> {
    let mut prefix = [0u8; 4];
    match r.read_exact(&mut prefix) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(e.into()),
    }
    let len = check_len(prefix)?;
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => FrameError::Closed,
        _ => e.into(),
    })?;
    decode(&payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::*;

    #[test]
    fn round_trip() {
        let msg = WorkerMsg::Barrier {
            name: "DMT:SUSPEND".into(),
        };
        let bytes = encode(&msg);
        let back: WorkerMsg = read_frame(&mut &bytes[..]).unwrap();
        assert_eq!(back, msg);
    }

    #[test]
    fn oversized_prefix_is_refused_without_allocating() {
        let bytes = u32::MAX.to_le_bytes();
        let err = read_frame::<WorkerMsg>(&mut &bytes[..]).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge(_)));
    }

    #[test]
    fn truncated_frame_is_closed() {
        let mut bytes = encode(&WorkerMsg::RequestCheckpoint);
        bytes.pop();
        let err = read_frame::<WorkerMsg>(&mut &bytes[..]).unwrap_err();
        assert!(matches!(err, FrameError::Closed));
    }

    proptest::proptest! {
        #[test]
        fn garbage_never_panics(data in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = read_frame::<ClientHello>(&mut &data[..]);
            let _ = read_frame::<WorkerMsg>(&mut &data[..]);
            let _ = read_frame::<Command>(&mut &data[..]);
        }
    }
}
