//! Reading untrusted text line by line without letting one line grow without bound.

use std::io::BufRead;

/// Reads the next line of `input` into `line` (cleared first; its `\n` not kept), keeping at most
/// `max` bytes of it and skipping the rest. Returns the line's whole length in bytes (more than
/// `max` when it was cut), or `None` at the end of the input. Memory stays within `max` plus the
/// reader's buffer, however long the line.
pub fn read_line_bounded(
    input: &mut impl BufRead,
    max: usize,
    line: &mut Vec<u8>,
) -> std::io::Result<Option<usize>> {
    line.clear();
    let mut total = 0usize;
    let mut any = false;
    loop {
        let buf = input.fill_buf()?;
        if buf.is_empty() {
            return Ok(any.then_some(total));
        }
        any = true;
        let (take, end) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i, true),
            None => (buf.len(), false),
        };
        let room = max.saturating_sub(line.len());
        line.extend_from_slice(&buf[..take.min(room)]);
        total = total.saturating_add(take);
        input.consume(take + usize::from(end));
        if end {
            return Ok(Some(total));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_cut_at_the_bound_and_the_next_line_is_whole() {
        let mut text = vec![b'x'; 100_000];
        text.extend_from_slice(b"\nshort\n\nlast");
        // A small reader buffer, so lines span many fills.
        let mut input = std::io::BufReader::with_capacity(64, &text[..]);
        let mut line = Vec::new();
        assert_eq!(read_line_bounded(&mut input, 10, &mut line).unwrap(), Some(100_000));
        assert_eq!(line, b"xxxxxxxxxx");
        assert_eq!(read_line_bounded(&mut input, 10, &mut line).unwrap(), Some(5));
        assert_eq!(line, b"short");
        assert_eq!(read_line_bounded(&mut input, 10, &mut line).unwrap(), Some(0));
        assert!(line.is_empty());
        assert_eq!(read_line_bounded(&mut input, 10, &mut line).unwrap(), Some(4));
        assert_eq!(line, b"last");
        assert_eq!(read_line_bounded(&mut input, 10, &mut line).unwrap(), None);
    }
}
