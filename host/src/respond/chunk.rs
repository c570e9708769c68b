//! Splitting a device message into chunks: every chunk but the last exactly
//! `size` bytes, indices from 0, and one empty chunk for an empty message so
//! that the device always hears back.

use bytes::Bytes;

/// The chunks of `payload`, as zero-copy slices of it.
pub fn chunks(payload: &Bytes, size: usize) -> impl Iterator<Item = Bytes> + '_ {
    let size = size.max(1);
    let count = payload.len().div_ceil(size).max(1);
    (0..count).map(move |i| payload.slice(i * size..payload.len().min((i + 1) * size)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(len: usize, size: usize) -> Vec<usize> {
        chunks(&Bytes::from(vec![7u8; len]), size)
            .map(|c| c.len())
            .collect()
    }

    #[test]
    fn every_chunk_but_the_last_is_full() {
        assert_eq!(sizes(1300, 512), vec![512, 512, 276]);
        assert_eq!(sizes(1024, 512), vec![512, 512]);
        assert_eq!(sizes(1, 512), vec![1]);
        assert_eq!(sizes(513, 512), vec![512, 1]);
    }

    #[test]
    fn an_empty_message_is_one_empty_chunk() {
        assert_eq!(sizes(0, 512), vec![0]);
    }

    #[test]
    fn chunks_put_back_together_are_the_message() {
        let payload = Bytes::from((0..2000u32).map(|i| (i % 251) as u8).collect::<Vec<_>>());
        let joined: Vec<u8> = chunks(&payload, 512).flat_map(|c| c.to_vec()).collect();
        assert_eq!(joined, payload);
    }
}
